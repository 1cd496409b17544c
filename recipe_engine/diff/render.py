"""A :class:`DiffResult` as text, markdown or JSON (``diff --format``)."""
from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from recipe_engine.diff.recipes import GROUPS
from recipe_engine.diff.result import DiffResult
from recipe_engine.diff.sides import Side
from recipe_engine.runs import RESOLVED_FILE
from recipe_engine.stats import format_p
from recipe_engine.table import decimals, fmt, json_text, render_format, render_table


def _title(side: Side, letter: str) -> str:
    r = side.resolved
    src = ""
    if side.run is not None:
        frozen = Path(side.source).name == RESOLVED_FILE and Path(side.source).parent == Path(side.arg)
        src = " (its resolved.yaml: the recipe it ran is gone or has changed)" if frozen else f" (recipe {side.source})"
    return f"{letter}: {side.arg}{src}  [{r.recipe.name}, {side.kind}, fingerprint {r.fingerprint[:8]}]"


def _headline(res: DiffResult) -> str:
    if res.same_method:
        extra = "" if not res.changes else f"; {len(res.changes)} difference(s) outside the method"
        return f"same method (fingerprint {res.a.resolved.fingerprint[:8]}){extra}"
    n = len(res.group("method"))
    return f"the method differs: {n} change(s)"


def _metric_table(res: DiffResult) -> tuple[list[str], list[list[str]]]:
    header = ["metric", "A mean ± sd", "B mean ± sd", "B - A", "p (Welch)"]
    rows = []
    for m in res.metrics:
        places = decimals(m["metric"], m["a"]["mean"])
        rows.append([m["metric"], f"{fmt(m['a']['mean'], places)} ± {fmt(m['a']['sd'], places)}",
                     f"{fmt(m['b']['mean'], places)} ± {fmt(m['b']['sd'], places)}",
                     f"{m['diff']:+.{places}f}", format_p(m["p"])])
    return header, rows


def _text_table(rows: list[list[str]], header: list[str]) -> list[str]:
    """A text table, each line indented under its heading."""
    return ["  " + line for line in render_table(rows, header, "text").splitlines()]


def render_text(res: DiffResult) -> str:
    lines = [_title(res.a, "A"), _title(res.b, "B"), "", _headline(res)]
    for g in GROUPS:
        changes = res.group(g)
        if not changes:
            continue
        lines += ["", f"{g} ({len(changes)})"]
        for c in changes:
            lines.append(f"  {c.text}    [A: {c.from_a} | B: {c.from_b}]")
        if g == "method" and res.timeline is not None:
            tl = res.timeline
            what = "compiled timelines" if tl.compiled else "phases"
            if tl.identical:
                lines += ["", f"  schedule: the {what} are identical ({tl.note})"]
            else:
                lines += ["", f"  schedule as {what} ({tl.note})"]
                lines += _text_table(tl.rows, tl.header)
    if res.runs:
        lines += ["", "environment", *_text_table(res.environment, ["", "setting", "A", "B"])]
        if res.data:
            lines += ["", "data hashes", *_text_table(res.data, ["", "file", "A", "B", "status"])]
        if res.metrics:
            header, rows = _metric_table(res)
            lines += ["", f"metrics (mean ± sd over seeds; A: {len(res.a.run.seeds)} seeds, B: {len(res.b.run.seeds)} seeds)"]
            lines += _text_table(rows, header)
    return "\n".join(lines)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table (empty cells written as a space) as one entry of the output lines."""
    return [render_table(rows, header, "markdown", blank=" ")]


def render_markdown(res: DiffResult) -> str:
    lines = [f"# diff: {res.a.resolved.recipe.name} vs {res.b.resolved.recipe.name}", "",
             f"- A: `{res.a.arg}` ({res.a.kind}, fingerprint `{res.a.resolved.fingerprint[:8]}`)",
             f"- B: `{res.b.arg}` ({res.b.kind}, fingerprint `{res.b.resolved.fingerprint[:8]}`)", "",
             f"**{_headline(res)}**"]
    for g in GROUPS:
        changes = res.group(g)
        if not changes:
            continue
        lines += ["", f"## {g}", ""]
        lines += _md_table(["change", "A from", "B from"], [[f"`{c.text}`", c.from_a, c.from_b] for c in changes])
        if g == "method" and res.timeline is not None:
            what = "compiled timelines" if res.timeline.compiled else "phases"
            if res.timeline.identical:
                lines += ["", f"Schedule: the {what} are identical ({res.timeline.note})."]
            else:
                lines += ["", f"### schedule as {what} ({res.timeline.note})", ""]
                lines += _md_table(res.timeline.header, res.timeline.rows)
    if res.runs:
        lines += ["", "## environment", "", *_md_table(["", "setting", "A", "B"], res.environment)]
        if res.data:
            lines += ["", "## data hashes", "", *_md_table(["", "file", "A", "B", "status"], res.data)]
        if res.metrics:
            lines += ["", "## metrics", "", *_md_table(*_metric_table(res))]
    return "\n".join(lines)


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_clean(v) for v in x]
    return x


def to_json(res: DiffResult) -> dict[str, Any]:
    def side(s: Side) -> dict[str, Any]:
        return {"arg": s.arg, "kind": s.kind, "source": s.source, "name": s.resolved.recipe.name,
                "fingerprint": s.resolved.fingerprint}

    out: dict[str, Any] = {
        "a": side(res.a), "b": side(res.b), "same_method": res.same_method, "exit_code": res.exit_code,
        "changes": [asdict(c) for c in res.changes],
        "timeline": None if res.timeline is None else asdict(res.timeline),
    }
    if res.runs:
        out["environment"] = [{"setting": r[1], "a": r[2], "b": r[3], "differs": bool(r[0])} for r in res.environment]
        out["data_hashes"] = [{"file": r[1], "status": r[4]} for r in res.data]
        out["metrics"] = res.metrics
    return _clean(out)


def render_json(res: DiffResult) -> str:
    return json_text(to_json(res), default=str)


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}
FORMATS = tuple(RENDERERS)


def render(res: DiffResult, fmt_name: str) -> str:
    return render_format(res, fmt_name, RENDERERS)
