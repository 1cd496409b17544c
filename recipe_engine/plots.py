"""Figures of the run reports, drawn with matplotlib's Agg canvas (no display, no pyplot state)
and embedded as base64 PNG data URIs so that ``report.html`` is one self-contained file."""
from __future__ import annotations

import base64
import io
import math
from typing import Any, Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

Series = Mapping[Any, Sequence[tuple[float, float]]]  # seed (int) or a label -> [(step, value)]


def new_figure(width: float = 6.4, height: float = 3.6) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def data_uri(fig: Figure) -> str:
    """The figure as ``data:image/png;base64,...``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _grid(n: int) -> tuple[int, int]:
    cols = min(n, 3)
    return math.ceil(n / cols), cols


def curves(panels: Mapping[str, Series], ylabel: str = "loss", log_y: bool = False) -> Figure:
    """One panel per key (e.g. an objective term), one line per seed (or per labelled series), step on the x axis."""
    rows, cols = _grid(len(panels))
    fig = new_figure(4.2 * cols, 3.0 * rows)
    axes = fig.subplots(rows, cols, squeeze=False).flatten()
    for ax, (title, series) in zip(axes, panels.items()):
        for key, points in series.items():
            if not points:
                continue
            xs, ys = zip(*points)
            label = f"seed {key}" if isinstance(key, int) else str(key)
            ax.plot(xs, ys, marker="." if len(xs) < 30 else None, linewidth=1.2, label=label)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        if log_y and all(y > 0 for s in series.values() for _, y in s):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=7)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    return fig


def bars(labels: Sequence[str], means: Sequence[float], sds: Sequence[float], ylabel: str, title: str,
         highlight: int | None = None) -> Figure:
    """Vertical bars with ± sd error bars; ``highlight`` one of them."""
    fig = new_figure(max(4.0, 0.9 * len(labels) + 1.5), 3.6)
    ax = fig.subplots()
    colors = ["#d62728" if i == highlight else "#1f77b4" for i in range(len(labels))]
    ax.bar(range(len(labels)), means, yerr=sds, capsize=4, color=colors)
    ax.set_xticks(range(len(labels)), labels, rotation=30 if max(map(len, labels), default=0) > 10 else 0,
                  ha="right" if max(map(len, labels), default=0) > 10 else "center", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return fig


def reliability(diagram: Mapping[str, Sequence[float]], title: str) -> Figure:
    """Reliability diagram (Guo et al. 2017, Fig. 1): accuracy per confidence bin against the diagonal."""
    fig = new_figure(4.2, 4.0)
    ax = fig.subplots()
    lower, upper = diagram["lower"], diagram["upper"]
    acc, conf = diagram["accuracy"], diagram["confidence"]
    width = [u - lo for lo, u in zip(lower, upper)]
    filled = [i for i, c in enumerate(diagram["count"]) if c > 0]
    ax.bar([lower[i] for i in filled], [acc[i] for i in filled], width=[width[i] for i in filled], align="edge",
           edgecolor="black", color="#1f77b4", label="accuracy")
    ax.bar([lower[i] for i in filled], [conf[i] - acc[i] for i in filled], bottom=[acc[i] for i in filled],
           width=[width[i] for i in filled], align="edge", color="#d62728", alpha=0.3, label="gap to confidence")
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left")
    return fig
