"""``recipe-engine diff A B``: a semantic diff of two recipes or run folders (DESIGN.md section 6).

The resolved, typed recipes are compared (every default written out), never the text:
phases, objective terms and metrics are matched by identity (``id``, else ``name``), a
component whose ``name`` changed is one replacement, numbers show their ratio, and the
schedules are also compared as compiled timelines.  Changes are grouped method / runtime
/ paths, each with where it was set on both sides.  For two run folders the environment,
the data hashes and a metrics table with a significance test are added.

Exit code: 0 same method (equal fingerprints), 1 the method differs, 2 error.
"""
from __future__ import annotations

import difflib
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import registry
from recipe_engine.runs import RunResults, is_run, load_run
from recipe_engine.errors import RecipeErrors, UserError
from recipe_engine.load import origin_of
from recipe_engine.merge import plain_identity
from recipe_engine.resolve import Resolved, resolve
from recipe_engine.schema import METHOD_SECTIONS
from recipe_engine.stats import format_p, mean, sample_sd, welch
from recipe_engine.table import decimals, fmt, format_table, order_keys

EXIT_SAME, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2
GROUPS = ("method", "runtime", "paths")
FORMATS = ("text", "json", "markdown")
#: list keys whose items are matched by identity (``id``, else ``name``)
ID_LISTS = ("phases", "objectives", "metrics")
PATH_SETTINGS = {("name",), ("description",), ("runtime", "data_root"), ("runtime", "output_dir")}
ABSENT = "-"


# ---------------------------------------------------------------- the two sides
@dataclass
class Side:
    arg: str  # what was given on the command line
    resolved: Resolved
    run: RunResults | None = None  # set for a run folder
    source: str = ""  # the file the recipe was read from

    @property
    def kind(self) -> str:
        return "run" if self.run is not None else "recipe"


def load_side(arg: str | os.PathLike) -> Side:
    """A recipe file, or a run folder (its ``resolved.yaml``; provenance from the original recipe
    when that still resolves to exactly the same recipe)."""
    path = Path(arg)
    if path.is_dir():
        if not is_run(path) or not (path / "resolved.yaml").is_file():
            raise UserError(f"{path}: not a run folder (no resolved.yaml); give a recipe file or a folder printed by `recipe-engine run`")
        run = load_run(path)
        frozen = resolve(path / "resolved.yaml")
        original = run.run_json.get("recipe")
        if original and Path(original).is_file():
            try:
                again = resolve(original, run.run_json.get("overrides") or [])
            except (RecipeErrors, UserError):
                again = None
            if again is not None and again.data == frozen.data:
                return Side(str(arg), again, run, str(original))
        return Side(str(arg), frozen, run, str(path / "resolved.yaml"))
    if path.is_file():
        return Side(str(arg), resolve(path), None, str(arg))
    raise UserError(f"{arg}: no such recipe file or run folder")


# ---------------------------------------------------------------- changes
@dataclass
class Change:
    group: str  # method | runtime | paths
    path: str  # dotted, list items by id
    kind: str  # changed | added | removed | replaced | reordered
    a: Any
    b: Any
    text: str  # one-line rendering, without provenance
    from_a: str
    from_b: str
    ratio: float | None = None


def group_of(path: tuple) -> str:
    if tuple(path[:2]) in PATH_SETTINGS or tuple(path[:1]) in PATH_SETTINGS:
        return "paths"
    return "method" if path and path[0] in METHOD_SECTIONS else "runtime"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def show(v: Any) -> str:
    """A value in one line: floats as their shortest repr, mappings and lists in flow style."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (int, str)):
        return str(v) if isinstance(v, int) or (v and v.strip() == v and ":" not in v and "," not in v) else json.dumps(v)
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {show(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(show(x) for x in v) + "]"
    return str(v)


def ratio(a: Any, b: Any) -> float | None:
    if _is_number(a) and _is_number(b) and a != 0 and a != b:
        r = b / a
        return r if math.isfinite(r) else None
    return None


def _ratio_text(r: float | None) -> str:
    return "" if r is None else f" (x{r:.3g})"


def _present(data: Any, path: tuple) -> bool:
    cur = data
    for p in path:
        if isinstance(cur, dict) and p in cur:
            cur = cur[p]
        elif isinstance(cur, list) and isinstance(p, int) and 0 <= p < len(cur):
            cur = cur[p]
        else:
            return False
    return True


def _raw(side: Side, path: tuple) -> Any:
    cur: Any = side.resolved.loaded.data
    for p in path:
        cur = cur[p]
    return cur


def provenance(side: Side, path: tuple | None) -> str:
    """Where the value at ``path`` (an index path) was set: file:line, base, command line, or default."""
    if path is None:
        return ABSENT
    if not _present(side.resolved.loaded.data, path):
        return "default"
    return str(origin_of(side.resolved.loaded, path))


def _written(side: Side, path: tuple, resolved_value: Any) -> Any:
    """What the recipe wrote at ``path`` (compact), else the resolved value."""
    return _raw(side, path) if _present(side.resolved.loaded.data, path) else resolved_value


def _identity(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    value = item.get("id") if item.get("id") is not None else item.get("name")
    return plain_identity({"id": value}) if value is not None else None


def _id_list(key: Any, a: list, b: list) -> bool:
    if key not in ID_LISTS:
        return False
    for items in (a, b):
        ids = [_identity(x) for x in items]
        if any(i is None for i in ids) or len(set(ids)) != len(ids):
            return False
    return True


def _is_component(v: Any) -> bool:
    return isinstance(v, dict) and "name" in v and "params" in v


class _Differ:
    def __init__(self, a: Side, b: Side) -> None:
        self.a, self.b = a, b
        self.changes: list[Change] = []

    def add(self, kind: str, disp: tuple, a: Any, b: Any, pa: tuple | None, pb: tuple | None, text: str,
            r: float | None = None) -> None:
        ref = pa if pa is not None else pb
        self.changes.append(Change(group_of(ref), ".".join(map(str, disp)), kind, a, b, text,
                                   provenance(self.a, pa), provenance(self.b, pb), r))

    def walk(self, a: Any, b: Any, pa: tuple, pb: tuple, disp: tuple) -> None:
        if a == b:
            return
        name = ".".join(map(str, disp))
        if _is_component(a) and _is_component(b) and a["name"] != b["name"]:
            self.add("replaced", disp, {"name": a["name"], "params": a["params"]}, {"name": b["name"], "params": b["params"]},
                     pa + ("name",), pb + ("name",),
                     f"{name}: {a['name']} {show(a['params'])} -> {b['name']} {show(b['params'])}")
            a = {k: v for k, v in a.items() if k not in ("name", "params")}
            b = {k: v for k, v in b.items() if k not in ("name", "params")}
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                if key not in b:
                    self.add("removed", disp + (key,), a[key], None, pa + (key,), None, f"{name}.{key}: removed {show(a[key])}")
                elif key not in a:
                    self.add("added", disp + (key,), None, b[key], None, pb + (key,), f"{name}.{key}: added {show(b[key])}")
                else:
                    self.walk(a[key], b[key], pa + (key,), pb + (key,), disp + (key,))
            return
        if isinstance(a, list) and isinstance(b, list) and _id_list(disp[-1] if disp else None, a, b):
            self.walk_id_list(a, b, pa, pb, disp)
            return
        r = ratio(a, b)
        self.add("changed", disp, a, b, pa, pb, f"{name}: {show(a)} -> {show(b)}{_ratio_text(r)}", r)

    def walk_id_list(self, a: list, b: list, pa: tuple, pb: tuple, disp: tuple) -> None:
        name = ".".join(map(str, disp))
        ids_a, ids_b = [_identity(x) for x in a], [_identity(x) for x in b]
        gone = [i for i, x in enumerate(ids_a) if x not in ids_b]
        new = [j for j, x in enumerate(ids_b) if x not in ids_a]
        # an item without an explicit id whose name changed in place is one replacement, not remove + add
        for i in list(gone):
            j = next((j for j in new if j == i and a[i].get("id") is None and b[j].get("id") is None), None)
            if j is not None:
                gone.remove(i)
                new.remove(j)
                self.walk(a[i], b[j], pa + (i,), pb + (j,), disp + (ids_a[i],))
        common_a = [x for x in ids_a if x in ids_b]
        common_b = [x for x in ids_b if x in ids_a]
        if common_a != common_b:
            self.add("reordered", disp, common_a, common_b, pa, pb, f"{name}: order {show(common_a)} -> {show(common_b)}")
        for i in gone:
            shown = _written(self.a, pa + (i,), a[i])
            self.add("removed", disp + (ids_a[i],), a[i], None, pa + (i,), None, f"{name}.{ids_a[i]}: removed {show(shown)}")
        for j, ident in enumerate(ids_b):  # in B's order: additions where they were inserted
            if j in new:
                shown = _written(self.b, pb + (j,), b[j])
                self.add("added", disp + (ident,), None, b[j], None, pb + (j,), f"{name}.{ident}: added {show(shown)}")
            elif ident in ids_a:
                i = ids_a.index(ident)
                self.walk(a[i], b[j], pa + (i,), pb + (j,), disp + (ident,))


def recipe_changes(a: Side, b: Side) -> list[Change]:
    """Every difference of the resolved recipes, method first, then runtime, then paths."""
    differ = _Differ(a, b)
    differ.walk(a.resolved.data, b.resolved.data, (), (), ())
    return sorted(differ.changes, key=lambda c: GROUPS.index(c.group))


# ---------------------------------------------------------------- timelines
_DATA_CACHE: dict[str, int] = {}


def steps_per_epoch(recipe: Any) -> int:
    """``ceil(n_train / batch_size)`` from the recipe's dataset (loaded once per dataset setting)."""
    from registry.datasets.data_root import resolve_data_root

    key = json.dumps([recipe.data.name, recipe.data.params.model_dump(mode="json"), recipe.runtime.data_root,
                      recipe.data.train_split], sort_keys=True)
    if key not in _DATA_CACHE:
        dataset = registry.build("datasets", recipe.data.name, recipe.data.params)
        bundle = dataset.load(resolve_data_root(recipe.runtime.data_root))
        _DATA_CACHE[key] = len(bundle.splits[recipe.data.train_split])
    return math.ceil(_DATA_CACHE[key] / recipe.data.batch_size)


@dataclass
class TimelineDiff:
    identical: bool
    header: list[str]
    rows: list[list[str]]  # side by side, first cell "" or a marker
    note: str = ""
    compiled: bool = True  # False: data unavailable, the phase structure is compared instead


def _segment_rows(side: Side) -> tuple[list[list[str]], str]:
    from recipe_engine.plan import compile_timeline, describe

    per_epoch = steps_per_epoch(side.resolved.recipe)
    tl = compile_timeline(side.resolved.recipe.schedule, per_epoch)
    rows = [[r[1], r[3], r[4], r[5], r[6]] for r in describe(tl)]
    return rows, f"{per_epoch} steps/epoch, {tl.train_steps} train-data steps, {tl.total_steps} optimizer steps"


def _length_text(ph: dict[str, Any]) -> str:
    if ph.get("until"):
        return "until end"
    spec = ph.get("for")
    if isinstance(spec, dict):
        return " ".join(f"{v} {k}" for k, v in spec.items() if v is not None)
    return str(spec)


def _phase_rows(schedule: dict[str, Any]) -> list[list[str]]:
    """The phase structure (when the data is unavailable): one row per phase, nested ones indented."""
    rows: list[list[str]] = []

    def walk(phases: list, depth: int) -> None:
        for ph in phases:
            pad = "  " * depth
            if ph.get("phases"):
                rows.append([f"{pad}{ph['id']}", f"repeat {ph['repeat']}", "", "", ""])
                walk(ph["phases"], depth + 1)
                continue
            terms = ", ".join((t.get("id") or t["name"]) + ("" if t.get("weight") == 1.0 else f" x{show(t.get('weight'))}")
                              for t in ph.get("objectives") or [])
            opt = ph.get("optimizer")
            opt_text = "main" if not opt else f"{opt['name']} {show(opt['params'])}" + (" (reset after)" if opt.get("reset_state") else "")
            rows.append([f"{pad}{ph['id']}", _length_text(ph), "", terms, opt_text])

    walk(schedule.get("phases") or [], 0)
    return rows


def timeline_diff(a: Side, b: Side) -> TimelineDiff:
    """The two schedules as compiled timelines, aligned side by side (``difflib`` on the segments)."""
    note, compiled = "", True
    try:
        rows_a, info_a = _segment_rows(a)
        rows_b, info_b = _segment_rows(b)
        note = f"A: {info_a}; B: {info_b}"
    except Exception as exc:  # noqa: BLE001 - data missing or unreadable: fall back to the phase structure
        reason = str(exc).split(";")[0]
        rows_a, rows_b = _phase_rows(a.resolved.data["schedule"]), _phase_rows(b.resolved.data["schedule"])
        note, compiled = f"data unavailable ({reason}); the phase structure is compared instead", False
    header = ["", "A phase", "steps", "data", "terms", "optimizer", "B phase", "steps", "data", "terms", "optimizer"]
    blank = [""] * 5
    rows: list[list[str]] = []
    # align on what a segment is (phase, data, terms, optimizer), then mark length changes with "~"
    shape = lambda r: (r[0], r[2], r[3], r[4])  # noqa: E731
    matcher = difflib.SequenceMatcher(a=[shape(r) for r in rows_a], b=[shape(r) for r in rows_b], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        left, right = rows_a[i1:i2], rows_b[j1:j2]
        for k in range(max(len(left), len(right))):
            la = left[k] if k < len(left) else blank
            rb = right[k] if k < len(right) else blank
            if la is blank or rb is blank:
                mark = "+" if la is blank else "-"
            else:
                mark = "" if la == rb else "~"
            rows.append([mark, *la, *rb])
    identical = rows_a == rows_b
    return TimelineDiff(identical, header, rows, note, compiled)


# ---------------------------------------------------------------- run folders
def _flat_env(env: dict[str, Any]) -> dict[str, Any]:
    out = {
        "git SHA": env.get("git_sha"),
        "git dirty": env.get("git_dirty"),
        "device": env.get("device"),
        "world size": env.get("world_size"),
    }
    for k in ("gpu", "cuda", "platform"):
        if k in env:
            out[k] = env[k]
    for k, v in (env.get("versions") or {}).items():
        out[k] = v
    return out


def _cell(v: Any) -> str:
    return ABSENT if v is None else show(v) if isinstance(v, bool) else str(v)


def environment_rows(a: RunResults, b: RunResults) -> list[list[str]]:
    ea, eb = _flat_env(a.run_json.get("environment") or {}), _flat_env(b.run_json.get("environment") or {})
    rows = []
    for k in list(ea) + [k for k in eb if k not in ea]:
        va, vb = ea.get(k), eb.get(k)
        rows.append(["" if va == vb else "≠", k, _cell(va), _cell(vb)])
    return rows


def _data_files(run: RunResults) -> dict[str, str]:
    root = run.run_json.get("data_root")
    out = {}
    for p, h in (run.run_json.get("data_hashes") or {}).items():
        rel = os.path.relpath(p, root) if root and os.path.isabs(p) and p.startswith(str(root)) else p
        out[rel] = h
    return out


def data_rows(a: RunResults, b: RunResults) -> list[list[str]]:
    fa, fb = _data_files(a), _data_files(b)
    rows = []
    for f in sorted(set(fa) | set(fb)):
        ha, hb = fa.get(f), fb.get(f)
        status = "same" if ha == hb else ("only A" if hb is None else "only B" if ha is None else "differs")
        rows.append(["" if status == "same" else "≠", f, (ha or ABSENT)[:12], (hb or ABSENT)[:12], status])
    return rows


def metric_rows(a: RunResults, b: RunResults) -> list[dict[str, Any]]:
    """Per metric reported by both runs: mean ± sd over seeds, B - A, and Welch's p."""
    out = []
    for key in order_keys(set(a.keys) & set(b.keys)):
        va, vb = list(a.values(key).values()), list(b.values(key).values())
        if not va or not vb:
            continue
        t = welch(va, vb)
        out.append({"metric": key,
                    "a": {"mean": mean(va), "sd": sample_sd(va) if len(va) > 1 else 0.0, "n": len(va)},
                    "b": {"mean": mean(vb), "sd": sample_sd(vb) if len(vb) > 1 else 0.0, "n": len(vb)},
                    "diff": t.diff, "t": t.statistic, "df": t.df, "p": t.p})
    return out


# ---------------------------------------------------------------- the result
@dataclass
class DiffResult:
    a: Side
    b: Side
    changes: list[Change]
    timeline: TimelineDiff | None
    environment: list[list[str]] = field(default_factory=list)
    data: list[list[str]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def same_method(self) -> bool:
        return self.a.resolved.fingerprint == self.b.resolved.fingerprint

    @property
    def exit_code(self) -> int:
        return EXIT_SAME if self.same_method else EXIT_DIFFERENT

    def group(self, name: str) -> list[Change]:
        return [c for c in self.changes if c.group == name]

    @property
    def runs(self) -> bool:
        return self.a.run is not None and self.b.run is not None


def diff(a: str | os.PathLike, b: str | os.PathLike) -> DiffResult:
    side_a, side_b = load_side(a), load_side(b)
    changes = recipe_changes(side_a, side_b)
    timeline = None
    schedule_changed = side_a.resolved.data["schedule"] != side_b.resolved.data["schedule"]
    data_a, data_b = side_a.resolved.data["data"], side_b.resolved.data["data"]
    length_inputs_changed = any(data_a[k] != data_b[k] for k in ("name", "params", "batch_size", "train_split"))
    if schedule_changed or length_inputs_changed:
        timeline = timeline_diff(side_a, side_b)
        if timeline.identical and not schedule_changed:
            timeline = None  # the data changed, but not the number of steps
    result = DiffResult(side_a, side_b, changes, timeline)
    if result.runs:
        result.environment = environment_rows(side_a.run, side_b.run)
        result.data = data_rows(side_a.run, side_b.run)
        result.metrics = metric_rows(side_a.run, side_b.run)
    return result


# ---------------------------------------------------------------- rendering
def _title(side: Side, letter: str) -> str:
    r = side.resolved
    src = ""
    if side.run is not None:
        frozen = Path(side.source).name == "resolved.yaml" and Path(side.source).parent == Path(side.arg)
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
                lines += ["  " + line for line in format_table(tl.rows, tl.header).splitlines()]
    if res.runs:
        lines += ["", "environment", *("  " + x for x in format_table(res.environment, ["", "setting", "A", "B"]).splitlines())]
        if res.data:
            lines += ["", "data hashes", *("  " + x for x in format_table(res.data, ["", "file", "A", "B", "status"]).splitlines())]
        if res.metrics:
            header, rows = _metric_table(res)
            lines += ["", f"metrics (mean ± sd over seeds; A: {len(res.a.run.seeds)} seeds, B: {len(res.b.run.seeds)} seeds)"]
            lines += ["  " + x for x in format_table(rows, header).splitlines()]
    return "\n".join(lines)


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    esc = lambda s: str(s).replace("|", "\\|") or " "  # noqa: E731
    return ["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(map(esc, r)) + " |" for r in rows)]


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


def render(res: DiffResult, fmt_name: str) -> str:
    if fmt_name == "text":
        return render_text(res)
    if fmt_name == "markdown":
        return render_markdown(res)
    if fmt_name == "json":
        return json.dumps(to_json(res), indent=2, ensure_ascii=False, default=str)
    raise UserError(f"--format {fmt_name!r}: use one of {', '.join(FORMATS)}")


def diff_paths(a: str, b: str, fmt_name: str = "text") -> tuple[str, int]:
    """The whole ``diff`` command: (rendered output, exit code 0 same method / 1 different)."""
    res = diff(a, b)
    return render(res, fmt_name), res.exit_code


__all__ = ["diff", "diff_paths", "DiffResult", "Change", "recipe_changes", "load_side", "render"]
