"""The registry says what exists without the engine: importing all of it loads no ``recipe_engine``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: run in a fresh interpreter: load the registry, import every module under registry/, and
#: print the engine modules that came along
_PROBE = """
import importlib, json, pkgutil, sys
import registry
registry.load_all()
for name in registry.BUILTIN_MODULES:
    importlib.import_module(name)
for info in pkgutil.walk_packages(registry.__path__, "registry."):
    importlib.import_module(info.name)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("recipe_engine"))))
"""


def test_registry_imports_no_recipe_engine() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-c", _PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    engine_modules = json.loads(proc.stdout.strip().splitlines()[-1])
    assert engine_modules == [], f"importing registry/ loaded {engine_modules}"


def test_engine_errors_are_the_registry_errors() -> None:
    import recipe_engine.errors
    import registry.errors

    for name in ("Origin", "RecipeError", "RecipeErrors", "UserError"):
        assert getattr(recipe_engine.errors, name) is getattr(registry.errors, name), name
