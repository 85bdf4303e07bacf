"""Report charts as inline base64 PNGs (matplotlib Agg; no display, no files)."""

from __future__ import annotations

import base64
import io
from typing import Any

from tunesmith.evaluate.schema import EvalReport

COST_LABEL = "USD per 1,000 queries"
TOKENS_LABEL = "prompt tokens per query (no price entry)"
PALETTE = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]


def _figure(width: float = 5.4, height: float = 3.3) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height), dpi=100)


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def metric_bars(report: EvalReport, metric: str) -> str | None:
    """Bar per candidate with its 95% interval as an error bar."""
    cands = [c for c in report.candidates if metric in c.metrics]
    if not cands:
        return None
    fig, ax = _figure()
    vals = [c.metrics[metric].value for c in cands]
    err = [
        [v - c.metrics[metric].low for v, c in zip(vals, cands, strict=True)],
        [c.metrics[metric].high - v for v, c in zip(vals, cands, strict=True)],
    ]
    ax.bar(
        [c.name for c in cands],
        vals,
        yerr=err,
        capsize=6,
        color=[PALETTE[i % len(PALETTE)] for i in range(len(cands))],
    )
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} per candidate (95% bootstrap CI)")
    ax.tick_params(axis="x", labelrotation=15)
    return _png(fig)


def _point(ax: Any, x: float, interval: tuple[float, float, float], color: str, label: str) -> None:
    """One candidate as a dot with its 95% interval: ``interval`` is (value, low, high)."""
    value, low, high = interval
    ax.errorbar(
        [x], [value], yerr=[[value - low], [high - value]], fmt="o", markersize=9, capsize=5, color=color, label=label
    )


def quality_vs_cost(report: EvalReport) -> str | None:
    """Primary metric against USD per 1,000 queries (or prompt tokens when no price is known)."""
    metric = report.primary_metric
    cands = [c for c in report.candidates if metric in c.metrics]
    if not cands:
        return None
    priced = all(c.cost.cost_per_1k is not None for c in cands)
    fig, ax = _figure()
    for i, c in enumerate(cands):
        x = c.cost.cost_per_1k if priced else c.cost.prompt_tokens_mean
        m = c.metrics[metric]
        _point(ax, x, (m.value, m.low, m.high), PALETTE[i % len(PALETTE)], c.name)
    ax.set_xlabel(COST_LABEL if priced else TOKENS_LABEL)
    ax.set_ylabel(metric)
    ax.set_title("Quality vs cost")
    ax.legend(fontsize=8)
    return _png(fig)


def ladder_chart(report: EvalReport) -> str | None:
    """The decision ladder: each rung's primary metric (95% interval) against its cost, the recommended one ringed."""
    rec = report.recommendation
    if rec is None or not rec.alternatives:
        return None
    rungs = rec.alternatives
    priced = all(r.cost_per_1k is not None for r in rungs)
    fig, ax = _figure(6.4, 3.8)
    for i, r in enumerate(rungs):
        x = r.cost_per_1k if priced else r.prompt_tokens_mean
        _point(ax, x, (r.value, r.low, r.high), PALETTE[i % len(PALETTE)], f"{i + 1}. {r.name}")
        if r.name == rec.candidate:
            ax.plot([x], [r.value], "o", markersize=20, markerfacecolor="none", markeredgecolor="#222")
            ax.annotate("recommended", (x, r.value), textcoords="offset points", xytext=(10, -16), fontsize=8)
    ax.set_xlabel(COST_LABEL if priced else TOKENS_LABEL)
    ax.set_ylabel(f"{rec.metric} (95% CI)")
    ax.set_title("The ladder: quality vs cost per rung")
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def loss_curves(rows: list[dict[str, Any]], title: str) -> str | None:
    """Train and validation loss by step from a run's metrics.jsonl rows."""
    series = {
        k: [(r["step"], r[k]) for r in rows if r.get(k) is not None and "step" in r]
        for k in ("train_loss", "valid_loss")
    }
    if not any(series.values()):
        return None
    fig, ax = _figure()
    for (name, pts), color in zip(series.items(), PALETTE, strict=False):
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", markersize=3, label=name, color=color)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(f"Loss curves: {title}")
    ax.legend()
    return _png(fig)


def confusion_plot(confusion: dict[str, Any], title: str) -> str:
    """Heatmap of a confusion matrix (rows: reference, columns: prediction) with counts."""
    matrix, labels, cols = confusion["matrix"], confusion["labels"], confusion["columns"]
    fig, ax = _figure(1.2 + 1.1 * len(cols), 1.0 + 0.9 * len(labels))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(cols)), cols, rotation=30)
    ax.set_yticks(range(len(labels)), labels)
    peak = max((max(r) for r in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > peak / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    ax.set_title(title, fontsize=9)
    return _png(fig)
