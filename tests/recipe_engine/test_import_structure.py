"""The import structure of ``recipe_engine``: its modules import each other without cycles, and
only at the top of a module; a function imports nothing but an optional or heavy third-party
library (``LAZY_ALLOWED``)."""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "recipe_engine"
PROJECT_PACKAGES = ("recipe_engine", "registry")

#: third-party modules that a function may import, and why it is not imported at the top
LAZY_ALLOWED = {
    "torch": "heavy (about 1 s): runs.load_test_logits needs it, reading a run's metrics (compare, diff) must not",
    "torch.utils.tensorboard": "optional TensorBoard logging in run_log.py, slow to import",
    "tqdm.auto": "progress bars in run_log.py, only with runtime.progress",
    "ray": "optional extra (recipe-engine[ray]) for run --launcher ray; missing, launch_ray says how to install it",
}

FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


def module_files() -> dict[str, Path]:
    """``{dotted module name: file}`` of every module of the package, subpackages included."""
    out = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imported_names(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The modules an import statement names: ``from a import b`` is module ``a.b`` when that
    exists, else ``a``; relative imports are resolved against ``module``."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = node.module or ""
    if node.level:
        anchor = module.split(".") if is_package else module.split(".")[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
    return [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]


def split_imports(tree: ast.Module) -> tuple[list[ast.Import | ast.ImportFrom], list[ast.Import | ast.ImportFrom]]:
    """(imports run when the module is imported, imports inside a function body)."""
    top: list[ast.Import | ast.ImportFrom] = []
    inner: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                (inner if in_function else top).append(child)
            visit(child, in_function or isinstance(child, FUNCTIONS))

    visit(tree, False)
    return top, inner


def is_project(name: str) -> bool:
    return name.split(".")[0] in PROJECT_PACKAGES


def import_graph() -> dict[str, set[str]]:
    """``{module: recipe_engine modules it imports at its top}``."""
    files = module_files()
    known = set(files)
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        top, _ = split_imports(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        is_package = path.name == "__init__.py"
        graph[name] = {t for node in top for t in imported_names(node, name, is_package, known)
                       if t in known and t != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as ``[a, b, ..., a]``, or None (depth-first search, three colours)."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for start in sorted(graph):
        if start not in state and (cycle := dfs(start)):
            return cycle
    return None


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "d": {"a", "c"}}) is None


def test_split_imports_tells_module_imports_from_function_imports():
    source = "import a\ntry:\n    import b\nexcept ImportError:\n    b = None\nclass C:\n    def f(self):\n        from c import d\n"
    top, inner = split_imports(ast.parse(source))
    assert [n.names[0].name for n in top] == ["a", "b"] and [n.module for n in inner] == ["c"]
    assert imported_names(inner[0], "recipe_engine.x", False, set()) == ["c"]
    relative = ast.parse("from . import render\nfrom .result import diff").body
    known = {"recipe_engine.diff.render", "recipe_engine.diff.result"}
    assert imported_names(relative[0], "recipe_engine.diff", True, known) == ["recipe_engine.diff.render"]
    assert imported_names(relative[1], "recipe_engine.diff.render", False, known) == ["recipe_engine.diff.result"]


def test_import_graph_sees_module_and_package_imports():
    graph = import_graph()
    assert "recipe_engine.diff.render" in graph and "recipe_engine.diff" in graph
    assert "recipe_engine.runs" in graph["recipe_engine.compare"]  # from recipe_engine.runs import ...
    assert "recipe_engine.runner" in graph["recipe_engine.sweep"]  # from recipe_engine import runner
    assert "recipe_engine.diff.result" in graph["recipe_engine.diff"]  # a package's __init__


def test_recipe_engine_imports_are_acyclic():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle in recipe_engine: " + " -> ".join(cycle or [])


def _function_imports() -> list[tuple[str, str]]:
    """``(file:line, imported module)`` of every import inside a function of the package."""
    files = module_files()
    out = []
    for name, path in files.items():
        _, inner = split_imports(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        for node in inner:
            for target in imported_names(node, name, path.name == "__init__.py", set(files)):
                out.append((f"{path.relative_to(PACKAGE_DIR.parent)}:{node.lineno}", target))
    return out


def test_no_project_module_is_imported_in_a_function():
    found = list(dict.fromkeys(f"{where}: {target}" for where, target in _function_imports() if is_project(target)))
    assert not found, "import these at the top of the module:\n" + "\n".join(found)


def test_functions_import_only_the_allowed_optional_or_heavy_libraries():
    assert not [m for m in LAZY_ALLOWED if is_project(m)]
    found = list(dict.fromkeys(f"{where}: {target}" for where, target in _function_imports()
                               if not is_project(target) and target not in LAZY_ALLOWED))
    assert not found, ("import these at the top of the module, or add a library that is optional or slow to "
                       "import to LAZY_ALLOWED with the reason:\n" + "\n".join(found))
