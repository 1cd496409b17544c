"""``files``: any local JSONL/JSON/CSV/TSV/Parquet files, or a Hugging Face hub dataset."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from registry import StrictParams, register
from registry.base import DatasetComponent
from registry.datasets._checks import check_text_file, check_unique_ids
from registry.datasets._common import did_you_mean, infer_names, to_ids
from registry.datasets.data_root import ENV_VAR, SETTING
from registry.errors import DataUnavailable, UserError
from registry.types import COLUMNS, DatasetBundle, Split

FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}


@register("dataset", "files")
class Files(DatasetComponent):
    summary = "Local JSONL/JSON/CSV/TSV/Parquet files or a hub dataset, with a column mapping"
    paper = ""
    equation = ""

    class Params(StrictParams):
        path: str | None = Field(None, description="folder of the split files, relative to the data root unless absolute")
        hub: str | None = Field(None, description="hub dataset id (e.g. glue, nyu-mll/glue) instead of local files")
        config: str | None = Field(None, description="hub dataset configuration (e.g. mnli)")
        revision: str | None = Field(None, description="hub dataset revision (branch, tag or commit)")
        format: Literal["auto", "json", "csv", "parquet"] = Field(
            "auto", description="file format; 'auto' from the extension (.jsonl/.json, .csv/.tsv, .parquet, optionally .gz)"
        )
        splits: dict[str, str] = Field(
            description="split name -> file name inside path (or hub split name), e.g. {train: train.jsonl, dev: dev.jsonl}"
        )
        columns: dict[str, str | list[str]] = Field(
            description="our column -> source column: text and label required; text_pair, confound, rationale optional "
            "(rationale may list several columns, concatenated: e.g. premise and hypothesis masks)"
        )
        label_names: list[str] | None = Field(None, description="class names in index order; default: sorted string labels or 0..max")
        confound_names: list[str] | None = Field(None, description="confound value names in index order; default as label_names")
        meta_columns: list[str] = Field(default_factory=list, description="extra source columns kept per example for metrics")
        id_column: str = Field("id", description="source column with example ids, if present; else '<split>-<row>'")

        @field_validator("columns")
        @classmethod
        def _known_columns(cls, v: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
            unknown = [k for k in v if k not in COLUMNS]
            if unknown:
                k = unknown[0]
                raise ValueError(f"unknown column {k!r}{did_you_mean(k, COLUMNS)}; our columns are {', '.join(COLUMNS)}")
            missing = [k for k in ("text", "label") if k not in v]
            if missing:
                raise ValueError(f"columns must map {' and '.join(missing)} to a source column")
            lists = [k for k, s in v.items() if isinstance(s, list) and k != "rationale"]
            if lists:
                raise ValueError(f"only rationale may name several source columns, not {lists[0]!r}")
            return v

        @model_validator(mode="after")
        def _one_source(self):
            if (self.path is None) == (self.hub is None):
                raise ValueError("set exactly one of path (local files) or hub (hub dataset id)")
            if not self.splits:
                raise ValueError("splits must name at least one split")
            return self

    def columns(self) -> frozenset[str]:
        return frozenset(self.params.columns)

    def split_names(self) -> tuple[str, ...]:
        return tuple(self.params.splits)

    def load(self, data_root: Path) -> DatasetBundle:
        p = self.params
        files: list[Path] = []
        raw: dict[str, dict[str, Any]] = {}
        where: dict[str, str] = {}
        first_line: dict[str, int | None] = {}
        for split, source in p.splits.items():
            if p.path is not None:
                file = self._local_file(Path(data_root), split, source)
                files.append(file)
                ds, where[split] = self._read_local(file, split), str(file)
                first_line[split] = _first_line_of(file, p.format)
            else:
                ds, where[split] = self._read_hub(source), f"hub dataset {p.hub!r} split {source!r}"
            raw[split] = self._columns_of(ds, where[split])
        from_features = next((r["label_feature_names"] for r in raw.values() if r["label_feature_names"]), None)
        label_names = p.label_names or from_features or infer_names(v for r in raw.values() for v in r["label"])
        confound_names = None
        if "confound" in p.columns:
            confound_names = p.confound_names or infer_names(
                v for r in raw.values() for v in r["confound"] if v != -1
            )
        splits = {s: self._to_split(s, raw[s], where[s], label_names, confound_names, first_line.get(s)) for s in p.splits}
        column = p.columns.get("confound")
        return DatasetBundle(splits=splits, label_names=label_names, confound_names=confound_names, files=files,
                             confound_column=column if isinstance(column, str) else None)

    def _local_file(self, root: Path, split: str, name: str) -> Path:
        base = Path(self.params.path).expanduser()
        relative = not base.is_absolute()
        file = (root / base / name) if relative else base / name
        if file.is_file():
            return file
        via_root = f" (data.params.path is relative to the data root {root}, set by {SETTING} or {ENV_VAR})" if relative else ""
        raise DataUnavailable(
            f"{file}: data file of split {split!r} not found{via_root}; fix: correct data.params.splits.{split} "
            f"or data.params.path{' or the data root' if relative else ''}"
        )

    def _read_local(self, file: Path, split: str):
        import datasets

        fmt, kwargs = self.params.format, {}
        suffixes = [s for s in file.suffixes if s != ".gz"]
        suffix = suffixes[-1].lower() if suffixes else ""
        if fmt == "auto":
            if suffix not in FORMATS:
                raise UserError(
                    f"{file}: cannot tell the format from the extension {suffix or '(none)'!r}; "
                    "fix: set data.params.format to json, csv or parquet"
                )
            fmt = FORMATS[suffix]
        if fmt == "csv" and suffix == ".tsv":
            kwargs["delimiter"] = "\t"
        if fmt in ("json", "csv"):
            check_text_file(file, split)
        quiet = datasets.utils.are_progress_bars_disabled()
        datasets.disable_progress_bars()  # a local file: no "Generating train split" bar on stderr
        try:
            return datasets.load_dataset(fmt, data_files=str(file), split="train", **kwargs)
        except Exception as exc:
            raise UserError(f"{file}: could not be read as {fmt} ({type(exc).__name__}: {_first_line(exc)}); fix: check the file or set data.params.format") from exc
        finally:
            if not quiet:
                datasets.enable_progress_bars()

    def _read_hub(self, split: str):
        import datasets

        p = self.params
        try:
            return datasets.load_dataset(p.hub, p.config, revision=p.revision, split=split)
        except Exception as exc:
            raise DataUnavailable(
                f"data.params.hub: could not load split {split!r} of hub dataset {p.hub!r}"
                + (f" config {p.config!r}" if p.config else "")
                + f" ({type(exc).__name__}: {_first_line(exc)}); fix: check data.params.hub/config/splits and your "
                "network, or download the data and use data.params.path (local files under the data root)"
            ) from exc

    def _columns_of(self, ds, where: str) -> dict[str, Any]:
        """The source columns named by the mapping, as Python lists, keyed by our names."""
        p = self.params
        available = list(ds.column_names)

        def need(src: str, setting: str) -> list[Any]:
            if src not in available:
                raise UserError(
                    f"{where}: column {src!r} not found (set by {setting}); available columns: "
                    f"{', '.join(available)}{did_you_mean(src, available)}; fix: set {setting} to one of them"
                )
            return list(ds[src])

        out: dict[str, Any] = {}
        for ours, src in p.columns.items():
            if isinstance(src, list):  # rationale parts, kept per row as a tuple
                out[ours] = list(zip(*(need(s, f"data.params.columns.{ours}") for s in src)))
            else:
                out[ours] = need(src, f"data.params.columns.{ours}")
        for m in p.meta_columns:
            out[f"meta:{m}"] = need(m, "data.params.meta_columns")
        out["id"] = [str(v) for v in ds[p.id_column]] if p.id_column in available else None
        out["n"] = len(ds)
        out["label_feature_names"] = _feature_names(ds, p.columns["label"])
        return out

    def _to_split(self, name: str, raw: dict[str, Any], where: str, label_names: list[str], confound_names: list[str] | None,
                  first_line: int | None = None) -> Split:
        n = raw["n"]
        text = [_text(v) for v in raw["text"]]
        pair = [_text(v) for v in raw["text_pair"]] if "text_pair" in raw else None
        ids = raw["id"] or [f"{name}-{i}" for i in range(n)]
        check_unique_ids([str(i) for i in ids], name, where)
        label = to_ids(raw["label"], label_names, file=where, setting="data.params.columns.label (names: data.params.label_names)", allow_missing=False,
                        first_line=first_line)
        confound = None
        if confound_names is not None:
            confound = to_ids(
                raw["confound"], confound_names, file=where,
                setting="data.params.columns.confound (names: data.params.confound_names)", allow_missing=True,
                first_line=first_line,
            )
        rationale = None
        if "rationale" in raw:
            rationale = _rationale(raw["rationale"], text, pair, ids, where)
        meta = {k[5:]: v for k, v in raw.items() if k.startswith("meta:")}
        return Split(name=name, ids=ids, text=text, label=label, text_pair=pair, confound=confound, rationale=rationale, meta=meta)


def _rationale(values: list[Any], text: list[str], pair: list[str] | None, ids: list[str], where: str) -> list[list[int]]:
    """Word-level 0/1 masks, checked against ``text.split(" ")`` (+ the pair's words).

    A missing mask (None) is all zeros.  With several source columns (a tuple per row) the
    parts are concatenated; with two parts and a text_pair, a missing part is zeros for
    its own side (text, then pair).
    """
    out = []
    for i, mask in enumerate(values):
        sides = [len(text[i].split(" "))] + ([len(pair[i].split(" "))] if pair is not None else [])
        words = sum(sides)
        if isinstance(mask, tuple):
            if len(mask) == len(sides):
                mask = [v for part, n in zip(mask, sides) for v in (part if part is not None else [0] * n)]
            else:
                mask = [v for part in mask for v in (part or [])]
        if mask is None:
            out.append([0] * words)
            continue
        if len(mask) != words:
            raise UserError(
                f"{where}: row {ids[i]!r}: the rationale (data.params.columns.rationale) has {len(mask)} entries but the "
                f"text{' and text_pair' if pair is not None else ''} split on single spaces give {words} words; "
                "fix: give one 0/1 entry per space-separated word"
            )
        out.append([int(bool(v)) for v in mask])
    return out


def _first_line_of(file: Path, fmt: str) -> int | None:
    """The file line of row 0, for ``file:line`` in errors: 1 for JSONL, 2 for CSV/TSV (a header), else None."""
    suffixes = [x.lower() for x in file.suffixes if x != ".gz"]
    suffix = suffixes[-1] if suffixes else ""
    if suffix == ".jsonl" and fmt in ("auto", "json"):
        return 1
    if suffix in (".csv", ".tsv") and fmt in ("auto", "csv"):
        return 2
    return None


def _feature_names(ds, column: str) -> list[str] | None:
    """Class names of a ClassLabel feature (hub datasets such as glue), if it is one."""
    features = getattr(ds, "features", None) or {}
    names = getattr(features.get(column), "names", None)
    return list(names) if names else None


def _text(v: Any) -> str:
    return "" if v is None else str(v)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""
