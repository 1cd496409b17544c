"""Load + validate a recipe: raw YAML tree -> typed Recipe, with every error rendered at its line.

``resolve`` is the single entry point used by ``validate``, ``show``, ``run`` and ``diff``.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, ValidationError

import registry
from recipe_engine.errors import RecipeError, RecipeErrors
from recipe_engine.load import LoadedRecipe, load_recipe, load_text, origin_of
from recipe_engine.merge import dotted
from recipe_engine.plan import PlanError, Timeline, brings_own_data, walk_phases
from recipe_engine.schema import METHOD_SECTIONS, Recipe, recipe_model

# the component kind that each slot of a recipe holds, by the key that leads to it
_SLOT_KIND = {
    "model": "models",
    "data": "datasets",
    "optimizer": "optimizers",
    "scheduler": "schedulers",
    "objectives": "objectives",
    "metrics": "metrics",
    "attributions": "attributions",
}


@dataclass
class Resolved:
    recipe: Recipe  # an instance of recipe_model(), for what is registered now
    loaded: LoadedRecipe
    fingerprint: str

    @property
    def data(self) -> dict[str, Any]:
        """The resolved recipe as plain data, every default written out."""
        return self.recipe.model_dump(mode="json", by_alias=True)


def fingerprint(recipe: BaseModel) -> str:
    """sha256 of the method sections (not `runtime`, `name`, `description`) in canonical JSON,
    without the unset ``added_later`` fields of any model in it (so runs made before such a
    field existed keep their fingerprint: ``--resume``, archives)."""
    dumped = recipe.model_dump(mode="json", by_alias=True)
    _drop_unset_added_later(recipe, dumped)
    method = {k: dumped[k] for k in METHOD_SECTIONS}
    return hashlib.sha256(json.dumps(method, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _drop_unset_added_later(model: Any, dumped: Any) -> None:
    """Delete from ``dumped`` (``model``'s by-alias dump), in place, every field a model class
    lists in its ``added_later`` while its value is None, at any depth."""
    if isinstance(model, BaseModel) and isinstance(dumped, dict):
        later = getattr(type(model), "added_later", frozenset())
        for name, field in type(model).model_fields.items():
            key, value = field.alias or name, getattr(model, name)
            if key not in dumped:
                continue
            if value is None and name in later:
                del dumped[key]
            else:
                _drop_unset_added_later(value, dumped[key])
    elif isinstance(model, (list, tuple)) and isinstance(dumped, list):
        for m, d in zip(model, dumped):
            _drop_unset_added_later(m, d)
    elif isinstance(model, dict) and isinstance(dumped, dict):
        for k, m in model.items():
            if k in dumped:
                _drop_unset_added_later(m, dumped[k])


def resolve(path: str | Path, overrides: Sequence[str] = ()) -> Resolved:
    """Load, merge, override and validate; raise ``RecipeErrors`` with every problem found."""
    return resolve_loaded(load_recipe(path, overrides))


def resolve_text(text: str, filename: str = "<string>", overrides: Sequence[str] = ()) -> Resolved:
    return resolve_loaded(load_text(text, filename, overrides))


def resolve_loaded(loaded: LoadedRecipe) -> Resolved:
    errors = list(loaded.errors)
    recipe = None
    if not errors or isinstance(loaded.data, dict) and loaded.data:
        try:
            recipe = recipe_model().model_validate(loaded.data)
        except ValidationError as exc:
            errors.extend(_from_pydantic(exc, loaded))
    errors.extend(RecipeError("NaN and infinity are not allowed in recipes; write a finite number",
                              dotted_path(p, loaded.data), origin_of(loaded, p)) for p in _non_finite(loaded.data))
    if recipe is not None:
        errors.extend(_semantic_checks(recipe, loaded))
    if errors or recipe is None:  # no errors means the recipe validated
        raise RecipeErrors(_dedupe(errors))
    return Resolved(recipe, loaded, fingerprint(recipe))


def _one_line(text: str) -> str:
    """``text`` with control characters escaped (``\\r``, ``\\x85``, ``\\u2028``...): a key, value
    or override quoted in a message must not break the one-line-per-error format."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _dedupe(errors: list[RecipeError]) -> list[RecipeError]:
    seen, out = set(), []
    for e in errors:
        e = RecipeError(_one_line(e.message), _one_line(e.path), e.origin)
        key = e.render()
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


# ---------------------------------------------------------------- pydantic errors -> ours
_GONE = object()  # _data_path: the loc left the data (a missing key), unlike a present null
_SCALAR_LABELS = frozenset({"int", "float", "str", "bool", "bytes", "none", "decimal", "date", "datetime"})


def _is_member_label(elem: Any) -> bool:
    """Pydantic's label of a union member ('int', 'constrained-int', 'function-after[...]', 'list[str]').

    Exact names and pydantic's prefixes only: a field called e.g. ``int_dim`` or ``strict``
    that is missing from the data is a real path segment, not a label."""
    return isinstance(elem, str) and (
        elem in _SCALAR_LABELS or "[" in elem or elem.startswith(("constrained-", "function-", "lax-", "strict-"))
    )


def _data_path(loc: tuple, data: Any) -> tuple:
    """Pydantic's loc -> a path into the raw data (drop union tags and model names)."""
    path: list = []
    cur = data
    for elem in loc:
        if isinstance(cur, dict):
            if elem in cur:
                path.append(elem)
                cur = cur[elem]
            elif isinstance(elem, str) and cur.get("name") == elem:
                continue  # discriminated-union tag
            elif _is_member_label(elem):
                continue  # union member label, e.g. 'int' or 'constrained-int'
            elif isinstance(elem, str) and elem[:1].isupper():
                continue  # a model name inside a non-discriminated union
            else:
                path.append(elem)
                cur = _GONE
        elif isinstance(cur, list) and isinstance(elem, int):
            path.append(elem)
            cur = cur[elem] if elem < len(cur) else _GONE
        elif isinstance(elem, str) and cur is not _GONE and not isinstance(cur, (dict, list)):
            continue  # a scalar (null included) has no children: a union member label such as 'constrained-int'
        else:
            path.append(elem)
            cur = _GONE
    return tuple(path)


def _names_component(path: tuple) -> bool:
    """``path`` is the ``name`` of a component slot: ``model.name``, ``...objectives.0.name``."""
    if len(path) < 2 or path[-1] != "name":
        return False
    owner = path[-3] if isinstance(path[-2], int) and len(path) >= 3 else path[-2]
    return isinstance(owner, str) and owner in _SLOT_KIND


def _slot_kind(path: tuple) -> str | None:
    for elem in reversed(path):
        if isinstance(elem, str) and elem in _SLOT_KIND:
            return _SLOT_KIND[elem]
    return None


_MAPPING_TYPES = ("model_type", "dict_type", "model_attributes_type")
_SCALAR_TYPES = ("int_type", "float_type", "string_type", "bool_type", "literal_error", "none_required")


def _branch_mismatch(e: dict) -> bool:
    """An error of a union branch that expects another shape than the value has
    (a mapping branch given a number, a number branch given a mapping...)."""
    value = e.get("input")
    if e["type"] in _MAPPING_TYPES:
        return not isinstance(value, dict)
    if e["type"] == "list_type":
        return not isinstance(value, list)
    return e["type"] in _SCALAR_TYPES and isinstance(value, (dict, list))


def _union_branch_noise(errors: list[dict], data: Any) -> list[dict]:
    """Of the errors a union produces for one value, drop the branches that could not apply
    (e.g. 'should be a dictionary' for an int, when the int branch has its own error; or
    'should be an integer' for ``for: {stps: 1}``, when the mapping branch has one).

    Errors are grouped by the value's path in the data, not by ``id(input)``: equal
    singletons (``None``, small ints) at different paths share an id, and grouping by it
    dropped the only error of e.g. ``model: null`` and ``data: null`` together.  A mismatch
    is kept when no other error explains its value, so no value loses all its errors."""
    paths = [_data_path(e["loc"], data) for e in errors]
    explained = [p for e, p in zip(errors, paths) if not _branch_mismatch(e)]

    def has_better(p: tuple) -> bool:  # another error at this value or inside it
        return any(q[: len(p)] == p for q in explained)

    return [e for e, p in zip(errors, paths) if not (_branch_mismatch(e) and has_better(p))]


def _from_pydantic(exc: ValidationError, loaded: LoadedRecipe) -> list[RecipeError]:
    out: list[RecipeError] = []
    for err in _union_branch_noise(exc.errors(include_url=False), loaded.data):
        path = _data_path(err["loc"], loaded.data)
        typ, msg, value = err["type"], err["msg"], err.get("input")
        if typ == "extra_forbidden":
            known = known_keys(path[:-1], loaded.data)
            msg = f"unknown key {path[-1]!r}; remove it or fix its spelling"
            hint = difflib.get_close_matches(str(path[-1]), known, n=1, cutoff=0.6) if known else []
            if hint:
                msg += f" (did you mean {hint[0]!r}?)"
            elif known:
                msg += f"; allowed: {', '.join(known)}"
        elif typ == "union_tag_invalid":
            kind = _slot_kind(path) or "components"
            tag = err.get("ctx", {}).get("tag", value)
            msg = registry.load_all().unknown_message(kind, str(tag))
            path = path + ("name",)
        elif typ == "union_tag_not_found":
            kind = _slot_kind(path) or "components"
            msg = f"missing 'name'; name a registered {kind[:-1]}: " + ", ".join(registry.load_all().names(kind))
        elif typ == "missing":
            msg = f"missing required key {path[-1]!r}"
        elif typ == "value_error":
            msg = msg.removeprefix("Value error, ")
        elif typ == "literal_error" and _names_component(path):
            # a slot with a single registered component is a Literal, not a tagged union
            msg = registry.load_all().unknown_message(_slot_kind(path), str(value))
        elif typ == "literal_error":
            msg = f"{msg[0].lower()}{msg[1:]}, got {value!r}"
            hint = _literal_hint(err, value)
            if hint:
                msg += f" (did you mean {hint!r}?)"
        else:
            msg = f"{msg[0].lower()}{msg[1:]}, got {value!r}" if not isinstance(value, (dict, list)) else f"{msg[0].lower()}{msg[1:]}"
            if typ in ("greater_than", "greater_than_equal") and isinstance(value, (int, float)):
                msg += "; use a positive value"
        out.append(RecipeError(msg, dotted_path(path, loaded.data), origin_of(loaded, path)))
    return out


def _literal_hint(err: dict, value: Any) -> str | None:
    expected = err.get("ctx", {}).get("expected", "")
    options = [o.strip().strip("'\"") for o in expected.replace(" or ", ",").split(",") if o.strip()]
    match = difflib.get_close_matches(str(value), options, n=1, cutoff=0.5)
    return match[0] if match else None


def dotted_path(path: tuple, data: Any) -> str:
    return dotted(path, data)


# ---------------------------------------------------------------- allowed keys at a path
def _unwrap(ann: Any, node: Any) -> Any:
    """Strip Optional/Annotated/Union, picking the union member that fits ``node``."""
    while True:
        origin = typing.get_origin(ann)
        if origin is typing.Annotated:
            ann = typing.get_args(ann)[0]
            continue
        if origin is typing.Union:
            members = [a for a in typing.get_args(ann) if a is not type(None)]
            picked = None
            for m in members:
                inner = _unwrap(m, node)
                if isinstance(inner, type) and issubclass(inner, BaseModel) and isinstance(node, dict):
                    name_field = inner.model_fields.get("name")
                    if name_field is not None and typing.get_origin(name_field.annotation) is typing.Literal:
                        if node.get("name") in typing.get_args(name_field.annotation):
                            picked = inner
                            break
                    elif picked is None:
                        picked = inner
                elif typing.get_origin(inner) is list and isinstance(node, list) and picked is None:
                    picked = inner
            return picked
        return ann


def known_keys(path: tuple, data: Any) -> list[str]:
    """The keys the schema allows in the mapping at ``path`` (for did-you-mean)."""
    ann: Any = recipe_model()
    node = data
    for elem in path:
        ann = _unwrap(ann, node)
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            field = next((f for k, f in ann.model_fields.items() if (f.alias or k) == elem), None)
            if field is None:
                return []
            ann = field.annotation
        elif typing.get_origin(ann) is list:
            ann = typing.get_args(ann)[0]
        else:
            return []
        node = node.get(elem) if isinstance(node, dict) else (node[elem] if isinstance(node, list) and isinstance(elem, int) and elem < len(node) else None)
    ann = _unwrap(ann, node)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [f.alias or k for k, f in ann.model_fields.items()]
    return []


# ---------------------------------------------------------------- checks across sections
def _non_finite(node: Any, path: tuple = ()) -> list[tuple]:
    """Paths of NaN/inf numbers in the raw recipe (YAML's .nan and .inf)."""
    if isinstance(node, float) and not math.isfinite(node):
        return [path]
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _non_finite(v, path + (k,))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _non_finite(v, path + (i,))]
    return []


def _semantic_checks(recipe: Recipe, loaded: LoadedRecipe) -> list[RecipeError]:
    errors: list[RecipeError] = []
    data = loaded.data

    def err(path: tuple, message: str) -> None:
        errors.append(RecipeError(message, dotted_path(path, data), origin_of(loaded, path)))


    dataset = registry.build("datasets", recipe.data.name, recipe.data.params)
    columns = dataset.columns()
    splits = dataset.split_names()

    def check_requires(kind: str, name: str, path: tuple) -> None:
        cls = registry.get(kind, name)
        for col in cls.requires:
            if col not in columns:
                err(path, f"{kind[:-1]} {name!r} requires a {col!r} column, which dataset {recipe.data.name!r} "
                          f"does not provide (it has: {', '.join(sorted(columns))}); use a dataset with one, "
                          f"or map one in data.params.columns.{col}")

    ids: dict[str, tuple] = {}
    for node in walk_phases(recipe.schedule.phases):
        ph, p = node.phase, node.raw_path
        if ph.id in ids:
            err(p + ("id",), f"duplicate phase id {ph.id!r} (also at {origin_of(loaded, ids[ph.id] + ('id',))}); phase ids must be unique")
        ids[ph.id] = p
        if not node.is_leaf:
            if ph.repeat == "until_end" and not any(_draws_train(n.phase) for n in walk_phases(ph.phases) if n.is_leaf):
                err(p + ("repeat",), "repeat: until_end needs a nested phase that trains on the training data, or it never ends; use a number")
            if ph.repeat == "until_end" and recipe.schedule.length is None:
                err(p + ("repeat",), "repeat: until_end needs schedule.length (e.g. length: {epochs: 10})")
            continue
        if ph.until == "end" and recipe.schedule.length is None:
            err(p + ("until",), "until: end needs schedule.length (e.g. length: {epochs: 10})")
        if ph.until == "converged" and recipe.evaluation.early_stopping is None:
            err(p + ("until",), "until: converged ends the phase when early stopping fires; declare "
                                "evaluation.early_stopping (e.g. {metric: dev/accuracy, patience: 3}) and evaluation.every")
        if ph.until == "converged" and not _draws_train(ph):
            err(p + ("until",), "until: converged watches evaluations made between training steps, and this phase's "
                                "terms all bring their own data (a round); use it on a phase with a per-batch term")
        term_ids: set[str] = set()
        for j, term in enumerate(ph.objectives):
            tid = term.id or term.name
            if tid in term_ids:
                err(p + ("objectives", j), f"two terms with id {tid!r} in one phase; give one an `id`")
            term_ids.add(tid)
            check_requires("objectives", term.name, p + ("objectives", j, "name"))
        probes = [t.id or t.name for t in ph.objectives if brings_own_data(t.name)]
        if len(probes) > 1 and not _draws_train(ph):
            err(p + ("objectives",), f"a round (a phase whose terms all bring their own data) runs on one term's "
                                     f"batches, but this one has {len(probes)} ({', '.join(probes)}); split them into "
                                     "phases, or add a per-batch term such as cross_entropy to train them jointly")
    for j, metric in enumerate(recipe.evaluation.metrics):
        check_requires("metrics", metric.name, ("evaluation", "metrics", j, "name"))
    dump = recipe.evaluation.attributions
    if dump is not None:
        check_requires("attributions", dump.name, ("evaluation", "attributions", "name"))
        for j, split in enumerate(dump.splits or []):
            if split not in recipe.evaluation.splits:
                hint = difflib.get_close_matches(split, recipe.evaluation.splits, n=1)
                err(("evaluation", "attributions", "splits", j),
                    f"{split!r} is not an evaluation split; attributions are saved for splits of evaluation.splits "
                    f"({', '.join(recipe.evaluation.splits)})" + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    for j, split in enumerate(recipe.evaluation.splits):
        if split not in splits:
            hint = difflib.get_close_matches(split, splits, n=1)
            err(("evaluation", "splits", j), f"dataset {recipe.data.name!r} has no split {split!r}; it has {', '.join(splits)}"
                + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    stop = recipe.evaluation.early_stopping
    if stop is not None:
        if recipe.evaluation.every is None:
            err(("evaluation", "early_stopping"), "early stopping watches evaluations during training; set "
                                                  "evaluation.every (e.g. every: {epochs: 1} or every: {steps: 50})")
        split = stop.metric.split("/", 1)[0]
        if "/" not in stop.metric or split not in recipe.evaluation.splits:
            err(("evaluation", "early_stopping", "metric"),
                f"metric {stop.metric!r} must be <split>/<metric> with the split among evaluation.splits "
                f"({', '.join(recipe.evaluation.splits)}), e.g. dev/accuracy")
    if recipe.data.train_split not in splits:
        err(("data", "train_split"), f"dataset {recipe.data.name!r} has no split {recipe.data.train_split!r}; it has {', '.join(splits)}")
    return errors



def _draws_train(phase: Any) -> bool:
    """Does a leaf phase read the training batch (has at least one per-batch term)?"""
    return any(not brings_own_data(t.name) for t in phase.objectives)


def schedule_errors(resolved: Resolved, timeline: Timeline) -> list[RecipeError]:
    """Declared phases that get no step in the compiled ``timeline``, at their lines."""
    where = {n.phase.id: n.raw_path for n in walk_phases(resolved.recipe.schedule.phases)}
    errors = []
    for pid, why in timeline.dropped.items():
        path = where[pid]
        errors.append(RecipeError(f"phase {pid!r} gets no step: {why}; fix its length, or write "
                                  "`min_remaining: 1` if it may be skipped",
                                  dotted_path(path, resolved.loaded.data), origin_of(resolved.loaded, path)))
    return errors


def plan_error(resolved: Resolved, exc: PlanError) -> RecipeError:
    """A ``PlanError`` at the line of the phase it names."""
    where = {n.phase.id: n.raw_path for n in walk_phases(resolved.recipe.schedule.phases)}
    path = where.get(exc.phase, ("schedule",))
    return RecipeError(str(exc), dotted_path(path, resolved.loaded.data), origin_of(resolved.loaded, path))


def data_error(resolved: Resolved, exc: Exception) -> RecipeError:
    """A dataset that is here but cannot be used as the recipe says, at the recipe's data section."""
    named = re.search(r"data\.params\.(\w+)", str(exc))  # the setting the message names, where it was set
    params = (resolved.loaded.data.get("data") or {}).get("params") or {}
    path = (("data", "params", named.group(1)) if named and named.group(1) in params
            else ("data", "params") if params else ("data",))
    return RecipeError(str(exc), "", origin_of(resolved.loaded, path))
