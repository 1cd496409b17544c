"""rationale_agreement: AUPRC and top-k F1 by hand on a test-only attribution, the sample of rows
with rationales, splits without rationales, and a real attribution on a tiny BERT."""
from __future__ import annotations

import torch

import registry
from registry.data import EncodedSplit
from registry.metrics.rationale_agreement import RationaleAgreement, topk_hits
from tests.registry._lib.fakes import (  # noqa: F401  (a fixture)
    CLS, PAD, SEP, TOK, TableModel, table_attribution,
)
from tests.registry._lib.fakes import tiny_classifier


def _split(ids: list[list[int]], rationale: list[list[int]] | None) -> EncodedSplit:
    T = max(map(len, ids))
    input_ids = torch.tensor([r + [PAD] * (T - len(r)) for r in ids])
    att = (torch.arange(T)[None] < torch.tensor([len(r) for r in ids])[:, None]).long()
    rat = None if rationale is None else torch.tensor([r + [0] * (T - len(r)) for r in rationale], dtype=torch.float)
    n = len(ids)
    return EncodedSplit("dev", [str(i) for i in range(n)], input_ids, att, torch.ones(n, dtype=torch.long),
                        torch.full((n,), -1), torch.zeros(n, dtype=torch.bool), rationale=rat)


ROWS = [[CLS, 10, 11, 12, 13, SEP], [CLS, 14, 15, 16, 17, SEP], [CLS, 18, 19, 20, SEP, PAD],
        [CLS, 21, 22, SEP], [CLS, 23, 24, SEP]]
RATS = [[0, 1, 0, 1, 0, 0], [0, 1, 0, 0, 1, 0], [0, 1, 0, 0, 0, 0],
        [0, 0, 0, 0],  # no rationale: not sampled
        [0, 1, 1, 0]]  # no other token: not sampled
VALUES = {10: 0.9, 11: 0.5, 12: 0.7, 13: 0.1, 14: 0.2, 15: 0.8, 16: 0.5, 17: 0.6, 18: 0.3, 19: 0.1, 20: 0.2,
          21: 5.0, 22: 5.0, 23: -1.0, 24: 2.0}


def test_auprc_and_topk_f1_by_hand(table_attribution):
    # row 1: R at 0.9 and 0.7, ranked 1st and 2nd: AP 1, top-2 = both -> 1
    # row 2: R at 0.2 and 0.6; ranking 0.8 N, 0.6 R (precision 1/2), 0.5 N, 0.2 R (2/4): AP (1/2 + 1/2)/2 = 1/2;
    #        top-2 = {0.8 N, 0.6 R} -> 1/2
    # row 3: R at 0.3, the highest: AP 1, top-1 -> 1
    metric = registry.build("metric", "rationale_agreement", {"attribution": table_attribution, "batch_size": 2})
    out = metric.compute_split(TableModel(VALUES), _split(ROWS, RATS), torch.device("cpu"))
    assert out == {"rationale_auprc": (1 + 0.5 + 1) / 3, "rationale_f1": (1 + 0.5 + 1) / 3}
    # absolute: row 2 with 17 at -0.6 ranks the same as with +0.6; signed, it falls last
    signed = {**VALUES, 17: -0.6}
    out = metric.compute_split(TableModel(signed), _split(ROWS, RATS), torch.device("cpu"))
    # row 2 signed: 0.8 N, 0.5 N, 0.2 R (1/3), -0.6 R (2/4): AP (1/3 + 1/2)/2 = 5/12; top-2 {0.8, 0.5}: 0
    assert abs(out["rationale_auprc"] - (1 + 5 / 12 + 1) / 3) < 1e-12 and abs(out["rationale_f1"] - 2 / 3) < 1e-12
    metric = registry.build("metric", "rationale_agreement", {"attribution": table_attribution, "absolute": True})
    assert metric.compute_split(TableModel(signed), _split(ROWS, RATS), torch.device("cpu"))["rationale_f1"] == (1 + 0.5 + 1) / 3


def test_sample_and_splits_without_rationales(table_attribution):
    metric = registry.build("metric", "rationale_agreement", {"attribution": table_attribution, "examples": 2, "seed": 1})
    model = TableModel(VALUES)
    out = metric.compute_split(model, _split(ROWS, RATS), torch.device("cpu"))
    again = registry.build("metric", "rationale_agreement", {"attribution": table_attribution, "examples": 2, "seed": 1})
    assert again.compute_split(model, _split(ROWS, RATS), torch.device("cpu")) == out  # seeded: the same 2 rows
    assert out["rationale_f1"] in (1.0, 0.75)  # two of the three eligible rows
    assert metric.compute_split(model, _split(ROWS, None), torch.device("cpu")) == {}
    assert metric.compute_split(model, _split(ROWS[3:], RATS[3:]), torch.device("cpu")) == {}


def test_topk_ties_break_by_position():
    scores = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    mask = torch.tensor([[True, True, True, True]])
    assert topk_hits(scores, mask, torch.tensor([[False, True, False, False]])).item() == 0.0  # top-1 is position 0
    assert topk_hits(scores, mask, torch.tensor([[True, True, False, False]])).item() == 1.0


def test_default_saliency_on_a_tiny_bert():
    p = RationaleAgreement.Params()
    assert (p.attribution.name, p.attribution.params["positions"], p.attribution.params["mode"]) == ("saliency", "tokens", "faithful")
    model = tiny_classifier(seed=0, vocab=32)
    model.tokenizer = TOK
    out = registry.build("metric", "rationale_agreement").compute_split(model, _split(ROWS, RATS), torch.device("cpu"))
    assert set(out) == {"rationale_auprc", "rationale_f1"}
    assert 0 < out["rationale_auprc"] <= 1 and 0 <= out["rationale_f1"] <= 1
