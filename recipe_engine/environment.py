"""Where a run ran and on what data: git state, library versions, platform, device, and the
SHA-256 of every data file read.  ``run.json`` records both (``recipe_engine.runs``)."""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import torch

from recipe_engine.errors import UserError

try:  # Python >= 3.11; on 3.10 the version of a source checkout is simply not known
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    tomllib = None

_PACKAGE_DIR = Path(__file__).resolve().parent


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
    if tomllib is None:
        return None
    try:
        return tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"]
    except (OSError, KeyError, ValueError):
        return None


def environment_info(device: str, world_size: int = 1) -> dict[str, Any]:
    """What run.json records about where a run ran: git SHA + dirty flag, library versions,
    platform, device (plus CUDA version and GPU name on CUDA) and world size."""
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
