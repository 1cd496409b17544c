"""What exists: the component registry.

Every component (model, dataset, objective, attribution, metric, augmenter, optimizer,
scheduler) is a class registered by name with a nested Pydantic ``Params`` model.  The
recipe schema, ``recipe-engine ls``/``explain`` and the error messages are all derived from
this one place.

Built-ins are imported from the explicit list ``BUILTIN_MODULES``; third parties add
components through entry points (group ``recipe_engine.<kind>``, e.g.
``recipe_engine.objectives``).  There is no directory scanning and no dotted-path escape
hatch: a recipe can only name what is registered here.
"""
from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, ClassVar, Iterable

from pydantic import BaseModel, ConfigDict

KINDS: tuple[str, ...] = (
    "models",
    "datasets",
    "objectives",
    "attributions",
    "metrics",
    "augmenters",
    "optimizers",
    "schedulers",
)
_SINGULAR = {k[:-1]: k for k in KINDS}  # "objective" -> "objectives"
ENTRY_POINT_PREFIX = "recipe_engine."

#: Built-in component modules, imported in this order.  Add a module here to ship it.
BUILTIN_MODULES: tuple[str, ...] = (
    "registry.models.hf_classifier",
    "registry.models.offline_minilm",
    "registry.models.tiny_bert",
    "registry.datasets.textlen",
    "registry.datasets.msgs",
    "registry.datasets.files",
    "registry.datasets.snips",
    "registry.datasets.snli",
    "registry.datasets.mnli",
    "registry.datasets.hans",
    "registry.datasets.esnli",
    "registry.objectives.cross_entropy",
    "registry.objectives.influence_tuning",
    "registry.objectives.embedding_tuning",
    "registry.objectives.adversarial",
    "registry.objectives.rationale_erasure",
    "registry.objectives.ig_variance",
    "registry.attributions.saliency",
    "registry.attributions.gradient_x_input",
    "registry.attributions.integrated_gradients",
    "registry.objectives.rationale_extractor",
    "registry.objectives.rationale_margin",
    "registry.augmenters.synonym_replacement",
    "registry.objectives.hildif",
    "registry.metrics.accuracy",
    "registry.metrics.class_accuracy",
    "registry.metrics.group_accuracy",
    "registry.metrics.roc_auc",
    "registry.metrics.calibration",
    "registry.metrics.cid",
    "registry.metrics.attribution_variance",
    "registry.metrics.rationale_agreement",
    "registry.metrics.hans_accuracy",
    "registry.optimizers.adamw",
    "registry.optimizers.schedulers",
)


class StrictParams(BaseModel):
    """Base of every component's ``Params``: the house settings, so a Params states only its fields.

    Unknown keys are errors (``extra="forbid"``), so a misspelt setting is never silently ignored.
    """

    model_config = ConfigDict(extra="forbid")
    #: optional fields added after recipes were run and archived: while unset (None) a recipe's
    #: fingerprint leaves them out, so those runs keep theirs (``--resume``, archives)
    added_later: ClassVar[frozenset[str]] = frozenset()


class NoParams(StrictParams):
    """Params model of a component that takes none."""


class Component:
    """Base class of every registered component.

    Subclasses set the class attributes below and nest a ``Params`` model subclassing
    ``StrictParams``.
    """

    kind: ClassVar[str] = ""
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    paper: ClassVar[str] = ""
    equation: ClassVar[str] = ""
    #: columns the dataset must provide, e.g. ("confound",) or ("rationale",)
    requires: ClassVar[tuple[str, ...]] = ()
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, params: BaseModel | None = None) -> None:
        self.params = params if params is not None else self.Params()


class RegistryError(Exception):
    """A lookup or registration problem, with a message meant for a user."""


@dataclass
class _Entry:
    cls: type[Component]
    module: str
    plugin: str | None = None  # distribution name when it came from an entry point


@dataclass
class Registry:
    """Name -> component class, per kind."""

    entries: dict[str, dict[str, _Entry]] = field(default_factory=lambda: {k: {} for k in KINDS})
    plugins: dict[str, str] = field(default_factory=dict)  # distribution -> version
    plugin_errors: list[str] = field(default_factory=list)

    def add(self, kind: str, name: str, cls: type[Component], plugin: str | None = None) -> None:
        kind = normalize_kind(kind)
        existing = self.entries[kind].get(name)
        if existing is not None and existing.cls is not cls:
            raise RegistryError(
                f"two {kind} are registered as {name!r}: {existing.module}.{existing.cls.__name__} "
                f"and {cls.__module__}.{cls.__name__}; rename one of them"
            )
        cls.kind, cls.name = kind, name
        self.entries[kind][name] = _Entry(cls, cls.__module__, plugin)

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[normalize_kind(kind)])

    def has(self, kind: str, name: str) -> bool:
        return name in self.entries[normalize_kind(kind)]

    def get(self, kind: str, name: str) -> type[Component]:
        kind = normalize_kind(kind)
        try:
            return self.entries[kind][name].cls
        except KeyError:
            raise RegistryError(self.unknown_message(kind, name)) from None

    def entry(self, kind: str, name: str) -> _Entry:
        self.get(kind, name)
        return self.entries[normalize_kind(kind)][name]

    def find(self, name: str) -> list[tuple[str, type[Component]]]:
        """All (kind, class) registered under ``name`` in any kind."""
        return [(k, e[name].cls) for k, e in self.entries.items() if name in e]

    def closest(self, kind: str, name: str) -> str | None:
        match = difflib.get_close_matches(str(name), self.names(kind), n=1, cutoff=0.6)
        return match[0] if match else None

    def unknown_message(self, kind: str, name: str) -> str:
        kind = normalize_kind(kind)
        parts = [f"unknown {kind[:-1]} {name!r}"]
        hint = self.closest(kind, name)
        if hint:
            parts.append(f"did you mean {hint!r}?")
        parts.append("registered: " + (", ".join(self.names(kind)) or "none"))
        parts.append("plugins: " + (", ".join(f"{d} {v}" for d, v in sorted(self.plugins.items())) or "none"))
        return "; ".join(parts)


def normalize_kind(kind: str) -> str:
    if kind in KINDS:
        return kind
    if kind in _SINGULAR:
        return _SINGULAR[kind]
    raise RegistryError(f"unknown component kind {kind!r}; kinds: {', '.join(KINDS)}")


REGISTRY = Registry()
_loaded = False


def register(kind: str, name: str):
    """Class decorator: ``@register("objective", "influence_tuning")``."""

    def deco(cls: type[Component]) -> type[Component]:
        REGISTRY.add(kind, name, cls)
        return cls

    return deco


def _load_entry_points() -> None:
    for kind in KINDS:
        for ep in metadata.entry_points(group=ENTRY_POINT_PREFIX + kind):
            dist = ep.dist.name if ep.dist is not None else "?"
            version = ep.dist.version if ep.dist is not None else "?"
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not break the tool
                REGISTRY.plugin_errors.append(f"plugin {dist}: entry point {ep.name} = {ep.value} failed to load: {exc}")
                continue
            REGISTRY.plugins[dist] = version
            if isinstance(obj, type) and issubclass(obj, Component):
                if REGISTRY.has(kind, ep.name) and REGISTRY.get(kind, ep.name) is obj:
                    REGISTRY.entries[kind][ep.name].plugin = dist  # it registered itself on import
                    continue
                REGISTRY.add(kind, ep.name, obj, plugin=dist)


def load_all(reload_plugins: bool = False) -> Registry:
    """Import built-ins (explicit list) and entry-point plugins once; return the registry."""
    global _loaded
    if not _loaded:
        for mod in BUILTIN_MODULES:
            importlib.import_module(mod)
        _loaded = True
        _load_entry_points()
    elif reload_plugins:
        _load_entry_points()
    return REGISTRY


def components(kind: str) -> Iterable[tuple[str, type[Component]]]:
    reg = load_all()
    return [(n, reg.get(kind, n)) for n in reg.names(kind)]


def get(kind: str, name: str) -> type[Component]:
    return load_all().get(kind, name)


def build(kind: str, name: str, params: dict[str, Any] | BaseModel | None = None) -> Component:
    """Instantiate a component from its name and params (validated by its Params model)."""
    cls = get(kind, name)
    if params is None or isinstance(params, dict):
        params = cls.Params.model_validate(params or {})
    return cls(params)
