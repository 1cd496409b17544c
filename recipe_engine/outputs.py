"""The run folder: atomic writes, run naming, environment and data fingerprints, completion.

Layout (DESIGN.md section 7)::

    outputs/<recipe-name>/<YYYYmmdd-HHMMSS>-<fingerprint8>/
      recipe.yaml resolved.yaml run.json
      seed-<n>/ metrics.jsonl tb/ checkpoints/ eval/metrics.json
      summary.json summary.md .complete
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from datetime import date, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from recipe_engine.errors import UserError

COMPLETE_MARKER = ".complete"
_PACKAGE_DIR = Path(__file__).resolve().parent


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
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(path.parent)


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


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line with a single ``O_APPEND`` write (no user-space
    buffer), so concurrent or interrupted writers never interleave partial lines."""
    line = (json.dumps(to_jsonable(record), ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(line)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def new_run_dir(out_root: Path, recipe_name: str, fingerprint: str, now: datetime | None = None) -> Path:
    """Create ``<out_root>/<recipe_name>/<YYYYmmdd-HHMMSS>-<fingerprint[:8]>/`` and return it.

    A folder that exists already is never reused: ``-2``, ``-3``... are appended instead
    (``mkdir(exist_ok=False)`` is atomic, so two processes never get the same folder).
    """
    if not recipe_name or recipe_name in (".", "..") or any(sep in recipe_name for sep in ("/", "\\", os.sep)):
        raise UserError(
            f"recipe name {recipe_name!r} cannot be a folder name under {out_root}; "
            "set name: to letters, digits, '-', '_' or '.'"
        )
    if not fingerprint:
        raise ValueError("new_run_dir needs a non-empty fingerprint")
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    parent = Path(out_root) / recipe_name
    parent.mkdir(parents=True, exist_ok=True)
    base = f"{stamp}-{fingerprint[:8]}"
    for n in range(1, 10_000):
        candidate = parent / (base if n == 1 else f"{base}-{n}")
        try:
            candidate.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        return candidate
    raise RuntimeError(f"could not create a new run folder for {base} under {parent}")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(_PACKAGE_DIR), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state() -> tuple[str | None, bool | None]:
    """(HEAD commit SHA, dirty?) of the git repository holding this package; ``(None, None)``
    outside a repository.  Dirty means modified, staged or untracked (not ignored) files."""
    sha = _git("rev-parse", "HEAD")
    if sha is None:
        return None, None
    status = _git("status", "--porcelain")
    return sha.strip(), (None if status is None else bool(status.strip()))


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _own_version() -> str | None:
    """Installed recipe-engine version, or the one in a source checkout's pyproject.toml."""
    installed = _version("recipe-engine")
    if installed is not None:
        return installed
    pyproject = _PACKAGE_DIR.parent / "pyproject.toml"
    try:
        import tomllib

        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    except (ImportError, OSError, KeyError, ValueError):
        return None


def environment_info(device: str, world_size: int = 1) -> dict[str, Any]:
    """What run.json records about where a run ran: git SHA + dirty flag, library versions,
    platform, device (plus CUDA version and GPU name on CUDA) and world size."""
    import torch

    sha, dirty = git_state()
    info: dict[str, Any] = {
        "git_sha": sha,
        "git_dirty": dirty,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": _version("transformers"),
            "datasets": _version("datasets"),
            "pydantic": _version("pydantic"),
            "recipe-engine": _own_version(),
        },
        "platform": platform.platform(),
        "executable": sys.executable,
        "device": str(device),
        "world_size": int(world_size),
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["cuda"] = torch.version.cuda
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    except FileNotFoundError:
        raise UserError(f"data file {path} is missing; check the data paths of the recipe (data.params)") from None
    return h.hexdigest()


def data_hashes(paths: Iterable[str | os.PathLike]) -> dict[str, str]:
    """``{path: sha256}`` for every data file read, sorted by path, duplicates once."""
    return {p: file_sha256(p) for p in sorted({os.fspath(p) for p in paths})}


def mark_complete(run_dir: str | os.PathLike) -> None:
    """Write ``.complete`` (its content: the finishing time) once a run has written everything."""
    atomic_write_text(Path(run_dir) / COMPLETE_MARKER, datetime.now().isoformat(timespec="seconds") + "\n")


def is_complete(run_dir: str | os.PathLike) -> bool:
    return (Path(run_dir) / COMPLETE_MARKER).is_file()
