"""Base classes per component kind: the methods the engine calls.

A component subclasses one of these, nests a ``Params`` model and is decorated with
``@register(kind, name)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Iterable, Iterator

import torch
from torch import nn

from registry import Component
from registry.types import (Batch, Classifier, DatasetBundle, EncodedData, ObjectiveContext, PassCounts, Predictions,
                            TokenAttributions)


class ModelComponent(Component):
    """Builds a classifier: an ``nn.Module`` that satisfies ``registry.types.Classifier``."""

    def build(self, num_labels: int) -> Classifier:
        raise NotImplementedError


class DatasetComponent(Component):
    """Loads splits with ``text`` (``text_pair``), ``label``, ``confound``, ``rationale``."""

    def columns(self) -> frozenset[str]:
        """Columns this dataset provides, known from params alone (before loading)."""
        raise NotImplementedError

    def split_names(self) -> tuple[str, ...]:
        return ("train", "dev", "test")

    def load(self, data_root: Path) -> DatasetBundle:
        raise NotImplementedError


class Objective(Component):
    """Takes a batch, returns a scalar loss; the schedule decides when it runs.

    An objective that needs gradients it computes itself (e.g. an exact second-order
    route) returns a *surrogate* whose value is the loss and whose gradient is that one.
    """

    #: run the model in train mode (dropout on) while this term is active
    train_mode: ClassVar[bool] = True
    #: a *probe* term that draws its own batches (``batches``) rather than reading the
    #: training batch; in a phase with per-batch terms it draws one batch per step
    own_data: ClassVar[bool] = False
    #: the loss differentiates through a gradient (double backward): such a phase is never
    #: run through ``torch.compile`` (``runtime.compile``)
    second_order: ClassVar[bool] = False
    #: a per-batch term whose loss is the mean of per-example losses over the whole batch
    #: (1/n sum_i l_i): split across processes, each rank's mean weighted by its share n_r/n
    #: sums to the same gradient.  Without it (a mean over a subset of the rows, a nonlinearity
    #: of a batch statistic) a multi-process run refuses the term (``--nproc``)
    batch_mean: ClassVar[bool] = False
    #: each round keeps files named by its repeat index (HILDIF's ``round-<r>/`` explanations
    #: and scores, reused on resume): the plan refuses two rounds that would share a folder
    round_files: ClassVar[bool] = False

    def bind(self, ctx: ObjectiveContext) -> None:
        """Called once per seed, after the model is built and before training."""
        self.ctx = ctx

    def extra_modules(self) -> dict[str, nn.Module]:
        """Modules the objective adds (e.g. an adversary head); trained and checkpointed."""
        return {}

    def trainable(self, model: Classifier) -> Iterable[nn.Parameter] | None:
        """Parameters this term updates; ``None`` means the whole model plus extra modules."""
        return None

    def batches(self, epoch: int) -> Iterator[Batch] | None:
        """Own data source (e.g. influence probes); ``None``: use the train loader."""
        return None

    def steps_per_epoch(self, train: EncodedData | None = None) -> int | None:
        """Length of one epoch of ``batches`` on the training data ``train`` (the bound data
        when omitted, params alone before binding); ``None`` for a per-batch term."""
        return None

    #: set by the engine before ``start_round``: the round's place in the timeline (its
    #: repeat index and phase path, e.g. 0 and ``debug[0]/hildif``)
    round_index: int = 0
    round_path: str = ""

    def start_round(self) -> None:
        """Called when a phase that contains this term starts (e.g. sample new probes)."""

    def round_steps_per_epoch(self) -> int | None:
        """After ``start_round``: the steps per epoch of this round's own data when only the
        round can know it (HILDIF's augmented set depends on the scores given); the engine
        then runs a ``for: {epochs: N}`` round for N of these epochs.  ``None``: the plan's."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint must keep to resume mid-phase (e.g. the round's probes); tensors,
        numbers and strings only."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()``."""

    def loss(self, model: Classifier, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def logs(self) -> dict[str, float]:
        """Extra scalars of the last ``loss`` call (e.g. the influence difference)."""
        return {}

    def cost(self, batch_size: int, seq_len: int) -> PassCounts:
        """Example-passes of one optimizer step of this term (``show --cost``), from params alone.

        ``batch_size`` is the training batch (a probe term counts its own ``probe_batch``
        instead), ``seq_len`` the mean padded tokens per row (for a term whose passes depend on
        it).  The default is cross-entropy's: one forward and one backward per row; declare it
        when yours does more (extra copies, path points, per-example or second-order gradients)."""
        return PassCounts(forward=batch_size, backward=batch_size)


class Attribution(Component):
    """Token attribution: ``attribute(model, batch, target)`` -> one score per token position.

    ``target`` is the class attributed per row (None: the component's own choice, e.g. its
    ``target: gold|predicted`` param).  Used for reports (under ``torch.no_grad`` callers
    still get scores: the component takes the gradients it needs itself) and inside losses.
    """

    def attribute(self, model: Classifier, batch: Batch, target: torch.Tensor | None = None) -> TokenAttributions:
        raise NotImplementedError


class Metric(Component):
    """Prediction-level metric: ``compute(preds)`` -> ``{name: value}``.

    A model-level metric (e.g. CID) sets ``needs_model = True`` and implements
    ``compute_model(model, ctx)`` instead: the engine runs it once, on the training set
    (keys ``train/<name>``).  A model-level metric that is measured on every evaluation split
    (e.g. ``attribution_variance``) also sets ``per_split = True`` and implements
    ``compute_split(model, data, device)``: keys ``<split>/<name>``.  Both run in eval mode.
    """

    needs_model: ClassVar[bool] = False
    #: with ``needs_model``: run ``compute_split`` on each evaluation split, not ``compute_model`` on train
    per_split: ClassVar[bool] = False

    def compute(self, preds: Predictions) -> dict[str, float]:
        raise NotImplementedError

    def compute_model(self, model: Classifier, ctx: ObjectiveContext) -> dict[str, float]:
        raise NotImplementedError

    def compute_split(self, model: Classifier, data: EncodedData, device: torch.device) -> dict[str, float]:
        """``{name: value}`` of the model on one tokenised evaluation split (``data.batch(rows)``
        gives its batches; move them to ``device``)."""
        raise NotImplementedError


class OptimizerComponent(Component):
    def build(self, params: Iterable[Any]) -> torch.optim.Optimizer:
        raise NotImplementedError


class SchedulerComponent(Component):
    def build(self, optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
        raise NotImplementedError


class Augmenter(Component):
    """Makes label-preserving copies of an example (HILDIF's g): ``augment(example, copies,
    seed)`` -> new examples (dicts with the same keys: ``id``, ``text``, ``text_pair``,
    ``label``, ...; each copy a new unique id), and ``copies(score)``: how many copies a 1-5
    feedback score asks for."""

    def copies(self, score: int) -> int:
        raise NotImplementedError

    def augment(self, example: dict[str, Any], copies: int, seed: int) -> list[dict[str, Any]]:
        raise NotImplementedError
