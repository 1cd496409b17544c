"""The recipe schema: Pydantic models assembled from the registry.

The static shape of a recipe is declared here at module level; :class:`Recipe` is the type
to write in signatures (``def f(recipe: Recipe)``).  ``recipe_model()`` builds the model that
validates: a subclass of :class:`Recipe` whose component slots are unions of
``{name: Literal[<registered>], params: <its Params>}`` models, discriminated by ``name``; so a
plugin that registers an objective is accepted by ``validate`` and appears in
``recipe-engine schema`` without touching this file.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal, Optional, TypeVar, Union

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator, model_validator
from pydantic.fields import FieldInfo

import registry
from registry import Component

Unit = Literal["step", "epoch"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    #: optional fields added after recipes were run and archived: while unset (None) the
    #: fingerprint leaves them out (``recipe_engine.resolve.fingerprint``)
    added_later: ClassVar[frozenset[str]] = frozenset()


class Length(Strict):
    """A length in steps or in epochs (exactly one)."""

    steps: Optional[Annotated[int, Field(gt=0, strict=True)]] = Field(None, description="number of optimizer steps")
    epochs: Optional[Annotated[int, Field(gt=0, strict=True)]] = Field(None, description="number of passes over the phase's data")

    @model_validator(mode="after")
    def _one(self) -> "Length":
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of 'steps' or 'epochs' (to replace a base recipe's length "
                             "rather than merge into it, write `~length:` next to it)")
        return self


PositiveInt = Annotated[int, Field(gt=0, strict=True, description="a positive count, in the schedule's unit")]
Seed = Annotated[int, Field(ge=0, lt=2**32, strict=True)]
LengthSpec = Union[PositiveInt, Length]


class Ramp(Strict):
    """A weight that moves linearly from ``from`` to ``to`` over the first ``over`` steps of its phase."""

    from_: float = Field(alias="from", description="weight at the start of the phase")
    to: float = Field(description="weight after `over` steps")
    over: Annotated[int, Field(gt=0)] = Field(description="steps of the ramp, counted from the phase start")

    @field_validator("over", mode="before")
    @classmethod
    def _no_unit(cls, v: Any) -> Any:
        """``over: {steps: 10}`` (a length written like ``for``) is a plain number of steps here."""
        if not isinstance(v, dict):
            return v
        unit, n = next(iter(v.items())) if len(v) == 1 else (None, None)
        if unit == "steps" and isinstance(n, int):
            fix = f"over: {n}"
        elif unit == "epochs" and isinstance(n, int):
            fix = f"over: {n} x the steps per epoch that `recipe-engine show --schedule` prints"
        else:
            fix = "e.g. over: 100"
        raise ValueError(f"a number of steps, not a mapping; write {fix} (a ramp counts optimizer steps from "
                         "the start of its phase, whatever schedule.unit is)")

    def at(self, step_in_phase: int) -> float:
        t = min(max(step_in_phase / self.over, 0.0), 1.0)
        return self.from_ + (self.to - self.from_) * t


# ---------------------------------------------------------------- component slots
# Each slot is declared with its static fields; recipe_model() narrows ``name`` and ``params``
# per registered component (and any slot nested in it, such as an optimizer's scheduler).
class ComponentRef(Strict):
    """A component slot: a registered ``name`` and that component's ``params``."""

    name: str
    params: BaseModel


class MetricRef(ComponentRef):
    id: Optional[str] = Field(None, description="defaults to the metric name")


class AttributionDump(ComponentRef):
    """Token attributions saved after the final evaluation (``seed-<n>/eval/attributions.json``,
    heat maps in ``report.html``): a registered attribution, on the first ``examples`` rows of
    each split."""

    examples: Annotated[int, Field(gt=0, le=1000)] = Field(8, description="the first N examples of each split (at most 1000)")
    splits: Optional[list[str]] = Field(None, description="evaluation splits to attribute; default: every one of evaluation.splits")


class Term(ComponentRef):
    """An objective term of a phase."""

    id: Optional[str] = Field(None, description="defaults to the objective name")
    weight: Union[float, Ramp] = Field(1.0, description="a number, or a ramp {from, to, over}")


class OptimizerRef(ComponentRef):
    scheduler: Optional[ComponentRef] = Field(None, description="learning-rate schedule")
    clip_grad_norm: Optional[Annotated[float, Field(gt=0)]] = Field(1.0, description="global gradient-norm clip; null disables")
    reset_state: Union[bool, Literal["all"]] = Field(
        False, description="reset this optimizer's moments after each round of the phase; 'all' resets every optimizer (the influence-tuning reference code)")


class DataRef(ComponentRef):
    """The data section: the dataset component plus these data options."""

    confound_access: Annotated[float, Field(ge=0.0, le=1.0)] = Field(1.0, description="fraction of training examples whose confound the objectives may see (paper Table 3)")
    max_length: Annotated[int, Field(gt=0)] = Field(128, description="tokens per example after truncation")
    batch_size: Annotated[int, Field(gt=0)] = Field(32, description="training batch size")
    eval_batch_size: Annotated[int, Field(gt=0)] = Field(128, description="evaluation batch size")
    train_split: str = Field("train", description="split used for training")


# ---------------------------------------------------------------- sections
class Phase(Strict):
    """One phase of the schedule: a leaf with objectives, or a `repeat` of nested phases."""

    id: str = Field(description="unique id; used by extends/merge, diff and logs")
    for_: Optional[LengthSpec] = Field(None, alias="for", description="length: N (schedule unit) or {steps|epochs: N}")
    until: Optional[Literal["end", "converged"]] = Field(
        None, description="end: run until the schedule length is used up; converged: end when early stopping "
                          "(evaluation.early_stopping) first fires, after at most `for` (then patience resets)")
    repeat: Optional[Union[Annotated[int, Field(gt=0)], Literal["until_end"]]] = Field(None, description="repeat the nested phases N times or until the schedule length is used up")
    phases: Optional[list[Phase]] = Field(None, description="nested phases of a repeat")
    objectives: Optional[list[Term]] = Field(None, description="terms summed at every step of this phase")
    optimizer: Optional[OptimizerRef] = Field(None, description="this phase's own optimizer (kept across repeats)")
    min_remaining: Annotated[int, Field(ge=0)] = Field(0, description="skip this phase when fewer train steps than this remain")

    @model_validator(mode="after")
    def _shape(self) -> "Phase":
        if self.repeat is not None or self.phases is not None:
            if self.repeat is None or not self.phases:
                raise ValueError("a repeat phase needs both 'repeat' and a non-empty 'phases' list")
            if self.objectives or self.for_ is not None or self.until is not None or self.optimizer is not None:
                raise ValueError("a repeat phase holds only 'repeat' and 'phases'; put objectives in its nested phases")
        else:
            if not self.objectives:
                raise ValueError("a phase needs 'objectives' (or 'repeat' with nested 'phases')")
            if self.until == "converged":
                if self.for_ is None:
                    raise ValueError("until: converged needs 'for: N', the most the phase may take "
                                     "(e.g. for: {epochs: 20}, until: converged)")
            elif (self.for_ is None) == (self.until is None):
                raise ValueError("a phase needs exactly one of 'for: N' or 'until: end'")
        return self


class Schedule(Strict):
    unit: Unit = Field("step", description="unit of a bare `for: N`")
    length: Optional[LengthSpec] = Field(None, description="total train-data steps/epochs; needed by `until: end` and `repeat: until_end`")
    phases: Annotated[list[Phase], Field(min_length=1)] = Field(description="ordered phases")




class EarlyStopping(Strict):
    """Stop when a dev metric has not improved for ``patience`` evaluations (evaluation.every)."""

    metric: str = Field(description="the metric watched, as <split>/<metric>, e.g. dev/accuracy")
    mode: Literal["max", "min"] = Field("max", description="max: higher is better; min: lower is better")
    patience: Annotated[int, Field(gt=0)] = Field(3, description="evaluations without improvement before it fires")
    min_delta: Annotated[float, Field(ge=0.0)] = Field(0.0, description="an improvement must exceed this")
    restore_best: bool = Field(True, description="evaluate the final model at its best evaluation (the checkpoint "
                                                 "kept there), so test scores are taken at the best dev step")


class Evaluation(Strict):
    added_later = frozenset({"early_stopping", "attributions"})
    splits: list[str] = Field(default_factory=lambda: ["dev", "test"], description="splits evaluated at the end")
    metrics: list[MetricRef] = Field(
        default_factory=lambda: [{"name": "accuracy"}, {"name": "group_accuracy"}], validate_default=True,
        description="metrics computed on every split (model-level ones on the training set)",
    )
    every: Optional[Length] = Field(None, description="also evaluate during training, every N steps")
    early_stopping: Optional[EarlyStopping] = Field(
        None, description="stop (or end an `until: converged` phase) when a dev metric stops improving; needs `every`")
    select: Optional[str] = Field(None, description="metric used to pick the best run of a sweep, e.g. dev/accuracy")
    attributions: Optional[AttributionDump] = Field(
        None, description="save token attributions of the first examples of each split after the final evaluation "
                          "(seed-<n>/eval/attributions.json, heat maps in report.html)")



class Runtime(Strict):
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when present, else CPU")
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 autocast on GPU, fp32 on CPU")
    nonfinite: Literal["stop", "skip"] = Field(
        "stop", description="a step whose loss is NaN or inf: stop (a report naming step, phase and term; the last good "
                            "checkpoint kept) or skip it (no update, counted as skipped_steps; checked every step)")
    data_root: Optional[str] = Field(None, description="where datasets live; else $RECIPE_ENGINE_DATA_ROOT, else ../shared/data")
    output_dir: str = Field("outputs", description="run folders go under this directory")
    tensorboard: bool = Field(True, description="write TensorBoard scalars")
    log_every: Annotated[int, Field(gt=0)] = Field(10, description="steps between metrics.jsonl records")
    checkpoint_every: Optional[Annotated[int, Field(gt=0)]] = Field(None, description="steps between checkpoints (always one at the end of each phase)")
    progress: bool = Field(True, description="progress bar with ETA")
    threads: Optional[Annotated[int, Field(gt=0)]] = Field(None, description="torch CPU threads")
    compile: bool = Field(False, description="torch.compile the model for segments whose terms are all first order "
                                             "(second-order phases, e.g. influence tuning, stay eager); helps on GPU")


class Recipe(Strict):
    """A validated recipe: the type for signatures (``def f(recipe: Recipe)``).

    Validate with ``recipe_model()`` (or ``resolve``): it returns a subclass whose slots accept
    exactly the registered components, so ``recipe.model.params`` is that component's Params.
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")] = Field(description="run folders are named after it")
    description: str = Field("", description="free text")
    seeds: Annotated[list[Seed], Field(min_length=1)] = Field(default_factory=lambda: [2021], description="one training run per seed")
    model: ComponentRef = Field(description="encoder + classification head")
    data: DataRef = Field(description="dataset with confound annotations, and data options")
    optimizer: OptimizerRef = Field(description="main optimizer, used by phases without their own")
    schedule: Schedule
    evaluation: Evaluation = Field(default_factory=Evaluation)
    runtime: Runtime = Field(default_factory=Runtime)


# ---------------------------------------------------------------- the validating model
_M = TypeVar("_M", bound=BaseModel)


def _narrow(base: type[_M], *, keep_doc: bool = True, **fields: Any) -> type[_M]:
    """A subclass of ``base`` (same name; same docstring if ``keep_doc``) whose ``fields`` take new
    annotations.  A value is an annotation (the field keeps what ``base`` wrote for it: default,
    alias, description, constraints) or an ``(annotation, FieldInfo)`` pair."""
    spec: dict[str, Any] = {k: v if isinstance(v, tuple) else _same_field(v, base.model_fields[k]) for k, v in fields.items()}
    return create_model(base.__name__, __base__=base, __doc__=base.__doc__ if keep_doc else None, **spec)


def _same_field(annotation: Any, f: FieldInfo) -> tuple[Any, FieldInfo]:
    """``annotation`` with the settings written for field ``f`` (not a copy of ``f``, which would
    keep ``f``'s annotation and lose a discriminator of the new one)."""
    settings = {k: v for k, v in f._attributes_set.items() if k != "annotation"}
    return (Annotated[tuple([annotation, *f.metadata])] if f.metadata else annotation), Field(**settings)


def _component(kind: str, name: str, cls: type[Component], base: type[ComponentRef], narrowed: dict[str, Any]) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "name": (Literal[name], Field(description=cls.summary or name)),  # type: ignore[valid-type]
        "params": (cls.Params, Field(default_factory=cls.Params, description=f"params of {kind[:-1]} '{name}'")),
        **{k: _same_field(ann, base.model_fields[k]) for k, ann in narrowed.items()},
    }
    model = create_model(f"{kind}_{name}", __base__=base, **fields)
    model.__doc__ = cls.summary
    return model


def _none_registered(kind: str, base: type[ComponentRef]) -> type[BaseModel]:
    """The slot type of a kind with no registered component: every ``name`` is unknown."""

    def unknown(cls: type, name: Any) -> Any:
        raise ValueError(registry.load_all().unknown_message(kind, str(name)))

    return create_model(f"{kind}_none", __base__=base, __validators__={"_unknown": field_validator("name")(unknown)},
                        params=(dict[str, Any], Field(default_factory=dict)))


def _union(kind: str, base: type[ComponentRef] = ComponentRef, allow_empty: bool = False, **narrowed: Any) -> Any:
    """The slot type of ``kind``: one model per registered component, tagged by ``name``
    (``allow_empty``: a slot that names nothing registered yet rejects every name)."""
    reg = registry.load_all()
    members = [_component(kind, n, reg.get(kind, n), base, narrowed) for n in reg.names(kind)]
    if not members and allow_empty:
        return _none_registered(kind, base)
    if not members:
        raise RuntimeError(f"no {kind} registered")
    if len(members) == 1:
        return members[0]
    return Annotated[Union[tuple(members)], Field(discriminator="name")]


def recipe_model() -> type[Recipe]:
    """The Recipe model for what is registered now (rebuilt when the registry changes)."""
    reg = registry.load_all()
    return _recipe_model(tuple((k, tuple((n, reg.get(k, n)) for n in reg.names(k))) for k in registry.KINDS))


@lru_cache(maxsize=4)
def _recipe_model(_snapshot: tuple) -> type[Recipe]:
    term, scheduler = _union("objectives", Term), _union("schedulers")
    optimizer = _union("optimizers", OptimizerRef, scheduler=Optional[scheduler])
    # "Phase" in the annotation is the narrowed model itself (pydantic resolves a model's own name first)
    phase: Any = _narrow(Phase, phases=Optional[list["Phase"]], objectives=Optional[list[term]],  # type: ignore[valid-type]
                         optimizer=Optional[optimizer])
    phase.model_rebuild()
    evaluation = _narrow(Evaluation, metrics=list[_union("metrics", MetricRef)],  # type: ignore[misc]
                         attributions=Optional[_union("attributions", AttributionDump, allow_empty=True)])
    recipe = _narrow(
        Recipe,
        keep_doc=False,  # the docstring is for Python readers; the JSON schema has no top-level description
        model=_union("models"),
        data=_union("datasets", DataRef),
        optimizer=optimizer,
        schedule=_narrow(Schedule, phases=list[phase]),
        evaluation=(evaluation, Field(default_factory=evaluation)),
    )
    recipe.model_rebuild()
    return recipe


#: top-level sections that define the method (fingerprinted); `runtime` does not
METHOD_SECTIONS = ("seeds", "model", "data", "optimizer", "schedule", "evaluation")


def _lenient(node: Any) -> Any:
    """Editor form: no `required` lists, `anyOf` for `oneOf`, and `~key` deletions allowed, so
    that a recipe which `extends` a base (and writes only part of it) is not flagged; unknown keys,
    wrong types and unregistered names still are.  `recipe-engine validate` checks the rest."""
    if isinstance(node, dict):
        out = {("anyOf" if k == "oneOf" else k): _lenient(v) for k, v in node.items() if k not in ("required", "discriminator")}
        if "properties" in out:  # `~key` deletes a key of a base recipe (and `{~id: X}` a list item)
            out["patternProperties"] = {"^~": {}}
        return out
    if isinstance(node, list):
        return [_lenient(v) for v in node]
    return node


def json_schema() -> dict[str, Any]:
    """JSON Schema (draft-07) of recipe files, for editor completion and checking."""
    schema = _lenient(recipe_model().model_json_schema(by_alias=True))
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    schema["title"] = "recipe-engine recipe"
    schema.setdefault("properties", {})["extends"] = {
        "description": "base recipe(s) to deep-merge under this one",
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
    }
    return schema
