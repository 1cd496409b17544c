"""``rationale_extractor``: UIMER-DM, a DiffMask input gate trained in rounds with the
classifier, whose expected gates are aligned with the gold rationale (Chen, Jiang & Tu 2024,
the extractor-based instance; the gate from De Cao et al. 2020, DiffMask).

One objective with two roles that share ONE extractor module (the gate):

- ``role: extractor`` (the extractor round; the model is frozen, only the gate learns):

      L_ext = 1/B sum_i [ alpha (KL(p(.|x_i) || p(.|x~_i)) - eps) + E[L0]_i ],
      x~_t = z_t e_t + (1 - z_t) b,   z_t ~ HardConcrete(log_alpha_t, beta=0.2, (l, r)=(-0.2, 1.0)),
      log_alpha_t = MLP(e_t)  or  MLP([e_t; h_t]),   E[L0]_i = mean over gated tokens t of P(z_t != 0),

  e_t the model's word embedding of token t (fed through ``inputs_embeds``), h_t the encoder's
  last-layer state of the unmasked input (``gate_input: with_last_layer``), b a learned
  placeholder initialised to the [MASK] embedding (z = 1 keeps the token). Simplification:
  DiffMask's input gate has one MLP per layer l on [h_0; h_l] and multiplies the gates up to a
  randomly drawn layer; here one MLP reads the word embedding alone (``word_embeddings``, the
  default: context-free, and the alignment gradient reaches the model through the word
  embeddings only) or with the last layer (``with_last_layer``: contextual, and the gradient
  reaches the whole encoder, at the price of one more forward and backward in the model round).
  ``alpha`` is the Lagrange multiplier, trained by gradient ASCENT as in DiffMask (UIMER's port
  descends on it with the gate, which looks like a bug): it is a parameter of the gate module
  read through a gradient-reversal layer (``_lib.grl``), so the phase's ordinary descent
  optimizer ascends on it, and it is projected onto [0, alpha_max] (200) before each use (the
  projection of the previous step's update). The model runs in eval mode (DiffMask calls
  ``net.eval()``) with its parameters detached (no weight gradients are computed).
  Gated tokens: real, non-special tokens; [CLS]/[SEP]/padding always keep their embedding.

- ``role: align`` (the model round; the gate is frozen, the model learns):

      L_align = sum_i sum_{t in R_i} min(g_t / max(max_{t' in N_i} g_t', lower_bound) - 1, 0)^2,

  g_t = P(z_t != 0) the expected (deterministic) gate value, R_i the rationale tokens and N_i
  the other gated tokens of example i. Each rationale gate must reach the largest other gate.
  Summed, not averaged, as the authors (``reduction: mean`` averages over the examples used).
  The gate's weights are detached, so the gradient reaches the model (through what the gate
  reads) and never the gate. With ``with_last_layer`` the encoder pass that feeds the gate runs
  in eval mode, as the extractor saw it (the authors' explainer pass calls ``bert.eval()``). Examples without a rationale token (or
  without another token) are skipped and counted (``skipped``). The term returns only this
  loss: a recipe adds ``cross_entropy`` to the same phase (UIMER: L_task + weight L_align).
  The authors' dropout quirk (BERT dropout off during DM model training) is not reproduced:
  the phase runs in train mode as its cross-entropy term asks.

Sharing: both roles call ``ctx.shared("rationale_extractor." + extractor, factory)``
(``registry.types.ObjectiveContext.shared``), so every term with the same ``extractor`` name,
in any phase, gets the same module object; the engine trains and checkpoints it once as
``extras["shared__rationale_extractor__<name>"]``. The gate's settings (temperature, stretch,
width, multiplier) are the module's: terms that share it must agree on them. The extractor
round's optimizer updates the gate through ``trainable()`` (the gate's parameters, a phase
optimizer may select extra-module parameters).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import nn
from torch.func import functional_call

from registry import StrictParams, register
from registry._lib import hard_concrete as hc
from registry._lib.grl import grad_reverse
from registry._lib.per_example import eval_mode
from registry._lib.precision import full_precision
from registry.base import Objective
from registry.errors import UserError
from registry.types import Batch, Classifier, ObjectiveContext, PassCounts

#: the gate's settings, which every term sharing one extractor must agree on
GATE_SETTINGS = ("gate_input", "temperature", "stretch_left", "stretch_right", "gate_width", "gate_bias",
                 "multiplier_init", "multiplier_max")


class RationaleGate(nn.Module):
    """The extractor: an MLP from a word embedding to a hard-concrete location, the
    placeholder embedding and the Lagrange multiplier."""

    def __init__(self, hidden: int, width: int, placeholder: torch.Tensor, width_in: int, *, temperature: float,
                 left: float, right: float, bias: float, multiplier: float, multiplier_max: float):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(width_in, width), nn.Tanh(), nn.Linear(width, 1))
        with torch.no_grad():
            self.mlp[-1].bias.fill_(bias)  # DiffMask: start with every gate (almost surely) open
        self.placeholder = nn.Parameter(placeholder.detach().clone().reshape(hidden))
        self.multiplier = nn.Parameter(torch.tensor(float(multiplier), dtype=placeholder.dtype))
        self.temperature, self.left, self.right, self.multiplier_max = temperature, left, right, multiplier_max

    def log_alpha(self, embeds: torch.Tensor, frozen: bool = False) -> torch.Tensor:
        """(B, T) locations from the (B, T, width_in) gate inputs; ``frozen``: the MLP's weights
        are detached (no gradient to the gate)."""
        if frozen:
            params = {n: p.detach() for n, p in self.mlp.named_parameters()}
            return functional_call(self.mlp, params, (embeds,)).squeeze(-1)
        return self.mlp(embeds).squeeze(-1)

    def expected(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """``P(z != 0)`` per token."""
        return hc.expected_l0(log_alpha, self.temperature, self.left, self.right)

    def project_multiplier_(self) -> torch.Tensor:
        """Clamp the multiplier onto [0, multiplier_max] in place (after the last update) and return it."""
        with torch.no_grad():
            self.multiplier.clamp_(0.0, self.multiplier_max)
        return self.multiplier


def last_layer(model: Classifier, run: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``run()`` (a forward of ``model``) and the (B, T, H) output of ``model.encoder`` in it,
    read by a forward hook (a Hugging Face encoder returns the last layer first); None when the
    model has no ``encoder`` module."""
    encoder = getattr(model, "encoder", None)
    if not isinstance(encoder, nn.Module):
        return run(), None
    seen: list[torch.Tensor] = []

    def hook(module: nn.Module, args: Any, out: Any) -> None:
        seen.append(out if isinstance(out, torch.Tensor) else out[0])

    handle = encoder.register_forward_hook(hook)
    try:
        out = run()
    finally:
        handle.remove()
    return out, (seen[-1] if seen else None)


@register("objective", "rationale_extractor")
class RationaleExtractor(Objective):
    summary = ("UIMER-DM: a DiffMask input gate (role extractor: trains the gate, model frozen) whose expected gates "
               "are aligned with the rationale (role align: trains the model; add cross_entropy)")
    paper = ("Chen, Jiang & Tu 2024, Using Interpretation Methods for Model Enhancement (UIMER), extractor-based "
             "instance (UIMER-DM); De Cao et al. 2020, How do decisions emerge across layers in neural models? (DiffMask)")
    equation = ("extractor: L = 1/B sum_i alpha (KL(p(x_i) || p(x~_i)) - eps) + E[L0]_i, x~_t = z_t e_t + (1 - z_t) b, "
                "z ~ HardConcrete(MLP(e_t), 0.2, [-0.2, 1]), alpha ascends (clamped to [0, 200]); "
                "align: L = sum_i sum_{t in rationale} min(g_t / max(max_{t' not rationale} g_t', lower_bound) - 1, 0)^2, "
                "g = P(z != 0) of the frozen gate")
    requires = ("rationale",)

    class Params(StrictParams):
        role: Literal["extractor", "align"] = Field(
            description="extractor: train the gate (model frozen; give the phase its own optimizer); "
            "align: the alignment loss of the frozen gate's expected values (trains the model)")
        extractor: str = Field("extractor", min_length=1, description="name of the shared extractor: terms with the "
                               "same name, in any phase, use one gate module (trained and checkpointed once)")
        gate_input: Literal["word_embeddings", "with_last_layer"] = Field(
            "word_embeddings", description="what the gate MLP reads per token: the word embedding e_t, or [e_t; h_t] "
            "with h_t the encoder's last-layer state (DiffMask's [h_0; h_l] for one layer; costs one more encoder "
            "pass with a graph in the model round)")
        eps: float = Field(0.1, ge=0.0, allow_inf_nan=False, description="extractor: the KL budget eps of "
                           "alpha (KL - eps) (DiffMask/UIMER: 0.1)")
        temperature: float = Field(0.2, gt=0.0, allow_inf_nan=False, description="hard-concrete temperature beta "
                                   "(DiffMask: 0.2)")
        stretch_left: float = Field(-0.2, lt=0.0, allow_inf_nan=False, description="stretch interval's left end l < 0 "
                                    "(DiffMask: -0.2)")
        stretch_right: float = Field(1.0, ge=1.0, allow_inf_nan=False, description="stretch interval's right end r >= 1 "
                                     "(DiffMask: 1.0)")
        gate_width: int | None = Field(None, gt=0, description="hidden units of the gate MLP; null: hidden_size // 4 "
                                       "(DiffMask's hidden_attention)")
        gate_bias: float = Field(5.0, allow_inf_nan=False, description="initial bias of the gate MLP's output "
                                 "(DiffMask: 5, every gate open at the start)")
        multiplier_init: float = Field(1.0, ge=0.0, allow_inf_nan=False, description="initial Lagrange multiplier "
                                       "alpha (DiffMask: 1)")
        multiplier_max: float = Field(200.0, gt=0.0, allow_inf_nan=False, description="alpha is clamped to "
                                      "[0, multiplier_max] (DiffMask: 200)")
        lower_bound: float = Field(1e-23, gt=0.0, allow_inf_nan=False, description="align: floor of the "
                                   "max-non-rationale-gate denominator (the authors' lower_bound)")
        reduction: Literal["sum", "mean"] = Field("sum", description="align: sum over the batch (the authors) or the "
                                                  "mean over the examples used")

        @model_validator(mode="after")
        def _multiplier_in_range(self) -> "RationaleExtractor.Params":
            if self.multiplier_init > self.multiplier_max:
                raise ValueError(f"multiplier_init {self.multiplier_init} is above multiplier_max {self.multiplier_max}")
            return self

    _logs: dict[str, float] = {}

    @property
    def train_mode(self) -> bool:  # type: ignore[override]
        """The extractor round runs the frozen model in eval mode (DiffMask); align trains."""
        return self.params.role == "align"

    def bind(self, ctx: ObjectiveContext) -> None:
        """Get (or build, for the first term) the shared gate; special-token ids."""
        super().bind(ctx)
        model, p = ctx.model, self.params
        emb = model.input_embeddings()
        tok = getattr(model, "tokenizer", None)
        self._special = torch.tensor(sorted(set(getattr(tok, "all_special_ids", None) or [])), dtype=torch.long,
                                     device=ctx.device)
        mask_id = getattr(tok, "mask_token_id", None)
        if p.gate_input == "with_last_layer" and not isinstance(getattr(model, "encoder", None), nn.Module):
            raise UserError("objective rationale_extractor: gate_input: with_last_layer reads the model's encoder, and "
                            "this model has no `encoder` module; fix: use gate_input: word_embeddings")

        def build() -> RationaleGate:
            init = emb.weight[mask_id] if mask_id is not None else torch.zeros_like(emb.weight[0])
            width_in = emb.embedding_dim + (model.hidden_size if p.gate_input == "with_last_layer" else 0)
            gate = RationaleGate(emb.embedding_dim, p.gate_width or max(emb.embedding_dim // 4, 1), init, width_in,
                                 temperature=p.temperature, left=p.stretch_left, right=p.stretch_right, bias=p.gate_bias,
                                 multiplier=p.multiplier_init, multiplier_max=p.multiplier_max)
            gate.settings = {k: getattr(p, k) for k in GATE_SETTINGS}
            return gate.to(device=ctx.device, dtype=emb.weight.dtype)

        self.gate: RationaleGate = ctx.shared(f"rationale_extractor.{p.extractor}", build)  # type: ignore[assignment]
        self.gate.roles = getattr(self.gate, "roles", set()) | {p.role}
        mine = {k: getattr(p, k) for k in GATE_SETTINGS}
        differ = [f"{k}: {mine[k]} vs {self.gate.settings[k]}" for k in GATE_SETTINGS if mine[k] != self.gate.settings[k]]
        if differ:
            raise UserError(f"objective rationale_extractor: terms that share the extractor {p.extractor!r} disagree on "
                            f"its gate settings ({'; '.join(differ)}); give them the same values, or a different "
                            "`extractor` name for a separate gate")

    def trainable(self, model: Classifier) -> Iterable[nn.Parameter] | None:
        """extractor: the gate's parameters only (the model gets no update); align: everything
        (the frozen gate gets no gradient, so no update either)."""
        return list(self.gate.parameters()) if self.params.role == "extractor" else None

    def _gate_input(self, embeds: torch.Tensor, last: torch.Tensor | None) -> torch.Tensor:
        """What the gate reads: e_t, or [e_t; h_t]."""
        if self.params.gate_input == "with_last_layer":
            return torch.cat([embeds, last.to(embeds.dtype)], -1)
        return embeds

    def _gated(self, batch: Batch) -> torch.Tensor:
        """(B, T) bool: real, non-special tokens."""
        ids = batch.input_ids
        return batch.attention_mask.bool() & ~torch.isin(ids, self._special.to(ids.device))

    def cost(self, batch_size: int, seq_len: int) -> PassCounts:
        """extractor: the full and the gated input forward, the gated one backward; align: as CE."""
        if self.params.role == "extractor":
            return PassCounts(forward=2 * batch_size, backward=batch_size)
        return PassCounts(forward=batch_size, backward=batch_size)

    def loss(self, model: Classifier, batch: Batch) -> torch.Tensor:
        return self.extractor_loss(model, batch) if self.params.role == "extractor" else self.align_loss(model, batch)

    def extractor_loss(self, model: Classifier, batch: Batch) -> torch.Tensor:
        """``1/B sum_i alpha (KL_i - eps) + E[L0]_i`` through the frozen model."""
        gate, inputs = self.gate, batch.model_inputs()
        frozen = {n: p.detach() for n, p in model.named_parameters()}
        call = lambda **kw: functional_call(model, frozen, args=(), kwargs=kw).logits  # noqa: E731
        with torch.no_grad():
            if self.params.gate_input == "with_last_layer":
                logits, last = last_layer(model, lambda: call(**inputs))
            else:
                logits, last = call(**inputs), None
            log_p = F.log_softmax(full_precision(logits), -1)
        embeds = model.input_embeddings()(batch.input_ids).detach()
        gated = self._gated(batch)
        log_alpha = gate.log_alpha(self._gate_input(embeds, last))
        z = hc.sample(log_alpha, hc.uniforms(tuple(log_alpha.shape), self.ctx.generator, log_alpha),
                      gate.temperature, gate.left, gate.right)
        z = torch.where(gated, z, torch.ones_like(z))
        mixed = z.unsqueeze(-1) * embeds + (1 - z).unsqueeze(-1) * gate.placeholder
        masked = {**inputs, "inputs_embeds": mixed}
        del masked["input_ids"]
        log_q = F.log_softmax(full_precision(call(**masked)), -1)
        kl = (log_p.exp() * (log_p - log_q)).sum(-1)
        count = gated.sum(-1).clamp_min(1)
        l0 = (full_precision(gate.expected(log_alpha)) * gated).sum(-1) / count
        alpha = grad_reverse(gate.project_multiplier_(), 1.0)  # ascent on alpha under a descent optimizer
        loss = (alpha * (kl - self.params.eps) + l0).mean()
        self._logs = {"kl": float(kl.detach().mean()), "expected_l0": float(l0.detach().mean()),
                      "kept": float(((z > 0) & gated).sum() / gated.sum().clamp_min(1)),
                      "multiplier": float(gate.multiplier.detach())}
        return loss

    def align_loss(self, model: Classifier, batch: Batch) -> torch.Tensor:
        """``sum_i sum_{t in R_i} min(g_t / max(max_{N_i} g, lower_bound) - 1, 0)^2``."""
        if batch.rationale is None:
            raise UserError("objective rationale_extractor (role align): the batch has no rationale column; use a "
                            "dataset with rationales (e.g. snips)")
        if "extractor" not in self.gate.roles:  # every term is bound before the first step
            raise UserError(f"objective rationale_extractor (role align): no term with role extractor shares the "
                            f"extractor {self.params.extractor!r}, so its gate never trains; add a phase with "
                            f"{{name: rationale_extractor, params: {{role: extractor, extractor: {self.params.extractor}}}}}")
        gated = self._gated(batch)
        rat = (batch.rationale > 0) & gated
        other = gated & ~rat
        used = rat.any(-1) & other.any(-1)
        embeds = model.input_embeddings()(batch.input_ids)
        last = None
        if self.params.gate_input == "with_last_layer":
            with eval_mode(model):
                last = last_layer(model, lambda: model(**batch.model_inputs()).logits)[1]
        g = full_precision(self.gate.expected(self.gate.log_alpha(self._gate_input(embeds, last), frozen=True)))
        top = g.masked_fill(~other, float("-inf")).amax(-1).clamp_min(self.params.lower_bound)
        per_token = torch.clamp(g / top.unsqueeze(-1) - 1.0, max=0.0).square() * (rat & used.unsqueeze(-1))
        loss = per_token.sum()
        n = int(used.sum())
        if self.params.reduction == "mean":
            loss = loss / max(n, 1)
        self._logs = {"used": float(n), "skipped": float(len(batch) - n),
                      "gate_rationale": float((g * rat).sum().detach() / rat.sum().clamp_min(1)),
                      "gate_other_max": float(top.detach()[used].mean()) if n else 0.0}
        return loss

    def logs(self) -> dict[str, float]:
        """extractor: ``kl``, ``expected_l0`` (fraction of gates expected open), ``kept`` (of the
        sample), ``multiplier``; align: ``used``/``skipped`` examples, mean rationale gate
        ``gate_rationale`` and mean largest other gate ``gate_other_max``."""
        return dict(self._logs)

    def state_dict(self) -> dict[str, Any]:
        return {}
