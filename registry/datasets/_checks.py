"""Checks every dataset's splits get, whatever their source: readable text (UTF-8), no empty
file, unique ids.  Each problem is one UserError naming the file (and line) and the fix."""
from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

from registry.errors import UserError


def check_text_file(path: Path, split: str) -> None:
    """``path`` decodes as UTF-8 and holds at least one non-blank line."""
    raw = gzip.open(path, "rb").read() if str(path).endswith(".gz") else path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise UserError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {col}); "
                        "fix: re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8") from None
    if not text.strip():
        raise UserError(f"{path}: the file of split {split!r} is empty; fix: point data.params.splits.{split} "
                        "at a file with rows, or leave the split out")


def check_unique_ids(ids: list[str], split: str, where: str) -> None:
    """Example ids identify rows (probes, attributions, HILDIF feedback): two rows may not share one."""
    dup = [i for i, n in Counter(ids).items() if n > 1]
    if dup:
        rows = [r for r, i in enumerate(ids) if i == dup[0]]
        raise UserError(f"{where}: split {split!r}: id {dup[0]!r} is used by {len(rows)} rows (rows {rows[0]} and "
                        f"{rows[1]}; {len(dup)} duplicated id(s) in all); fix: make the ids unique, or map no id "
                        "column (data.params.id_column) to number the rows")
