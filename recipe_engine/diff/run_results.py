"""What two run folders add to a diff: their environments, data hashes and metrics (mean ±
sd over seeds, B - A and Welch's test)."""
from __future__ import annotations

import os
from typing import Any

from recipe_engine.diff.recipes import ABSENT, show
from recipe_engine.runs import RunResults
from recipe_engine.stats import mean, sample_sd, welch
from recipe_engine.table import order_keys


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
