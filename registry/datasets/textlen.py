"""``textlen``: sentence length is the label, a "Positive ."/"Negative ." prefix the confound."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from registry import StrictParams, register
from registry.base import DatasetComponent
from registry.datasets._common import read_jsonl
from registry.datasets.data_root import require_file
from registry.datasets.textlen_builder import build_textlen
from registry.errors import DataUnavailable, UserError
from registry.types import DatasetBundle, Split

LABEL_NAMES = ["short", "long"]
CONFOUND_NAMES = ["Negative.", "Positive."]
#: the confound is which prefix the text starts with (data field ``prefix_positive``)
CONFOUND_COLUMN = "prefix"
SPLITS = ("train", "dev", "test")
#: params that only matter when the dataset is built from CoNLL-2003
BUILDER_FIELDS = (
    "build_seed", "mu_short", "mu_long", "sigma", "cut", "min_tokens", "n_train", "n_dev", "n_test",
    "train_correlation", "eval_correlation", "prefixes",
)


@register("dataset", "textlen")
class TextLen(DatasetComponent):
    summary = "Synthetic length task from CoNLL-2003 with a label-correlated prefix confound (90% train, 50% dev/test)"
    paper = "Han & Tsvetkov 2021, Influence Tuning: Demoting Spurious Correlations via Instance Attribution and Instance-Driven Updates, §5.2"
    equation = "label = [L ~ N(25,4)] vs [L ~ N(15,4)]; P(prefix agrees with label) = 0.9 train, 0.5 dev/test"

    class Params(StrictParams):
        variant: Literal["spurious", "no_spurious"] = Field(
            "spurious", description="'spurious': text starts with the prefix; 'no_spurious': the same rows without it (control)"
        )
        source: Literal["auto", "shared", "build"] = Field(
            "auto",
            description="'shared': the paper's files textlen/ under the data root; 'build': rebuild from CoNLL-2003 "
            "(conll2003/ under the data root, else the hub); 'auto': shared files when present and the builder "
            "params are at their defaults, else build",
        )
        build_seed: int = Field(2021, description="seed of the rebuild (fixed across run seeds, like the paper's data)")
        mu_short: float = Field(15, description="mean length of the short class (label 0)")
        mu_long: float = Field(25, description="mean length of the long class (label 1)")
        sigma: float = Field(4, gt=0, description="standard deviation of both length distributions")
        cut: int = Field(30, ge=1, description="sentences are cut to this many tokens before sampling L")
        min_tokens: int = Field(30, ge=1, description="only CoNLL sentences with at least this many tokens are used")
        n_train: int = Field(1500, ge=2, description="train size (from CoNLL train)")
        n_dev: int = Field(480, ge=2, description="dev size (from CoNLL train, disjoint from train)")
        n_test: int = Field(500, ge=2, description="test size (from CoNLL valid/testa)")
        train_correlation: float = Field(0.9, ge=0, le=1, description="fraction of train rows whose prefix agrees with the label")
        eval_correlation: float = Field(0.5, ge=0, le=1, description="same for dev and test")
        prefixes: tuple[str, str] = Field(("Negative .", "Positive ."), description="(negative, positive) prefix, tokens separated by spaces")
        conll_hub: str = Field("eriktks/conll2003", description="hub dataset used when conll2003/ is not under the data root")
        conll_revision: str | None = Field(
            "refs/convert/parquet", description="hub revision of conll_hub (the parquet export: datasets>=4 runs no scripts)"
        )

        def builder_changed(self) -> list[str]:
            return [f for f in BUILDER_FIELDS if getattr(self, f) != type(self).model_fields[f].default]

        @model_validator(mode="after")
        def _shared_means_defaults(self):
            changed = self.builder_changed()
            if self.source == "shared" and changed:
                raise ValueError(
                    f"source 'shared' reads the paper's files, so builder params {changed} have no effect; "
                    "set source: build (or auto) or remove them"
                )
            return self

    def columns(self) -> frozenset[str]:
        return frozenset({"text", "label", "confound"})

    def load(self, data_root: Path) -> DatasetBundle:
        p = self.params
        root = Path(data_root)
        sub = "textlen/no_spurious" if p.variant == "no_spurious" else "textlen"
        use_shared = p.source == "shared" or (
            p.source == "auto" and not p.builder_changed() and all((root / sub / f"{s}.jsonl").is_file() for s in SPLITS)
        )
        if use_shared:
            files = [require_file(root, f"{sub}/{s}.jsonl", "textlen") for s in SPLITS]
            splits = {s: _split_from_rows(s, read_jsonl(f)) for s, f in zip(SPLITS, files)}
        else:
            files, splits = self._build(root)
        return DatasetBundle(splits=splits, label_names=list(LABEL_NAMES), confound_names=list(CONFOUND_NAMES), files=files,
                             confound_column=CONFOUND_COLUMN)

    def _build(self, root: Path) -> tuple[list[Path], dict[str, Split]]:
        p = self.params
        if (root / "conll2003").is_dir():
            files = [require_file(root, f"conll2003/{s}.jsonl", "textlen (source: build)") for s in ("train", "valid")]
            train, valid = ([r["tokens"] for r in read_jsonl(f)] for f in files)
        else:
            files = []
            train, valid = load_conll_from_hub(p.conll_hub, p.conll_revision)
        try:
            splits = build_textlen(
                train, valid, seed=p.build_seed, mu_short=p.mu_short, mu_long=p.mu_long, sigma=p.sigma, cut=p.cut,
                min_tokens=p.min_tokens, n_train=p.n_train, n_dev=p.n_dev, n_test=p.n_test,
                train_correlation=p.train_correlation, eval_correlation=p.eval_correlation,
                prefixes=p.prefixes, no_spurious=p.variant == "no_spurious",
            )
        except ValueError as exc:
            raise UserError(f"data.params: cannot build TextLen: {exc}; fix: lower data.params.n_train/n_dev/n_test or data.params.min_tokens") from exc
        return files, splits


def load_conll_from_hub(hub_id: str, revision: str | None) -> tuple[list[list[str]], list[list[str]]]:
    """CoNLL-2003 train and validation (testa) token lists from the Hugging Face hub."""
    import datasets

    try:
        ds = datasets.load_dataset(hub_id, revision=revision)
        return [list(t) for t in ds["train"]["tokens"]], [list(t) for t in ds["validation"]["tokens"]]
    except Exception as exc:  # network, missing repo, missing split or column: all fixed the same way
        raise DataUnavailable(
            f"data.params.conll_hub: could not load CoNLL-2003 from the hub dataset {hub_id!r} "
            f"(revision {revision!r}; {type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); "
            "fix: put conll2003/train.jsonl and conll2003/valid.jsonl (fields: tokens) under the data root "
            "(runtime.data_root or RECIPE_ENGINE_DATA_ROOT), or use data.params.source: shared"
        ) from exc


def _split_from_rows(name: str, rows: list[dict]) -> Split:
    return Split(
        name=name,
        ids=[r["id"] for r in rows],
        text=[r["text"] for r in rows],
        label=[int(r["label"]) for r in rows],
        confound=[int(r["prefix_positive"]) for r in rows],
        meta={"length": [int(r["length"]) for r in rows]},
    )
