"""Cross-entropy on the task label: the standard fine-tuning objective."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from registry import StrictParams, register
from registry._lib.precision import full_precision
from registry.base import Objective
from registry.types import Batch, Classifier


@register("objective", "cross_entropy")
class CrossEntropy(Objective):
    batch_mean = True  # a mean over the batch's examples: a batch may be split across processes
    summary = "mean cross-entropy of the task label (standard fine-tuning)"
    paper = "Han & Tsvetkov 2021, sec. 5 (vanilla finetuning baseline)"
    equation = "L = -1/|B| sum_i log softmax(f(x_i))_{y_i}"

    class Params(StrictParams):
        label_smoothing: float = Field(0.0, ge=0.0, lt=1.0, description="label smoothing of torch's cross_entropy")

    def loss(self, model: Classifier, batch: Batch) -> torch.Tensor:
        logits = model(**batch.model_inputs()).logits
        return F.cross_entropy(full_precision(logits), batch.labels, label_smoothing=self.params.label_smoothing)
