"""The contracts between components and the engine: data, batches, model outputs, context.

These are plain dataclasses and protocols; the engine (``recipe_engine``) builds them, the
components (``registry``) consume them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

import torch
from torch import nn

from registry._lib.ranks import Ranks

#: the data columns a component may require of a dataset
COLUMNS = ("text", "text_pair", "label", "confound", "rationale")
MISSING_CONFOUND = -1


@dataclass
class Split:
    """One split of a dataset, column-wise. ``confound[i] == -1`` means unknown."""

    name: str
    ids: list[str]
    text: list[str]
    label: list[int]
    text_pair: list[str] | None = None
    confound: list[int] | None = None
    #: word-level 0/1 masks aligned with ``text.split(" ")`` (and the pair's words after it)
    rationale: list[list[int]] | None = None
    #: extra per-example columns kept for metrics, e.g. HANS ``heuristic``
    meta: dict[str, list[Any]] = field(default_factory=dict)
    #: names of the confound values in index order, and what the confound is (e.g. ``prefix``):
    #: metric keys use them; ``DatasetBundle`` fills them in from its own
    confound_names: list[str] | None = None
    confound_column: str | None = None
    #: a split scored on coarser classes than the model's: ``label_groups[k]`` lists the model
    #: classes that make this split's class ``k`` (HANS: ``[[0], [1, 2]]``, entailment vs
    #: neutral + contradiction); ``label`` then indexes ``label_names`` (this split's own names).
    #: Evaluation collapses the model's logits to log P(group) before any metric sees them.
    label_groups: list[list[int]] | None = None
    label_names: list[str] | None = None

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class DatasetBundle:
    splits: dict[str, Split]
    label_names: list[str]
    confound_names: list[str] | None = None
    #: every file read, for the data hashes in run.json
    files: list[Path] = field(default_factory=list)
    #: what the confound is, e.g. ``prefix`` (TextLen) or the source column a ``files`` dataset maps
    confound_column: str | None = None
    #: one line per thing worth telling the user about the data (e.g. rows dropped for having
    #: no gold label, examples without a rationale); ``run`` prints them once
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        """Every split knows the bundle's confound names and column (evaluation sees splits only)."""
        for split in self.splits.values():
            if split.confound_names is None:
                split.confound_names = self.confound_names
            if split.confound_column is None:
                split.confound_column = self.confound_column


@dataclass
class Batch:
    """Tensors of one batch; ``index`` are row numbers in the split they came from."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    token_type_ids: torch.Tensor | None = None
    confound: torch.Tensor | None = None  # long, -1 = unknown
    confound_visible: torch.Tensor | None = None  # bool: may objectives use it (confound_access)
    rationale: torch.Tensor | None = None  # float token-level mask, 0 on special/pad tokens

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        return Batch(**{k: (v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v)
                        for k, v in self.__dict__.items()})

    def pin_memory(self) -> "Batch":
        """The batch in page-locked host memory, for an asynchronous (``non_blocking``) copy to a GPU."""
        return Batch(**{k: (v.pin_memory() if isinstance(v, torch.Tensor) and v.device.type == "cpu" else v)
                        for k, v in self.__dict__.items()})

    def select(self, idx: torch.Tensor) -> "Batch":
        return Batch(**{k: (v[idx] if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()})

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def model_inputs(self) -> dict[str, torch.Tensor]:
        out = {"input_ids": self.input_ids, "attention_mask": self.attention_mask}
        if self.token_type_ids is not None:
            out["token_type_ids"] = self.token_type_ids
        return out


@dataclass
class ClassifierOutput:
    logits: torch.Tensor
    #: the sentence representation the head reads (pooler output, or [CLS] hidden state)
    pooled: torch.Tensor


@runtime_checkable
class Classifier(Protocol):
    """What objectives and metrics may ask of a model: every model component builds one
    (the built-ins build ``registry.models.classifier.Classifier``, an ``nn.Module``).

    Calling it (``forward``) with token ids, or with ``inputs_embeds`` instead, returns a
    ``ClassifierOutput``; ``encoder`` is the transformer, ``head`` the linear layer that reads
    the ``hidden_size``-wide pooled representation, ``tokenizer`` a fast tokenizer.
    ``isinstance(model, Classifier)`` checks that the members exist, not their signatures.
    """

    tokenizer: Any
    encoder: nn.Module
    head: nn.Linear
    training: bool

    @property
    def hidden_size(self) -> int: ...
    def input_embeddings(self) -> nn.Embedding: ...
    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None) -> ClassifierOutput: ...
    def __call__(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                 token_type_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None) -> ClassifierOutput: ...
    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...


class EncodedData(Protocol):
    """A tokenized split the objectives can draw batches from."""

    labels: torch.Tensor
    confound: torch.Tensor  # -1 unknown
    confound_visible: torch.Tensor  # bool

    def __len__(self) -> int: ...
    def batch(self, index: torch.Tensor | list[int]) -> Batch: ...


@dataclass
class TokenAttributions:
    """One score per token position of a batch (``attributions`` components return this).

    ``scores[b, t]`` is 0 wherever ``counted[b, t]`` is False (padding, and with
    ``positions: tokens`` the special tokens); ``counted`` says which positions a loss or a
    metric averages over.  ``scores`` carries a graph when the component's mode makes it
    differentiable (e.g. for a training penalty).
    """

    scores: torch.Tensor  # (B, T) float
    counted: torch.Tensor  # (B, T) bool
    target: torch.Tensor  # (B,) the class each row was attributed to


@dataclass
class ObjectiveContext:
    """What an objective may see when it is bound to a run."""

    model: Classifier
    train: EncodedData
    num_labels: int
    num_confounds: int
    device: torch.device
    generator: torch.Generator  # seeded, for the objective's own sampling
    batch_size: int = 32
    #: modules shared by several bound objectives (``shared``), by key; the engine trains and
    #: checkpoints each once, as ``extras["shared__<key>"]``
    shared_modules: dict[str, nn.Module] = field(default_factory=dict)
    #: this process's share of work split across processes (a multi-process run); the
    #: default is a single process, whose share is everything
    ranks: Ranks = field(default_factory=Ranks)
    #: the dataset's raw splits by name (texts, ids, labels), for objectives that show or
    #: rebuild examples (HILDIF); ``train`` is the encoded form of ``splits[train_split]``
    splits: dict[str, "Split"] = field(default_factory=dict)
    #: tokenise a raw split the way the run's data is tokenised (tokenizer, max_length)
    encode: Callable[["Split"], EncodedData] | None = None
    #: the model's class names, in label order
    label_names: list[str] = field(default_factory=list)
    #: the engine's human-feedback channel (files in the run folder, web page, terminal)
    feedback: "FeedbackSource | None" = None

    def shared(self, key: str, factory: Callable[[], nn.Module]) -> nn.Module:
        """The module registered under ``key``, built by ``factory`` for the first objective
        that asks: two terms (e.g. of two phases) that ask for the same key get the same
        object.  Don't also return it from ``extra_modules()`` (the engine adds it once)."""
        if key not in self.shared_modules:
            self.shared_modules[key] = factory()
        return self.shared_modules[key]


@dataclass
class Predictions:
    """Model outputs on one split, for prediction-level metrics."""

    split: str
    logits: torch.Tensor  # (N, C) float
    labels: torch.Tensor  # (N,)
    confound: torch.Tensor | None = None  # (N,), -1 unknown
    meta: dict[str, list[Any]] = field(default_factory=dict)
    label_names: list[str] = field(default_factory=list)
    confound_names: list[str] = field(default_factory=list)  # empty: unknown, keys use the index
    confound_column: str | None = None  # e.g. "prefix"
    #: the split's label groups, when ``logits`` were collapsed to them (``Split.label_groups``)
    label_groups: list[list[int]] | None = None


@runtime_checkable
class FeedbackSource(Protocol):
    """How an objective asks a person (or a file) to score examples: the engine's side.

    ``explanations`` is built lazily: on a resumed run the round's saved explanations are
    reused and ``build`` is not called.  Returns the score of every (anchor id, candidate id)
    of the explanations; raises when the run must stop to wait for scores (the engine saves
    its state so that ``--resume`` continues at this round with the scores given so far).
    """

    def collect(self, round_name: str, build: Callable[[], dict[str, Any]], mode: str,
                file: str | None = None) -> tuple[dict[str, Any], dict[tuple[str, str], int]]:
        """(the round's explanations, scores by (anchor id, candidate id))."""
        ...


@dataclass(frozen=True)
class PassCounts:
    """Example-passes of one optimizer step of an objective term (``Objective.cost``): rows run
    forward, backward (first-order gradients) and double backward (a backward through a
    gradient, e.g. an HVP or ``create_graph`` gradients).  ``show --cost`` multiplies them by the
    tokens per row and by seconds per token calibrated on this machine."""

    forward: float = 0.0
    backward: float = 0.0
    double_backward: float = 0.0

    def __add__(self, other: "PassCounts") -> "PassCounts":
        return PassCounts(self.forward + other.forward, self.backward + other.backward,
                          self.double_backward + other.double_backward)

    def __mul__(self, n: float) -> "PassCounts":
        return PassCounts(self.forward * n, self.backward * n, self.double_backward * n)

    __rmul__ = __mul__
