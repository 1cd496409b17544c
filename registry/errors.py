"""Errors a user can cause, rendered one way: ``FILE:LINE:COL: path: message; fix``."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Origin:
    """Where a value came from: a file position, the command line, or a default."""

    file: str | None = None
    line: int | None = None  # 1-based
    col: int | None = None  # 1-based
    source: str = "file"  # "file" | "base" | "cli" | "default"

    def __str__(self) -> str:
        if self.source == "cli":
            return "command line"
        if self.source == "default":
            return "default"
        where = f"{self.file}:{self.line}" if self.line is not None else f"{self.file}"
        return f"{where} (base)" if self.source == "base" else where


@dataclass
class RecipeError:
    message: str
    path: str = ""  # dotted path, e.g. "schedule.phases.label.for"
    origin: Origin = field(default_factory=Origin)

    def render(self) -> str:
        o = self.origin
        if o.source == "cli":
            loc = "<command line>"
        elif o.file is None:
            loc = "<recipe>"
        elif o.line is None:
            loc = o.file
        else:
            loc = f"{o.file}:{o.line}:{o.col or 1}"
        return f"{loc}: {self.path}: {self.message}" if self.path else f"{loc}: {self.message}"

    def sort_key(self) -> tuple:
        o = self.origin
        return (o.source == "cli", o.file or "", o.line or 0, o.col or 0, self.path)


class RecipeErrors(Exception):
    """One or more user errors; ``str()`` renders them all, sorted by file and line."""

    def __init__(self, errors: list[RecipeError]):
        self.errors = sorted(errors, key=RecipeError.sort_key)
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(e.render() for e in self.errors)


class UserError(Exception):
    """A run-time problem the user can fix (missing data file, bad column mapping...).

    The message names the file, the setting and the fix; the CLI prints it without a
    traceback.
    """


class DataUnavailable(UserError):
    """The data is not here: a missing file or data root, or a hub that cannot be reached.

    ``validate`` reports a recipe whose data is unavailable as valid (its schedule just cannot
    be compiled here); every other data error is an error of the recipe.
    """
