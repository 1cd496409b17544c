"""Helpers shared by the dataset components: JSONL reading, label mapping, did-you-mean."""
from __future__ import annotations

import difflib
import gzip
import json
from pathlib import Path
from typing import Any, Iterable, Sequence

from registry.datasets._checks import check_text_file
from registry.errors import UserError


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a UTF-8 JSONL file (``.gz`` transparently); a bad line is a UserError naming file:line."""
    return [row for _, row in read_jsonl_numbered(path)]


def read_jsonl_numbered(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` for every non-blank line of a JSONL file (1-based, as an editor counts).

    A line that is not a JSON object raises a UserError naming ``file:line``.
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    out: list[tuple[int, dict[str, Any]]] = []
    check_text_file(path, path.stem)
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno}); "
                                "fix: make every line of the file one JSON object") from None
            if not isinstance(row, dict):
                raise UserError(f"{path}:{number}: a JSON {type(row).__name__}, not an object; "
                                "fix: make every line of the file one JSON object") from None
            out.append((number, row))
    return out


def did_you_mean(name: str, options: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    match = difflib.get_close_matches(str(name), [str(o) for o in options], n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def infer_names(values: Iterable[Any]) -> list[str]:
    """Class names from raw values: sorted unique strings, or ``"0".."max"`` for integers."""
    distinct = {v for v in values if v is not None}
    if all(isinstance(v, (bool, int)) for v in distinct):
        top = max((int(v) for v in distinct), default=-1)
        return [str(i) for i in range(top + 1)]
    return sorted(str(v) for v in distinct)


def to_ids(values: Sequence[Any], names: list[str], *, file: str, setting: str, allow_missing: bool,
           first_line: int | None = None) -> list[int]:
    """Map raw labels (strings, ints or bools) to indices into ``names``.

    An int is taken as an index (it must be in range); a string must be one of ``names``.
    ``None`` (and -1) become -1 when ``allow_missing``.  With ``first_line`` (the file line of
    row 0: 1 for JSONL, 2 for CSV with a header) a bad value is reported as ``file:line``.
    """
    index = {n: i for i, n in enumerate(names)}
    out: list[int] = []
    where = file
    for row, v in enumerate(values):
        if first_line is not None:
            where = f"{file}:{first_line + row}"
        if v is None or (isinstance(v, float) and v != v):
            if not allow_missing:
                raise UserError(f"{where}: a row has no value for the column mapped by {setting}; fix: fill it in or map another column")
            out.append(-1)
            continue
        if isinstance(v, (bool, int)) or (isinstance(v, float) and v.is_integer()):
            i = int(v)
            if not (-1 if allow_missing else 0) <= i < len(names):
                raise UserError(
                    f"{where}: value {i} of the column mapped by {setting} is outside 0..{len(names) - 1} "
                    f"(names: {names}); fix: correct the names list or the data"
                )
            out.append(i)
            continue
        s = str(v)
        if s in index:
            out.append(index[s])
        else:
            raise UserError(
                f"{where}: value {s!r} of the column mapped by {setting} is not one of {names}"
                f"{did_you_mean(s, names)}; fix: add it to the names list or correct the data"
            )
    return out
