"""``hildif``: one HILDIF debugging round as a schedule phase (Zylberajch et al. 2021, Algorithm 1).

At the round's start (``start_round``): SELECT ANCHORS from a validation split, EXPLAIN each by
its most helpful training examples (FastIF: kNN pre-filter, then ``-grad L(z) . s_test``),
collect a 1-5 similarity score for every (anchor, example) pair through the engine's feedback
channel (web page, terminal, a pre-filled file, or 5 for all: the paper's not-HS), and build
S = the union over pairs of g(z, s): the augmenter's copies of z (10 x s in the paper) plus z
itself, or z alone without augmentation (the paper's not-DA).  The round's steps are then
FINE TUNE(f, S): cross-entropy on batches of S for the phase's ``for: {epochs: N}``.  T
iterations are a ``repeat: T`` around the phase.

Differences from the authors' code (reference_code_notes.md sec. 2.6), fixed here: the
examples scored are the kNN candidates themselves and the examples shown are the ones scored
(their shuffled loader mixes both up); LiSSA draws its batches from the training data with the
run's seeded generator; the score-to-copies mapping is the augmenter's param (paper 10 x s,
code 10/30/50/80/100).
"""
from __future__ import annotations

import base64
import math
from collections import Counter
from typing import Any, Iterator, Literal, Optional

import torch
import torch.nn.functional as F
from pydantic import Field

import registry
from registry import StrictParams, register
from registry._lib.anchors import select_anchors
from registry._lib.explain import ExplainParams, explain
from registry._lib.param_sets import select_parameters
from registry._lib.precision import full_precision
from registry.base import Objective
from registry.errors import UserError
from registry.types import Batch, Classifier, EncodedData, ObjectiveContext, Split


class AnchorParams(StrictParams):
    added_later = frozenset({"mistakes_between"})
    split: str = Field("dev", description="the validation split anchors come from")
    select: Literal["misclassified", "random", "ids"] = Field(
        "misclassified", description="misclassified: n drawn among the examples the model gets wrong (the authors' "
                                     "get_test); random: n drawn uniformly; ids: the examples named in `ids` (the paper's H)")
    n: int = Field(5, ge=1, description="how many anchors with select: misclassified or random (the paper: 5); "
                                        "with select: ids every listed id is an anchor")
    ids: Optional[list[str]] = Field(None, description="the anchors' ids when select: ids")
    mistakes_between: Optional[list[list[str]]] = Field(
        None, description="with select: misclassified, count an error only between these groups of class names, e.g. "
                          "[[entailment], [neutral, contradiction]] (the paper's two-class MNLI); null: between "
                          "the model's classes")


class AugmentRef(StrictParams):
    name: str = Field(description="a registered augmenter, e.g. synonym_replacement")
    params: dict[str, Any] = Field(default_factory=dict, description="the augmenter's params")


def encode_state(state: torch.Tensor) -> str:
    """A generator state (a uint8 tensor) as base64 text for the round's JSON."""
    return base64.b64encode(state.numpy().tobytes()).decode("ascii")


def decode_state(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.uint8)


@register("objective", "hildif")
class HILDIF(Objective):
    summary = "HILDIF round: anchors, influential training examples, 1-5 feedback, augmented copies; cross-entropy on them"
    paper = "Zylberajch et al. 2021, HILDIF, Algorithm 1 (FastIF: Guo et al. 2020)"
    equation = ("S = U_{i,j} g(z_ij, s_ij), z_ij = top-p argmin_z -grad L(z).H^-1 grad L(x_i, y_i) over kNN(x_i); "
                "L = -1/|B| sum_{(x,y) in B subset S} log softmax(f(x))_y")
    requires = ("text",)
    own_data = True
    round_files = True

    class Params(StrictParams):
        anchors: AnchorParams = Field(default_factory=AnchorParams, description="SELECT ANCHORS")
        influential: int = Field(10, ge=1, description="p: the most helpful training examples shown per anchor (the paper: 10 or 20)")
        explain: ExplainParams = Field(default_factory=ExplainParams, description="EXPLAIN: FastIF settings")
        feedback: Literal["no_human", "file", "web", "terminal", "later"] = Field(
            "no_human", description="who scores: no_human (every example 5, the paper's not-HS), file (`feedback_file`), "
                                    "web (a page on 127.0.0.1 during the run), terminal (a prompt during the run), later "
                                    "(stop; score with `recipe-engine feedback RUN`, then --resume)")
        feedback_file: Optional[str] = Field(None, description="pre-filled scores for feedback: file (JSONL lines or a CSV with the columns anchor, candidate, score)")
        augment: Optional[AugmentRef] = Field(
            None, description="the augmenter g (copies per score are its param); null: fine-tune on the influential "
                              "examples themselves (the paper's not-DA)")
        batch_size: int = Field(16, ge=1, description="fine-tuning batch size on S (the authors: 16)")

    def __init__(self, params: Any = None) -> None:
        super().__init__(params)
        ref = self.params.augment
        self.augmenter = registry.build("augmenters", ref.name, ref.params) if ref is not None else None

    def bind(self, ctx: ObjectiveContext) -> None:
        super().bind(ctx)
        p = self.params
        if ctx.ranks.world > 1:
            raise UserError("objective 'hildif': a debugging round (explanations, feedback, its augmented set) runs in one "
                            "process; run this recipe with --nproc 1")
        if ctx.feedback is None or ctx.encode is None:
            raise UserError("objective 'hildif' needs the engine's feedback channel and encoder (run it through recipe-engine)")
        if p.anchors.split not in ctx.splits:
            raise UserError(f"hildif: anchors.split {p.anchors.split!r} is not a split of the dataset; "
                            f"splits: {', '.join(ctx.splits)}")
        if p.anchors.select == "ids" and not p.anchors.ids:
            raise UserError("hildif: anchors.select is 'ids' but anchors.ids is empty; list the anchor ids")
        twice = sorted(i for i, k in Counter(p.anchors.ids or []).items() if k > 1)
        if twice:
            raise UserError(f"hildif: anchors.ids lists {', '.join(twice)} more than once; list each anchor once")
        groups = p.anchors.mistakes_between
        #: the group of each model class an anchor's error is counted between (None: the classes)
        self.group_of: list[int] | None = None
        if groups is not None:
            if sorted(c for g in groups for c in g) != sorted(ctx.label_names):
                raise UserError(f"hildif: anchors.mistakes_between must name every class once ({', '.join(ctx.label_names)}), "
                                f"got {groups}")
            self.group_of = [next(k for k, g in enumerate(groups) if c in g) for c in ctx.label_names]
        if p.feedback == "file" and not p.feedback_file:
            raise UserError("hildif: feedback is 'file' but feedback_file is not set; give the path of the scores")
        self.data: EncodedData | None = None  # this round's S, encoded
        self.stats: dict[str, float] = {}

    # ------------------------------------------------------------ the round's data
    def max_examples(self) -> int:
        """The largest |S|, every example at the score with the most copies: the plan's epoch
        (what `show` prints); a round whose scores ask for fewer runs shorter."""
        a = self.params.anchors
        top = (len(a.ids or []) if a.select == "ids" else a.n) * self.params.influential
        most = max(self.augmenter.copies(s) for s in range(1, 6)) if self.augmenter is not None else 0
        return top * (1 + most)

    def steps_per_epoch(self, train: EncodedData | None = None) -> int:
        return math.ceil(self.max_examples() / self.params.batch_size)

    def round_steps_per_epoch(self) -> int | None:
        return None if self.data is None else math.ceil(len(self.data) / self.params.batch_size)

    def start_round(self) -> None:
        self.build(int(torch.randint(2**31 - 1, (1,), generator=self.ctx.generator)), fresh=True)

    def build(self, seed: int, fresh: bool = False) -> None:
        """Explanations (saved ones reused), scores, and S augmented with ``seed``.

        At a round's start (``fresh``) the generator is set to where EXPLAIN left it, also when
        the explanations were saved by an earlier process (a round that stopped for scores):
        the round then draws the same batches of S as a run that never stopped."""
        explanations, scores = self.ctx.feedback.collect(
            f"round-{self.round_index}", self.explanations, self.params.feedback, self.params.feedback_file)
        if fresh and "generator_state" in explanations:
            self.ctx.generator.set_state(decode_state(explanations["generator_state"]))
        self.seed = seed
        self.data = self.ctx.encode(self.augmented(explanations, scores, seed))
        self.stats = {"anchors": float(len(explanations["anchors"])), "examples": float(len(self.data)),
                      "mean_score": sum(scores.values()) / max(len(scores), 1)}

    def explanations(self) -> dict[str, Any]:
        """SELECT ANCHORS and EXPLAIN: the round's explanations (the feedback files' format)."""
        p, ctx, model = self.params, self.ctx, self.ctx.model
        anchor_split = ctx.splits[p.anchors.split]
        anchor_data = ctx.encode(anchor_split)
        rows, pred = select_anchors(model, anchor_data, how=p.anchors.select, n=p.anchors.n, ids=p.anchors.ids,
                                    generator=ctx.generator, batch_size=max(ctx.batch_size, 64), group_of=self.group_of)
        train_raw = ctx.splits.get(getattr(ctx.train, "name", ""))  # the raw rows of the encoded training data
        if train_raw is None:
            raise UserError("hildif: the raw training split is not available to show its examples")
        params = select_parameters(model, p.explain.parameters)
        found = explain(model, anchor_data.batch(rows).to(ctx.device), lambda idx: ctx.train.batch(idx).to(ctx.device),
                        len(ctx.train), params, settings=p.explain, top=p.influential,
                        hessian_batches=self.hessian_batches(), lengths=getattr(ctx.train, "lengths", None))
        names = ctx.label_names

        def row(split: Split, i: int) -> dict[str, Any]:
            return {"id": split.ids[i], "text": split.text[i],
                    "text_pair": split.text_pair[i] if split.text_pair is not None else None,
                    "label": names[split.label[i]] if 0 <= split.label[i] < len(names) else str(split.label[i])}

        anchors = []
        for ex in found:
            a = row(anchor_split, int(rows[ex.anchor_index]))
            a["predicted"] = names[int(pred[ex.anchor_index])]
            a["candidates"] = [{**row(train_raw, c), "influence": float(s)} for c, s in zip(ex.candidate_indices, ex.scores)]
            anchors.append(a)
        # the draws of SELECT ANCHORS and LiSSA are done: where they left the generator
        found_all = {"label_names": list(names), "anchors": anchors,
                     "generator_state": encode_state(ctx.generator.get_state())}
        if p.anchors.select != "ids" and len(anchors) < p.anchors.n:
            found_all["note"] = (f"{len(anchors)} anchors, not {p.anchors.n}: split {p.anchors.split!r} has only "
                                 f"{len(anchors)} {p.anchors.select} examples")
        return found_all

    def hessian_batches(self) -> Iterator[Batch]:
        """LiSSA's training batches: uniform draws from the training data, forever (seeded)."""
        n, size = len(self.ctx.train), self.params.explain.hessian_batch_size
        while True:
            yield self.ctx.train.batch(torch.randint(n, (min(size, n),), generator=self.ctx.generator)).to(self.ctx.device)

    def augmented(self, explanations: dict[str, Any], scores: dict[tuple[str, str], int], seed: int) -> Split:
        """S = U g(z, s): per scored (anchor, example) pair, the example and its augmented copies.

        An example influential for several anchors enters once per pair (each pair's score asks
        for its own copies); from its second pair on, its id in S is ``<id>@<anchor id>`` so every
        id of S (and of its copies) stays unique."""
        names = explanations["label_names"]
        rows: list[dict[str, Any]] = []
        seen: set[str] = set()
        for a in explanations["anchors"]:
            for c in a["candidates"]:
                score = scores[(a["id"], c["id"])]
                uid = c["id"] if c["id"] not in seen else f"{c['id']}@{a['id']}"
                seen.add(c["id"])
                example = {"id": uid, "text": c["text"], "text_pair": c["text_pair"], "label": c["label"]}
                rows.append(example)
                if self.augmenter is not None:
                    rows.extend(self.augmenter.augment(example, self.augmenter.copies(score), seed=seed + len(rows)))
        pairs = any(r["text_pair"] is not None for r in rows)
        return Split(name=f"hildif-{self.round_path}", ids=[r["id"] for r in rows], text=[r["text"] for r in rows],
                     label=[names.index(r["label"]) for r in rows],
                     text_pair=[r["text_pair"] or "" for r in rows] if pairs else None)

    def batches(self, epoch: int) -> Iterator[Batch]:
        if self.data is None:
            self.start_round()
        order = torch.randperm(len(self.data), generator=self.ctx.generator)
        for chunk in order.split(self.params.batch_size):
            yield self.data.batch(chunk)

    # ------------------------------------------------------------ FINE TUNE(f, S)
    def loss(self, model: Classifier, batch: Batch) -> torch.Tensor:
        logits = model(**batch.model_inputs()).logits
        return F.cross_entropy(full_precision(logits), batch.labels)

    def logs(self) -> dict[str, float]:
        return dict(self.stats)

    def state_dict(self) -> dict[str, Any]:
        """S is rebuilt from the round's files and this seed (explanations and scores are on disk)."""
        return {} if self.data is None else {"seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "seed" in state:
            self.build(int(state["seed"]))
