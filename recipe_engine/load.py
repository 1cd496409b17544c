"""Load a recipe: safe YAML with positions, ``extends:`` chains, ``~key`` deletions, overrides.

Never raises for a user's mistake: every problem becomes a :class:`RecipeError` in
``LoadedRecipe.errors`` so that all of them can be shown at once.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from recipe_engine.errors import Origin, RecipeError
from recipe_engine.merge import Merger, did_you_mean, dotted, plain_identity
from recipe_engine.overrides import apply_overrides
from recipe_engine.yaml_positions import Node, flatten, parse_yaml, to_plain

__all__ = ["LoadedRecipe", "Path_", "dotted", "load_recipe", "load_text", "origin_of"]

Path_ = tuple[str | int, ...]
MAX_FILE_BYTES = 10 * 2**20
EXTENDS_HELP = "extends names a base recipe file or a list of them, e.g. extends: ../base/textlen.yaml"


@dataclass
class LoadedRecipe:
    """A merged recipe tree and where each of its values was written."""

    data: dict
    origins: dict[Path_, Origin]
    files: list[str] = field(default_factory=list)
    errors: list[RecipeError] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


def load_recipe(path: str | os.PathLike, overrides: Sequence[str] = ()) -> LoadedRecipe:
    """Load the recipe file at ``path`` (its ``extends`` relative to its own directory)."""
    loading = _Loading()
    path = os.fspath(path)
    loading.file(path, "file", (), via=None)
    return loading.finish(display_path(path), overrides)


def load_text(text: str, filename: str = "<string>", overrides: Sequence[str] = ()) -> LoadedRecipe:
    """Load a recipe from ``text`` (shown as ``filename``); ``extends`` is resolved relative to the cwd."""
    loading = _Loading()
    loading.text(text, filename, os.getcwd(), "file", ())
    return loading.finish(filename, overrides)


def origin_of(loaded: LoadedRecipe, path: Path_) -> Origin:
    """Origin of ``path``, or of its nearest existing ancestor (list items may be named by id)."""
    path = _index_path(loaded.data, tuple(path))
    for n in range(len(path), -1, -1):
        origin = loaded.origins.get(path[:n])
        if origin is not None:
            return origin
    return Origin(loaded.files[-1] if loaded.files else None)


def _index_path(data: object, path: Path_) -> Path_:
    """Replace identity segments (``phases.label``) by list indices where the data allows."""
    out: list[str | int] = []
    current = data
    for seg in path:
        if isinstance(current, list) and isinstance(seg, str):
            ids = [plain_identity(item) for item in current]
            seg = ids.index(seg) if seg in ids else int(seg) if seg.isascii() and seg.isdigit() and len(seg) < 10 else seg
        out.append(seg)
        if isinstance(current, dict) and seg in current:
            current = current[seg]
        elif isinstance(current, list) and isinstance(seg, int) and 0 <= seg < len(current):
            current = current[seg]
        else:
            current = None
    return tuple(out)


def display_path(path: str) -> str:
    """``path`` relative to the cwd when it lies below it, else absolute."""
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute)
    except ValueError:  # another drive on Windows
        return absolute
    return absolute if relative.startswith("..") else relative


def _read(path: str, what: str, shown: str) -> tuple[str | None, str, int | None]:
    """``(text, problem, line)``: the file's text, or why it cannot be used."""
    if not os.path.exists(path):
        folder = os.path.dirname(os.path.abspath(path))
        try:
            nearby = sorted(os.listdir(folder))
        except OSError:
            nearby = []
        return None, f"{what} '{shown}' not found; check the path{did_you_mean(os.path.basename(path), nearby)}", None
    if not os.path.isfile(path):
        return None, f"{what} '{shown}' is not a file; give the path of a .yaml recipe", None
    try:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            return None, f"{what} '{shown}' is larger than {MAX_FILE_BYTES >> 20} MiB; a recipe is a small text file", None
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        return None, f"{what} '{shown}' cannot be read ({e.strerror}); check that it exists and is readable", None
    try:
        return raw.decode("utf-8-sig"), "", None
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        return None, (f"{what} is not UTF-8 text (byte {raw[e.start]:#04x} at offset {e.start}); "
                      "save it as UTF-8"), line


class _Loading:
    """State of one load: files read in extends order (bases first), their bodies, errors.

    The extends graph is linearised depth-first (each file once, every base before the
    files that extend it, bases in the order written), then the bodies are merged in that
    order. For a chain or a tree this equals merging each file's resolved bases; in a
    diamond a shared base is applied once, so it cannot undo a sibling's settings.
    """

    def __init__(self) -> None:
        self.merger = Merger()
        self.errors: list[RecipeError] = []
        self.files: list[str] = []
        self.bodies: list[Node] = []
        self._read: set[str] = set()

    def file(self, path: str, source: str, chain: tuple[tuple[str, str], ...], via: Origin | None) -> None:
        """Read one file and its bases; ``via`` is the ``extends`` entry that named it (None: the recipe)."""
        real = os.path.realpath(path)
        if real in self._read:
            return
        self._read.add(real)
        shown = display_path(path)
        text, problem, line = _read(path, "base file" if via else "recipe file", shown)
        if text is None:
            if line is not None:
                origin = Origin(shown, line, None, source)
            else:
                origin = via or Origin(shown, None, None, source)
            self.errors.append(RecipeError(problem, "extends" if via and line is None else "", origin))
            if via is None:
                self.files.append(shown)
            return
        self.text(text, shown, os.path.dirname(os.path.abspath(path)), source, chain + ((real, shown),))

    def text(self, text: str, shown: str, base_dir: str, source: str, chain: tuple[tuple[str, str], ...]) -> None:
        """Parse ``text``, read its bases, then queue its body (after theirs)."""
        tree, problems = parse_yaml(text, shown, source)
        plain = to_plain(tree)
        self.errors += [RecipeError(p.message, dotted(p.path, plain), p.origin) for p in problems]
        if tree is not None and not isinstance(tree.value, dict):
            kind = "list" if isinstance(tree.value, list) else f"single value ({tree.value!r:.40})"
            self.errors.append(RecipeError(f"a recipe is a mapping of sections (name:, model:, data:, ...), "
                                           f"not a {kind}; write 'section: value' lines", "", tree.origin))
            tree = None
        if tree is None:
            self.files.append(shown)
            return
        body = dict(tree.value)
        self._bases(body.pop("extends", None), base_dir, chain)
        self.files.append(shown)
        self.bodies.append(Node(body, tree.origin))

    def _bases(self, extends: Node | None, base_dir: str, chain: tuple[tuple[str, str], ...]) -> None:
        if extends is None:
            return
        entries = [extends] if isinstance(extends.value, str) else extends.value
        if not isinstance(entries, list) or any(not isinstance(e.value, str) or not e.value.strip() or "\0" in e.value for e in entries):
            self.errors.append(RecipeError(f"{EXTENDS_HELP}; got {to_plain(extends)!r:.60}", "extends", extends.origin))
            return
        for entry in entries:
            origin = extends.origin if entry is extends else entry.origin
            target = os.path.normpath(os.path.join(base_dir, os.path.expanduser(entry.value.strip())))
            seen = [real for real, _ in chain]
            if os.path.realpath(target) in seen:
                loop = [shown for _, shown in chain[seen.index(os.path.realpath(target)):]] + [display_path(target)]
                self.errors.append(RecipeError(f"extends cycle: {' -> '.join(loop)}; remove one of these extends",
                                               "extends", origin))
                continue
            self.file(target, "base", chain, via=origin)

    def finish(self, fallback_file: str, overrides: Sequence[str]) -> LoadedRecipe:
        """Merge the bodies in order, apply the overrides, flatten."""
        root: Node | None = None
        for body in self.bodies:
            root = self.merger.merge(root, body)
        if root is None:
            root = Node({}, Origin(fallback_file, 1, 1, "file"))
        root, override_errors = apply_overrides(root, overrides)
        data, origins = flatten(root)
        errors: list[RecipeError] = []
        for error in self.errors + self.merger.errors + override_errors:
            if error not in errors:
                errors.append(error)
        errors.sort(key=RecipeError.sort_key)
        return LoadedRecipe(data, origins, self.files, errors, list(dict.fromkeys(self.merger.notices)))
