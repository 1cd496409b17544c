"""Tables: the one table renderer (text, markdown, csv), the ``--format`` dispatch of the
commands that print them (``diff``, ``compare``), the order of metric keys and how their
numbers are written, and the results table printed at the end of a run."""
from __future__ import annotations

import csv
import io
import json
import math
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

from recipe_engine.errors import UserError

TABLE_FORMATS = ("text", "markdown", "csv")
T = TypeVar("T")

#: splits first in this order, then any other split alphabetically
SPLIT_ORDER = ("test", "dev", "validation", "train")
#: metrics first in this order (after the split prefix), then the rest alphabetically,
#: per-group accuracies last
METRIC_ORDER = ("accuracy", "worst_group", "aligned", "conflicting", "gap", "roc_auc", "ece", "nll", "brier")


def _split_metric(key: str) -> tuple[str, str]:
    split, sep, metric = key.partition("/")
    return (split, metric) if sep else ("", key)


def key_order(key: str) -> tuple:
    """Sort key of a ``"<split>/<metric>"`` name: by split, then the usual metric order."""
    split, metric = _split_metric(key)
    split_rank = (SPLIT_ORDER.index(split), "") if split in SPLIT_ORDER else (len(SPLIT_ORDER), split)
    if metric in METRIC_ORDER:
        metric_rank = (0, METRIC_ORDER.index(metric), "")
    else:
        metric_rank = (2 if metric.startswith("group/") else 1, 0, metric)
    return (*split_rank, *metric_rank)


def order_keys(keys: Iterable[str]) -> list[str]:
    return sorted(keys, key=key_order)


#: metrics reported in percent: always shown with 2 decimals
PERCENT_METRICS = ("accuracy", "worst_group", "aligned", "conflicting", "gap", "ece")
#: metric names under these prefixes are percentages too (group_accuracy, class_accuracy, hans_accuracy)
PERCENT_PREFIXES = ("group/", "accuracy/", "all/", "lexical_overlap/", "subsequence/", "constituent/")


def decimals(key: str, value: float | None) -> int:
    """2 decimals for percentages (``PERCENT_METRICS`` and the per-group, per-class and HANS
    per-heuristic accuracies) and other values of magnitude >= 1; 4 for the rest (AUC, NLL,
    Brier...), or 3 significant digits for values under 0.001 (e.g. attribution variances)."""
    metric = _split_metric(key)[1]
    if metric in PERCENT_METRICS or metric.startswith(PERCENT_PREFIXES):
        return 2
    if value is None or not math.isfinite(value) or value == 0:
        return 4
    if abs(value) >= 1:
        return 2
    return max(4, 2 - math.floor(math.log10(abs(value))))


def fmt(value: float | None, places: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return f"{value:.{places}f}"


def mean_sd(key: str, stats: Mapping[str, Any]) -> str:
    """``"83.41 ± 1.20"`` from an ``aggregate_seeds`` entry."""
    places = decimals(key, stats["mean"])
    return f"{fmt(stats['mean'], places)} ± {fmt(stats['sd'], places)}"


def _numeric(cell: str) -> bool:
    head = cell.split(" ", 1)[0]
    try:
        float(head)
    except ValueError:
        return head in ("nan", "-")
    return True


def format_table(rows: list[list[str]], header: list[str]) -> str:
    """Columns padded to their widest cell; numeric columns right-aligned; a rule under the header."""
    ncol = len(header)
    if any(len(r) != ncol for r in rows):
        raise ValueError(f"format_table: every row needs {ncol} cells")
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    right = [bool(rows) and all(_numeric(str(r[i])) or not str(r[i]) for r in rows) for i in range(ncol)]

    def line(cells: list[str]) -> str:
        parts = [str(c).rjust(w) if r else str(c).ljust(w) for c, w, r in zip(cells, widths, right)]
        return "  ".join(parts).rstrip()

    return "\n".join([line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def _markdown_table(rows: Sequence[Sequence[Any]], header: Sequence[Any], *, blank: str = "") -> str:
    """A markdown table; ``|`` in a cell is escaped, an empty cell is written as ``blank``."""
    def esc(cell: Any) -> str:
        return str(cell).replace("|", "\\|") or blank

    return "\n".join(["| " + " | ".join(map(esc, header)) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(map(esc, r)) + " |" for r in rows)])


def _csv_table(rows: Sequence[Sequence[Any]], header: Sequence[Any]) -> str:
    """CSV with ``\\n`` line ends and no final newline."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().rstrip("\n")


def render_table(rows: Sequence[Sequence[Any]], header: Sequence[Any], fmt_name: str = "text", *, blank: str = "") -> str:
    """The table renderer of every command: ``rows`` under ``header`` as text (``format_table``),
    markdown or CSV (``TABLE_FORMATS``); ``blank`` is what an empty markdown cell shows."""
    if fmt_name == "markdown":
        return _markdown_table(rows, header, blank=blank)
    if fmt_name == "csv":
        return _csv_table(rows, header)
    if fmt_name == "text":
        return format_table([list(r) for r in rows], list(header))
    raise ValueError(f"render_table: no table format {fmt_name!r}; use one of {', '.join(TABLE_FORMATS)}")


def json_text(obj: Any, default: Callable[[Any], Any] | None = None) -> str:
    """``obj`` as indented JSON, non-ASCII kept."""
    return json.dumps(obj, indent=2, ensure_ascii=False, default=default)


def render_format(obj: T, fmt_name: str, renderers: Mapping[str, Callable[[T], str]]) -> str:
    """The output of ``--format fmt_name``: ``renderers[fmt_name](obj)``; any other format is a
    :class:`UserError` naming those offered, in their order."""
    if fmt_name not in renderers:
        raise UserError(f"--format {fmt_name!r}: use one of {', '.join(renderers)}")
    return renderers[fmt_name](obj)


def _selected(key: str, keys: Iterable[str] | None) -> bool:
    if keys is None:
        return True
    return any(key == k or _split_metric(key)[1] == k for k in keys)


def results_table(aggregate: Mapping[str, Mapping[str, Any]], keys: Iterable[str] | None = None) -> str:
    """The end-of-run table: split | metric | mean ± sd | n, grouped by split (test first).

    ``keys`` keeps only these metrics: a full name (``"test/accuracy"``) or a metric name
    that matches in every split (``"accuracy"``).
    """
    keys = None if keys is None else list(keys)
    rows, previous = [], None
    for key in order_keys(k for k in aggregate if _selected(k, keys)):
        split, metric = _split_metric(key)
        stats = aggregate[key]
        rows.append([split if split != previous else "", metric, mean_sd(key, stats), str(stats["n"])])
        previous = split
    return format_table(rows, ["split", "metric", "mean ± sd", "n"])
