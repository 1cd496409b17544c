"""Where datasets read their files: ``runtime.data_root``, else ``$RECIPE_ENGINE_DATA_ROOT``,
else ``../shared/data`` next to the checkout."""
from __future__ import annotations

import os
from pathlib import Path

from registry.errors import DataUnavailable

ENV_VAR = "RECIPE_ENGINE_DATA_ROOT"
SETTING = "runtime.data_root"


def default_data_root() -> Path:
    """``<repo root>/../shared/data``, the project's offline data bundle."""
    import registry

    return Path(registry.__file__).resolve().parents[1].parent / "shared" / "data"


def resolve_data_root(setting: str | os.PathLike | None = None) -> Path:
    """The data root: the recipe's ``runtime.data_root`` (passed in), then the environment
    variable ``RECIPE_ENGINE_DATA_ROOT``, then ``default_data_root()``.  ``~`` is expanded;
    a relative path is taken relative to the current directory."""
    if setting is not None and str(setting) != "":
        chosen = Path(setting)
    elif os.environ.get(ENV_VAR):
        chosen = Path(os.environ[ENV_VAR])
    else:
        chosen = default_data_root()
    return chosen.expanduser().resolve()


def require_file(root: Path, rel: str | os.PathLike, dataset: str) -> Path:
    """``root / rel`` if it is a file, else a UserError naming the file, the setting and the fix."""
    path = Path(root) / rel
    if path.is_file():
        return path
    where = "the data root does not exist" if not Path(root).is_dir() else "the file is missing"
    raise DataUnavailable(
        f"{path}: data file of dataset {dataset!r} not found ({where}; data root {root}); "
        f"the data root comes from {SETTING} in the recipe, else the environment variable {ENV_VAR}, "
        f"else ../shared/data next to the checkout; fix: set {SETTING} (or {ENV_VAR}) to the folder "
        f"that holds {Path(rel).as_posix()}, e.g. the project's shared/data bundle"
    )
