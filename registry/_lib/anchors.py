"""HILDIF's SELECT ANCHORS (Zylberajch et al. 2021, Algorithm 1): the validation examples whose
influential training examples a person will judge.

Random misclassified examples (the authors' ``get_test``: the first misclassified ones of a
shuffled dev loader, i.e. a uniform draw among the misclassified), random examples, or a
handpicked list of ids (the paper's H configuration, Table 2).
"""
from __future__ import annotations

import torch
from torch import nn

from registry._lib.per_example import by_length, eval_mode
from registry.errors import UserError
from registry.types import EncodedData


@torch.no_grad()
def predicted_labels(model: nn.Module, data: EncodedData, batch_size: int = 128) -> torch.Tensor:
    """(N,) argmax class of every row of ``data`` in eval mode (rows sorted by length into
    batches, so little padding is computed)."""
    device = next(model.parameters()).device
    chunks, undo = by_length(data, torch.arange(len(data)), batch_size)
    with eval_mode(model):
        out = [model(**data.batch(c).to(device).model_inputs()).logits.argmax(-1).cpu() for c in chunks]
    return torch.cat(out)[undo] if out else torch.zeros(0, dtype=torch.long)


def select_anchors(model: nn.Module, data: EncodedData, *, how: str, n: int, ids: list[str] | None,
                   generator: torch.Generator, batch_size: int = 128,
                   group_of: list[int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(row indices of the anchors in ``data``, the model's predictions for them).

    ``how``: ``misclassified`` (n drawn uniformly among the rows the model gets wrong),
    ``random`` (n drawn uniformly) or ``ids`` (the rows named by ``ids``, in that order).
    ``group_of[c]``: the coarser class of model class ``c``; then an example is misclassified
    only when its prediction falls in another group than its gold label (the paper's two-class
    MNLI: entailment against neutral or contradiction).
    """
    pred = predicted_labels(model, data, batch_size)
    labels = torch.as_tensor(data.labels)
    if how == "ids":
        where = {i: k for k, i in enumerate(data.ids)}
        missing = [i for i in ids or [] if i not in where]
        if missing:
            raise UserError(f"anchor ids not in split {getattr(data, 'name', '?')!r}: {', '.join(missing[:5])}"
                            f"{' ...' if len(missing) > 5 else ''}; check the ids (and that the split's "
                            "eval_size subsample keeps them: data.params.keep_ids)")
        rows = torch.tensor([where[i] for i in ids or []], dtype=torch.long)
    else:
        wrong = pred != labels
        if group_of is not None:
            groups = torch.as_tensor(group_of)
            wrong = groups[pred] != groups[labels]
        pool = torch.nonzero(wrong).flatten() if how == "misclassified" else torch.arange(len(data))
        if pool.numel() == 0:
            raise UserError(f"no {how} example in split {getattr(data, 'name', '?')!r} to take as an anchor "
                            "(the model gets every one right); pick anchors by ids, or how: random")
        rows = pool[torch.randperm(pool.numel(), generator=generator)[:n]]
    return rows, pred[rows]
