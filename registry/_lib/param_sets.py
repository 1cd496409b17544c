"""Named parameter sets: which parameters an influence score is defined over.

A spec is ``"all"``, ``"no_word_embeddings"``, ``"head"``, ``{"last_n_layers": N}`` (the last N
encoder layers, the pooler and the head, as FastIF's ``freeze_BERT_parameters``) or
``{"glob": "encoder.layer.5.*"}`` (fnmatch patterns, matched against the full parameter
name or any dotted suffix of it, so ``encoder.layer.5.*`` finds ``encoder.encoder.layer.5.*``).
"""
from __future__ import annotations

import fnmatch
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from typing_extensions import TypeAliasType
from torch import nn

from registry.errors import UserError


class LastNLayers(BaseModel):
    """The last N encoder layers plus the pooler and the classifier head."""

    model_config = ConfigDict(extra="forbid")
    last_n_layers: int = Field(ge=1, description="how many of the top encoder layers (plus pooler and head)")


class GlobSet(BaseModel):
    """Parameters whose name (or a dotted suffix of it) matches one of the patterns."""

    model_config = ConfigDict(extra="forbid")
    glob: Union[str, list[str]] = Field(description="fnmatch pattern(s), e.g. 'encoder.layer.5.*'")


#: the Pydantic type of a ``parameters`` setting (a named alias, so that ``explain`` shows "ParamSpec")
ParamSpec = TypeAliasType("ParamSpec", Union[Literal["all", "no_word_embeddings", "head"], LastNLayers, GlobSet])
PARAM_SPEC_HELP = (
    "parameters the gradients (and so the influence) are taken over: 'all', 'no_word_embeddings', "
    "'head', {last_n_layers: N} (top N encoder layers + pooler + head) or {glob: 'encoder.layer.5.*'}"
)
_ADAPTER = TypeAdapter(ParamSpec)


def spec_label(spec: Any) -> str:
    """A short text form of a spec, for messages and benchmark tables."""
    spec = _ADAPTER.validate_python(spec)
    if isinstance(spec, LastNLayers):
        return f"last_n_layers={spec.last_n_layers}"
    if isinstance(spec, GlobSet):
        return f"glob={spec.glob}"
    return spec


def encoder_layers(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The longest ``ModuleList`` named ``layer``/``layers`` inside the model: the transformer blocks."""
    best: tuple[str, nn.ModuleList] | None = None
    for name, mod in model.named_modules():
        if isinstance(mod, nn.ModuleList) and name.rsplit(".", 1)[-1] in ("layer", "layers"):
            if best is None or len(mod) > len(best[1]):
                best = (name, mod)
    if best is None:
        raise UserError(f"parameters: {{last_n_layers: N}} needs an encoder with a 'layer' list; "
                        f"{type(model).__name__} has none; use a glob instead")
    return best


def _word_embedding(model: nn.Module) -> nn.Parameter | None:
    get = getattr(model, "input_embeddings", None)
    emb = get() if callable(get) else None
    return emb.weight if isinstance(emb, nn.Embedding) else None


def _matches(name: str, patterns: list[str]) -> bool:
    parts = name.split(".")
    suffixes = [".".join(parts[i:]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(s, p) for p in patterns for s in suffixes)


def select_parameters(model: nn.Module, spec: Any = "all") -> list[tuple[str, nn.Parameter]]:
    """``(name, parameter)`` pairs of ``model`` chosen by ``spec`` (see the module docstring).

    Frozen parameters are included: the influence is defined over the set whatever the
    optimizer updates.  An empty selection raises ``UserError``.
    """
    spec = _ADAPTER.validate_python(spec)
    named = list(model.named_parameters())
    if spec == "all":
        chosen = named
    elif spec == "no_word_embeddings":
        word = _word_embedding(model)
        if word is None:
            raise UserError("parameters: 'no_word_embeddings' needs a model with input_embeddings(); use a glob")
        chosen = [(n, p) for n, p in named if p is not word]
    elif spec == "head":
        chosen = [(n, p) for n, p in named if _matches(n, ["head.*"])]
    elif isinstance(spec, LastNLayers):
        prefix, layers = encoder_layers(model)
        if spec.last_n_layers > len(layers):
            raise UserError(f"parameters: last_n_layers is {spec.last_n_layers} but the encoder has "
                            f"{len(layers)} layers; use a number from 1 to {len(layers)} or 'all'")
        keep = tuple(f"{prefix}.{i}." for i in range(len(layers) - spec.last_n_layers, len(layers)))
        chosen = [(n, p) for n, p in named if n.startswith(keep) or _matches(n, ["pooler.*", "head.*"])]
    else:
        patterns = [spec.glob] if isinstance(spec.glob, str) else list(spec.glob)
        chosen = [(n, p) for n, p in named if _matches(n, patterns)]
    if not chosen:
        raise UserError(f"parameters: {spec_label(spec)} selects no parameter of {type(model).__name__}; "
                        f"names look like {named[0][0] if named else '(none)'}")
    return chosen
