"""``report.html`` of a run folder (and of a study folder): one self-contained file.

Plots are PNG data URIs (``recipe_engine.plots``), styles are inline, there is no script
and nothing is fetched.  A run report shows, from what the run folder holds:

- training curves per objective term (``seed-*/metrics.jsonl``, ``"event": "train"``, ``loss/<term>``);
- the CID over training (``"event": "eval"`` records with a ``*/cid`` key; influence tuning, Figure 3);
- per-group accuracy bars (``test/group/<label>/<confound>`` in ``summary.json``);
- a reliability diagram (``seed-*/eval/test_logits.pt`` with ``{"logits", "labels"}``);
- token attribution heat maps per split (``seed-*/eval/attributions.json``, ``evaluation.attributions``).

A section whose input is missing says so instead of failing.  Every figure has an ``id``
(``plot-...``) and an ``alt`` text.
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import torch

from recipe_engine import plots
from recipe_engine.outputs import atomic_write_text
from recipe_engine.runs import RunResults, load_attributions, load_run, load_test_logits, seed_dirs, seed_records
from recipe_engine.stats import mean, sample_sd
from recipe_engine.studies import combo_label, is_study, load_study, lower_is_better
from recipe_engine.table import decimals, fmt, order_keys
from registry.metrics.calibration import expected_calibration_error, reliability_diagram

REPORT = "report.html"
MAX_ATTRIBUTION_EXAMPLES = 50  # per split

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em}h2{font-size:1.25em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}th{background:#f5f5f5}
figure{margin:.8em 0}img{max-width:100%;height:auto}figcaption{font-size:.85em;color:#555}
p.missing{color:#8a6d3b;background:#fcf8e3;padding:.4em .8em;border-left:3px solid #f0ad4e}
.meta{color:#555;font-size:.9em}.tok{padding:1px 2px;margin:0 1px;border-radius:3px;line-height:1.9;display:inline-block}
.example{margin:.6em 0;padding:.4em;border:1px solid #eee}.example .head{font-size:.8em;color:#555}
.tok.special{font-size:.85em}.exid{color:#999}
tr.selected td{font-weight:bold}
"""


# ---------------------------------------------------------------- what the plots show
def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def train_curves(records: Mapping[int, Sequence[dict[str, Any]]]) -> dict[str, dict[int, list[tuple[float, float]]]]:
    """``{term id: {seed: [(step, loss)]}}`` from ``"event": "train"`` records."""
    panels: dict[str, dict[int, list[tuple[float, float]]]] = {}
    for seed, recs in records.items():
        for r in recs:
            if r.get("event") != "train" or not _finite(r.get("step")):
                continue
            for k, v in r.items():
                if k.startswith("loss/") and _finite(v):
                    panels.setdefault(k[5:], {}).setdefault(seed, []).append((r["step"], v))
    return panels


def eval_curves(records: Mapping[int, Sequence[dict[str, Any]]], suffix: str = "/cid") -> dict[str, dict[int, list[tuple[float, float]]]]:
    """``{metric key: {seed: [(step, value)]}}`` of ``"event": "eval"`` keys ending with ``suffix``."""
    panels: dict[str, dict[int, list[tuple[float, float]]]] = {}
    for seed, recs in records.items():
        for r in recs:
            if r.get("event") != "eval" or not _finite(r.get("step")):
                continue
            for k, v in r.items():
                if k.endswith(suffix) and _finite(v):
                    panels.setdefault(k, {}).setdefault(seed, []).append((r["step"], v))
    return panels


def mean_curve(series: Mapping[int, Sequence[tuple[float, float]]]) -> list[tuple[float, float]]:
    """The mean over seeds at every step that some seed logged."""
    at: dict[float, list[float]] = {}
    for points in series.values():
        for step, v in points:
            at.setdefault(step, []).append(v)
    return [(step, mean(vs)) for step, vs in sorted(at.items())]


def group_keys(run: RunResults) -> tuple[str | None, list[str]]:
    """(split, its ``<split>/group/...`` keys): the test split if it has them, else the first that does."""
    by_split: dict[str, list[str]] = {}
    for k in run.keys:
        split, _, rest = k.partition("/")
        if rest.startswith("group/"):
            by_split.setdefault(split, []).append(k)
    if not by_split:
        return None, []
    split = "test" if "test" in by_split else sorted(by_split)[0]
    return split, sorted(by_split[split])


# ---------------------------------------------------------------- HTML pieces
class Raw(str):
    """Markup that ``table`` inserts as it is (built from escaped parts)."""


def esc(x: Any) -> str:
    return x if isinstance(x, Raw) else html.escape(str(x), quote=True)


def figure(plot_id: str, fig: Any, alt: str, caption: str = "") -> str:
    uri = plots.data_uri(fig)
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img id="{esc(plot_id)}" class="plot" alt="{esc(alt)}" src="{uri}">{cap}</figure>'


def missing(text: str) -> str:
    return f'<p class="missing">{esc(text)}</p>'


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[int] = (), row_class: Sequence[str] = ()) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for i, r in enumerate(rows):
        cls = f' class="{row_class[i]}"' if i < len(row_class) and row_class[i] else ""
        cells = "".join(f'<td class="num">{esc(c)}</td>' if j in numeric else f"<td>{esc(c)}</td>" for j, c in enumerate(r))
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def kv_table(pairs: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in pairs)
    return f'<table class="meta">{rows}</table>'


def page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n")


def _stats(values: Sequence[float]) -> tuple[float, float]:
    return mean(values), (sample_sd(values) if len(values) > 1 else 0.0)


def results_table(run: RunResults) -> str:
    rows = []
    for key in run.keys:
        vals = list(run.values(key).values())
        if not vals:
            continue
        m, s = _stats(vals)
        places = decimals(key, m)
        rows.append([key, f"{fmt(m, places)} ± {fmt(s, places)}", len(vals),
                     ", ".join(f"{seed}: {fmt(v, places)}" for seed, v in run.values(key).items())])
    return table(["metric", "mean ± sd", "n", "per seed"], rows, numeric=(1, 2))


def _heat_color(score: float, scale: float) -> str:
    """Red for positive, blue for negative attribution, opacity by |score| / max |score|."""
    a = 0.0 if scale <= 0 else min(abs(score) / scale, 1.0)
    rgb = "214,39,40" if score >= 0 else "31,119,180"
    return f"rgba({rgb},{a:.3f})"


_SPECIAL_TOKENS = frozenset({"[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "<s>", "</s>", "<pad>", "<mask>", "<unk>"})


def _label(names: Sequence[str], value: Any) -> str:
    """A label index as its name (``names``), anything else as written; ``?`` when absent."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
        return str(names[value])
    return "?" if value is None else str(value)


def _token_span(token: str, score: float, counted: bool, special: bool, scale: float) -> str:
    if special:  # [CLS]/[SEP]: greyed, their score on hover, not part of the colour scale
        return (f'<span class="tok special" style="background:#eee;color:#888" title="{score:.4g} '
                f'(special token)">{esc(token)}</span>')
    if not counted:
        return f'<span class="tok" title="not counted">{esc(token)}</span>'
    return f'<span class="tok" style="background:{_heat_color(score, scale)}" title="{score:.4g}">{esc(token)}</span>'


def attribution_html(examples: Sequence[dict[str, Any]], seed: int, split: str = "",
                     label_names: Sequence[str] = (), target_names: Sequence[str] | None = None) -> str:
    """Tokens coloured by their attribution score, one block per example: red positive, blue
    negative, opacity |score| / max |score| over the example's counted ordinary tokens; special
    tokens greyed; the score on hover; gold, predicted and attributed labels above."""
    blocks = []
    for i, ex in enumerate(examples[:MAX_ATTRIBUTION_EXAMPLES]):
        tokens = [str(t) for t in ex.get("tokens", [])]
        n = len(tokens)
        scores = [float(v) if _finite(v) else 0.0 for v in (ex.get("scores") or [])][:n]
        scores += [0.0] * (n - len(scores))
        counted = [bool(c) for c in (ex.get("counted") or [True] * n)][:n]
        counted += [True] * (n - len(counted))
        special = [bool(c) for c in ex["special"]][:n] if isinstance(ex.get("special"), list) else [t in _SPECIAL_TOKENS for t in tokens]
        special += [False] * (n - len(special))
        ordinary = [abs(v) for v, c, sp in zip(scores, counted, special) if c and not sp]
        scale = max(ordinary or [abs(v) for v in scores] or [0.0])
        spans = "".join(_token_span(t, v, c, sp, scale) for t, v, c, sp in zip(tokens, scores, counted, special))
        gold, pred = ex.get("label"), ex.get("prediction", ex.get("pred"))
        mark = "" if gold is None or pred is None else (" ✓" if gold == pred else " ✗")
        head = f"gold {esc(_label(label_names, gold))}, predicted {esc(_label(label_names, pred))}{mark}"
        if ex.get("target") is not None:
            head += f", attributed to {esc(_label(label_names if target_names is None else target_names, ex['target']))}"
        if ex.get("id") is not None:
            head += f' <span class="exid">({esc(ex["id"])})</span>'
        where = f"{split}-{i}" if split else str(i)
        what = f"example {i} of {split}, seed {seed}" if split else f"example {i} of seed {seed}"
        blocks.append(f'<div class="example" id="attr-{esc(seed)}-{esc(where)}" role="img" aria-label="token '
                      f'attribution heat map, {esc(what)}"><div class="head">{head}</div>{spans}</div>')
    return "".join(blocks)


# ---------------------------------------------------------------- the run report
class _Run:
    """What the sections of a run report read, loaded once."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        self.results = load_run(run_dir)
        self.seeds = seed_dirs(run_dir)
        self.records = seed_records(run_dir)


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{esc(title)}</h2>{body}</section>'


def summary_section(r: _Run) -> str:
    run = r.results
    env = run.run_json.get("environment") or {}
    meta = [("run folder", str(r.dir)), ("fingerprint", (run.fingerprint or "?")[:12]),
            ("seeds", ", ".join(map(str, run.seeds or list(r.seeds)))), ("command", run.run_json.get("command", "")),
            ("git", f"{(env.get('git_sha') or '?')[:10]}{' (dirty)' if env.get('git_dirty') else ''}"),
            ("device", f"{env.get('device', '?')} x{env.get('world_size', 1)}")]
    results = results_table(run) if run.per_seed else missing("no results yet (no summary.json): the run has not finished")
    return kv_table(meta) + results


def curves_section(r: _Run) -> str:
    panels = train_curves(r.records)
    if not panels:
        return missing('no training records (seed-*/metrics.jsonl with "event": "train") in this run folder')
    return figure("plot-train-loss", plots.curves(panels, "weighted loss", log_y=True),
                  "training loss per objective term (" + ", ".join(panels) + ") over steps",
                  "Weighted loss of each objective term as logged during training (one line per seed).")


def cid_section(r: _Run) -> str:
    cid = eval_curves(r.records, "/cid")
    if not cid:
        return missing("no CID evaluations during training (add the cid metric and evaluation.every to the recipe)")
    return figure("plot-cid", plots.curves(cid, "CID"), "CID over training steps",
                  "CID during training (influence tuning, Figure 3): mean influence of confound-aligned minus "
                  "confound-conflicting training examples on probes; near 0 means the confound is not used.")


def group_section(r: _Run) -> str:
    split, keys = group_keys(r.results)
    if not keys:
        return missing("no per-group accuracies (<split>/group/<label>/<confound>); add the group_accuracy metric")
    stats = [_stats(list(r.results.values(k).values())) for k in keys]
    labels = [k.split("/group/", 1)[1] for k in keys]
    return figure("plot-group-accuracy",
                  plots.bars(labels, [m for m, _ in stats], [s for _, s in stats], "accuracy (%)",
                             f"{split}: accuracy per label/confound group"),
                  f"bar chart of {split} accuracy per (label, confound) group",
                  "Mean ± sd over seeds; a group is a label and a confound value.")


def calibration_section(r: _Run) -> str:
    found = [lg for d in r.seeds.values() if (lg := load_test_logits(d)) is not None]
    if not found:
        return missing("no test logits saved (seed-*/eval/test_logits.pt), so no reliability diagram")
    logits = torch.cat([lg[0].float() for lg in found])
    labels = torch.cat([lg[1].long() for lg in found])
    ece = expected_calibration_error(logits, labels, 15)
    return figure("plot-reliability", plots.reliability(reliability_diagram(logits, labels, 15), f"test, ECE {ece:.2f}%"),
                  "reliability diagram of test predictions",
                  f"Test predictions of {len(found)} seed(s) pooled, 15 equal-width confidence bins.")


def attribution_section(r: _Run) -> str:
    found = [(seed, saved) for seed, d in r.seeds.items() if (saved := load_attributions(d)) is not None]
    if not found:
        return missing("no token attributions saved (seed-*/eval/attributions.json); add evaluation.attributions "
                       "to the recipe")
    seed, saved = found[0]
    how = saved.attribution.get("name")
    parts = [f'<p class="meta">seed {esc(seed)}{f", attribution {esc(how)}" if how else ""}: red = pushes toward '
             f"the attributed class, blue = against; opacity = |score| / max |score| of the example's tokens; "
             f"[CLS]/[SEP] greyed; the score shows on hover.</p>"]
    for split, examples in saved.splits.items():
        if split:
            parts.append(f"<h3>{esc(split)}</h3>")
        parts.append(attribution_html(examples, seed, split, saved.split_label_names.get(split, saved.label_names),
                                      saved.label_names))
    return f'<div id="plot-attributions">{"".join(parts)}</div>'


RUN_SECTIONS = (
    ("summary", "Results", summary_section),
    ("training-curves", "Training curves", curves_section),
    ("cid", "Confound influence difference over training", cid_section),
    ("group-accuracy", "Per-group accuracy", group_section),
    ("calibration", "Calibration", calibration_section),
    ("attributions", "Token attributions", attribution_section),
)


def run_report_html(run_dir: str | Path) -> str:
    """The run report; a section whose input cannot be read says why instead of failing the run."""
    r = _Run(Path(run_dir))
    parts = [f"<h1>{esc(r.results.name)}</h1>"]
    if r.results.recipe.get("description"):
        parts.append(f"<p>{esc(r.results.recipe['description'])}</p>")
    for sid, title, build in RUN_SECTIONS:
        try:
            body = build(r)
        except Exception as exc:  # noqa: BLE001 - a damaged file must not lose the finished run
            body = missing(f"could not draw this section: {type(exc).__name__}: {exc}")
        parts.append(_section(sid, title, body))
    return page(f"{r.results.name} report", "\n".join(parts))


def write_run_report(run_dir: str | Path) -> Path:
    """Write ``<run_dir>/report.html`` atomically; return its path."""
    path = Path(run_dir) / REPORT
    atomic_write_text(path, run_report_html(run_dir))
    return path


# ---------------------------------------------------------------- the study report
def study_report_html(study_dir: str | Path) -> str:
    study_dir = Path(study_dir)
    study = load_study(study_dir)
    info = study.info
    parts = [f"<h1>{esc(study.name)}: study</h1>",
             f'<p class="meta">grid: {esc(combo_label({k: "|".join(map(str, v)) for k, v in (info.get("grid") or {}).items()}))}; '
             f"{len(info.get('children', []))} combinations, {len(study.children)} with results; "
             f"selection by {esc(study.select)} ({'lower' if lower_is_better(study.select) else 'higher'} is better)</p>"]
    keys = [k for k in order_keys({k for c in study.children for k in c.keys}) if "/group/" not in k]
    rows, classes = [], []
    for i, child in enumerate(study.children):
        cells = [child.label + (" (selected)" if i == study.best else ""), len(child.seeds)]
        for k in keys:
            vals = list(child.values(k).values())
            if vals:
                m, s = _stats(vals)
                cells.append(f"{fmt(m, decimals(k, m))} ± {fmt(s, decimals(k, m))}")
            else:
                cells.append("-")
        target = (child.path.relative_to(study_dir) if child.path.is_relative_to(study_dir) else child.path) / REPORT
        cells.append(Raw(f'<a href="{esc(target.as_posix())}">report</a>') if (child.path / REPORT).is_file() else "-")
        rows.append(cells)
        classes.append("selected" if i == study.best else "")
    parts.append('<section id="summary"><h2>Children</h2>'
                 + (table(["child", "seeds", *keys, "report"], rows, numeric=tuple(range(1, len(keys) + 2)), row_class=classes)
                    if rows else missing("no child has finished yet"))
                 + "</section>")
    if study.children:
        metric = study.select if any(c.values(study.select) for c in study.children) else (keys[0] if keys else None)
        if metric:
            stats = [_stats(list(c.values(metric).values())) if c.values(metric) else (math.nan, 0.0) for c in study.children]
            parts.append('<section id="selection"><h2>Selection</h2>'
                         + figure("plot-selection", plots.bars([c.label for c in study.children], [m for m, _ in stats],
                                                               [s for _, s in stats], metric, f"{metric} per child (selected in red)",
                                                               highlight=study.best),
                                  f"bar chart of {metric} per child of the study", "Mean ± sd over seeds.")
                         + "</section>")
        cid: dict[str, dict[str, list[tuple[float, float]]]] = {}
        for child in study.children:
            for key, series in eval_curves(seed_records(child.path), "/cid").items():
                cid.setdefault(key, {})[child.label] = mean_curve(series)
        if cid:
            parts.append('<section id="cid"><h2>CID over training</h2>'
                         + figure("plot-cid", plots.curves(cid, "CID"), "CID over training steps, one line per child",
                                  "Mean over seeds at each evaluation step (influence tuning, Figure 3).")
                         + "</section>")
    return page(f"{study.name} study report", "\n".join(parts))


def write_study_report(study_dir: str | Path) -> Path:
    path = Path(study_dir) / REPORT
    atomic_write_text(path, study_report_html(study_dir))
    return path


def write_report(folder: str | Path) -> Path:
    """The run or study report, whichever ``folder`` is."""
    return write_study_report(folder) if is_study(Path(folder)) else write_run_report(folder)
