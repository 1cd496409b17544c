"""Crash-safe file writes: whole files replaced atomically, JSON lines appended whole, strict JSON.

What the files of a run folder are is ``recipe_engine.runs``; these helpers know nothing of it.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

from recipe_engine import faults


def _fsync_dir(directory: Path) -> None:
    """Persist a rename on POSIX; a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to a temp file next to ``path``, fsync it, then ``os.replace`` it onto
    ``path``: readers see the old content or the new one, never a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes 0600; a run folder is for colleagues too
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        faults.point("write")
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


def current_umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def drop_torn_tail(path: str | os.PathLike) -> bool:
    """Cut a JSON-lines file back to its last complete line (a run killed while appending
    leaves a line without its newline); True when something was cut."""
    path = Path(path)
    if not path.is_file():
        return False
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return False
    with open(path, "r+b") as f:
        f.truncate(data.rfind(b"\n") + 1)
    return True


def to_jsonable(obj: Any) -> Any:
    """Plain JSON types: non-finite floats become ``null`` (strict JSON has no NaN), tuples and
    sets lists, paths and dates strings, numpy/torch scalars numbers, dict keys strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if obj is None or isinstance(obj, (str, bool, int)):
        return obj
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(to_jsonable(v) for v in obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (datetime, date)):
        return obj.isoformat()
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy / torch scalars and arrays
        return to_jsonable(obj.tolist())
    if hasattr(obj, "model_dump"):  # pydantic models
        return to_jsonable(obj.model_dump(mode="json"))
    raise TypeError(f"cannot write a {type(obj).__name__} as JSON: {obj!r:.80}")


def dumps_json(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Serialise ``obj`` completely first, then write it atomically (``atomic_write_text``);
    a failure while serialising leaves the old file untouched."""
    atomic_write_text(path, dumps_json(obj))


def append_jsonl(path: str | os.PathLike, record: dict[str, Any], *, fsync: bool = False) -> None:
    """Append ``record`` as one JSON line with a single ``O_APPEND`` write (no user-space
    buffer), so concurrent or interrupted writers never interleave partial lines; ``fsync``
    also waits until the line is on disk (for lines a person typed, which cannot be redone)."""
    line = (json.dumps(to_jsonable(record), ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)  # the umask applies
    try:
        if faults.due("append"):  # a torn line, as a kill in the middle of a write leaves it
            os.write(fd, line[: len(line) // 2])
            faults.die()
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
