"""Benchmark: this project's integrated gradients against Captum's, and an ``ig_variance`` step.

1. IG, eval mode (deterministic), same model, batch, nodes (Gauss-Legendre), zero baseline on
   the word embeddings, gold target and no token_type_ids, in one process: ours
   (``registry/attributions/integrated_gradients.py``) against Captum's ``IntegratedGradients``
   called as the IG-variance authors call it (``forward(emb, mask) = model(inputs_embeds=emb,
   attention_mask=mask).logits``, all ``m * B`` points in one pass), on
   (a) the authors' batch, padded to 128 tokens (ours trims to the longest row: padded positions
       score exactly 0), and (b) the same batch already trimmed, given to both (no trimming gain).
2. Training steps in train mode (dropout on) with an AdamW step, on the batch as the engine
   delivers it (padded to its longest row; ``pad_to: 128`` still counts 128 positions):
   ``ig_variance`` faithful and differentiable against a plain cross-entropy step.

Captum is a bench-only dependency (``pip install -e .[bench]``, or ``pip install captum --no-deps``).
Times are medians of interleaved repeats; the last line printed is one JSON object.

    python bench/attributions.py [--quick] [--threads 1] [--tiny] [--nodes 10] [--batch 8]
"""
from __future__ import annotations

import argparse
import copy
import json

import _common as C
from _common import torch

import registry
from registry.models.classifier import Classifier
from registry.types import Batch
from transformers import BertConfig, BertModel


def snli_like_batch(n: int, vocab: int, width: int = 128, seed: int = 0, lo: int = 20, hi: int = 60) -> Batch:
    """``n`` premise/hypothesis-like rows: [CLS] premise [SEP] hypothesis [SEP], lengths lo..hi,
    padded to ``width`` (the authors' ``padding='max_length'``), 3 labels."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(lo, hi + 1, (n,), generator=g)
    ids = torch.randint(1000, vocab, (n, width), generator=g)
    mask = (torch.arange(width)[None] < lengths[:, None]).long()
    tt = torch.zeros_like(ids)
    ids[:, 0] = 101
    for i, L in enumerate(lengths.tolist()):
        split = L * 3 // 5
        ids[i, split] = ids[i, L - 1] = 102
        tt[i, split + 1:L] = 1
    ids[mask == 0] = 0
    return Batch(input_ids=ids, attention_mask=mask, labels=torch.randint(0, 3, (n,), generator=g),
                 index=torch.arange(n), token_type_ids=tt)


def trimmed(batch: Batch) -> Batch:
    from registry._lib.per_example import trim_padding
    return trim_padding(batch)


def captum_ig(model, batch: Batch, nodes: int) -> torch.Tensor:
    """The authors' ``compute_ig_attributions``: Captum IG on the word embeddings, summed over the dimension."""
    from captum.attr import IntegratedGradients

    def forward(emb, mask):
        return model(inputs_embeds=emb, attention_mask=mask).logits

    emb = model.input_embeddings()(batch.input_ids)
    attr = IntegratedGradients(forward).attribute(emb, baselines=torch.zeros_like(emb), target=batch.labels,
                                                  additional_forward_args=(batch.attention_mask,), n_steps=nodes,
                                                  method="gausslegendre", internal_batch_size=None)
    return attr.sum(-1)


def ours_ig(model, batch: Batch, nodes: int) -> torch.Tensor:
    ig = registry.build("attributions", "integrated_gradients", {"nodes": nodes, "pad_to": batch.input_ids.shape[1]})
    return ig.attribute(model, batch).scores


def ig_step(model, opt, obj, batch: Batch) -> None:
    model.train()
    opt.zero_grad(set_to_none=True)
    obj.loss(model, batch).backward()
    opt.step()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tiny", action="store_true", help="the 1M-parameter prototype BERT instead of MiniLM (smoke test)")
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=None)
    args = ap.parse_args(argv)
    try:
        import captum
    except ImportError:
        raise SystemExit("captum is not installed: pip install -e .[bench] (or pip install captum --no-deps)")
    C.setup_threads(args.threads)
    print(C.machine() + f", captum {captum.__version__}")
    rep = args.repeats or (3 if args.quick else 5)
    if args.tiny:
        torch.manual_seed(0)
        cfg = BertConfig(vocab_size=5000, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=512, max_position_embeddings=128, attn_implementation="eager")
        model = Classifier(BertModel(cfg), tokenizer=None, num_labels=3)
        label = "tiny BERT (vocab 5000, hidden 128, 2 layers, 1.06M params)"
    else:
        model, label = C.minilm_model(), "all-MiniLM-L6-v2 (6 layers, hidden 384, 22.7M params)"
    head = torch.nn.Linear(model.hidden_size, 3)
    model.head, model.num_labels = head, 3
    vocab = model.input_embeddings().num_embeddings
    full = snli_like_batch(args.batch, vocab)
    short = trimmed(full)
    m = args.nodes
    print(f"model: {label}; batch {args.batch} rows, lengths {full.attention_mask.sum(1).tolist()}, "
          f"padded to {full.input_ids.shape[1]} (authors) / {short.input_ids.shape[1]} (longest row); {m} Gauss-Legendre nodes")

    # 1. IG against Captum, eval mode
    model.eval()
    diffs = {}
    for name, b in (("128", full), ("trim", short)):
        ours, theirs = ours_ig(model, b, m).detach(), captum_ig(model, b, m).detach()
        diffs[name] = float((ours - theirs).abs().max())
        scale = float(theirs.abs().max())
    t = C.interleaved({
        "captum, padded to 128": lambda: captum_ig(model, full, m),
        "ours, padded to 128": lambda: ours_ig(model, full, m),
        "captum, longest row": lambda: captum_ig(model, short, m),
        "ours, longest row": lambda: ours_ig(model, short, m),
    }, repeats=rep)
    r128 = t["ours, padded to 128"] / t["captum, padded to 128"]
    rtrim = t["ours, longest row"] / t["captum, longest row"]
    print("\nintegrated gradients, eval mode: ours vs Captum IntegratedGradients (same nodes, baseline, target, model, batch)")
    print(C.table(["batch width", "Captum ms", "ours ms", "ours / Captum", "max |ours - Captum|"], [
        ["128 (authors)", f"{t['captum, padded to 128'] * 1e3:,.0f}", f"{t['ours, padded to 128'] * 1e3:,.0f}", f"{r128:.2f}", f"{diffs['128']:.1e}"],
        [f"{short.input_ids.shape[1]} (longest row)", f"{t['captum, longest row'] * 1e3:,.0f}", f"{t['ours, longest row'] * 1e3:,.0f}",
         f"{rtrim:.2f}", f"{diffs['trim']:.1e}"]]))
    print(f"(largest |attribution|: {scale:.2e})")

    # 2. training steps, train mode, on the batch as the engine delivers it
    steps = {}
    ce_obj = registry.build("objectives", "cross_entropy")
    for mode in ("faithful", "differentiable"):
        steps[mode] = registry.build("objectives", "ig_variance", {"mode": mode, "nodes": m})
    models = {k: copy.deepcopy(model) for k in ("ce", "faithful", "differentiable")}
    opts = {k: torch.optim.AdamW(v.parameters(), lr=1e-5) for k, v in models.items()}
    ts = C.interleaved({
        "ce": lambda: ig_step(models["ce"], opts["ce"], ce_obj, short),
        "faithful": lambda: ig_step(models["faithful"], opts["faithful"], steps["faithful"], short),
        "differentiable": lambda: ig_step(models["differentiable"], opts["differentiable"], steps["differentiable"], short),
    }, repeats=rep, budget_s=120)
    print(f"\ntraining step (train mode, AdamW), batch {args.batch} x {short.input_ids.shape[1]} tokens, pad_to 128, {m} nodes")
    print(C.table(["objective", "ms", "x CE step", "budget 1.5 (m+1)"], [
        ["cross_entropy", f"{ts['ce'] * 1e3:,.0f}", "1.00", ""],
        ["ig_variance faithful", f"{ts['faithful'] * 1e3:,.0f}", f"{ts['faithful'] / ts['ce']:.2f}", f"{1.5 * (m + 1):.1f}"],
        ["ig_variance differentiable", f"{ts['differentiable'] * 1e3:,.0f}", f"{ts['differentiable'] / ts['ce']:.2f}", ""]]))
    summary = {
        "ig_time_ratio_vs_captum": round(r128, 3),
        "ig_time_ratio_vs_captum_same_width": round(rtrim, 3),
        "ig_max_abs_diff_vs_captum": float(f"{max(diffs.values()):.2e}"),
        "ig_variance_step_over_ce": round(ts["faithful"] / ts["ce"], 2),
        "ig_variance_differentiable_step_over_ce": round(ts["differentiable"] / ts["ce"], 2),
        "ig_nodes": m,
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
