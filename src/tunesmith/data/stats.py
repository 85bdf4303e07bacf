"""``tunesmith data stats``: roles, turns, token distributions with the model's tokenizer, and training cost.

Token counts use the chosen model's own tokenizer and chat template (default: the bundled SmolLM2). Costs for
hosted models (e.g. gpt-4o-mini) are estimated with that same count: OpenAI's tokenizer (tiktoken) downloads
its vocabulary files at first use, which tunesmith never does, so hosted-model token counts are approximate.
"""

from __future__ import annotations

from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from tunesmith.core.errors import ConfigError
from tunesmith.core.pricing import load_price_table
from tunesmith.core.schema import ChatExample, PreferenceExample
from tunesmith.data.formats import LoadOptions
from tunesmith.data.progress import file_progress
from tunesmith.data.source import DataSource
from tunesmith.data.tokens import TokenCounter
from tunesmith.models.bundled import BUNDLED_NAME

COMPARE_MODEL = "gpt-4o-mini"


class Distribution(BaseModel):
    """Summary of a list of numbers."""

    min: float = 0
    p5: float = 0
    median: float = 0
    mean: float = 0
    p95: float = 0
    max: float = 0
    total: float = 0

    @classmethod
    def of(cls, values: Any) -> Distribution:
        """The distribution of ``values`` (all zeros when empty)."""
        a = np.asarray(values, dtype=np.float64)
        if a.size == 0:
            return cls()
        p5, med, p95 = np.percentile(a, [5, 50, 95])
        return cls(min=a.min(), p5=p5, median=med, mean=a.mean(), p95=p95, max=a.max(), total=a.sum())


class CostLine(BaseModel):
    """Estimated training cost on one price-table model."""

    model: str
    kind: str
    usd: float | None = Field(description="None when the model has no training price.")
    note: str = ""


class DataStats(BaseModel):
    """The result of :func:`source_stats`."""

    path: str
    model: str
    n_examples: int
    n_invalid: int = Field(description="Records skipped because they are invalid (see `data validate`).")
    roles: dict[str, int] = Field(description="Messages per role.")
    turns: Distribution = Field(description="Messages per example.")
    tokens: Distribution = Field(description="Tokens per example (chat template included).")
    trained_tokens: Distribution = Field(description="Trained (assistant, loss-masked) tokens per example.")
    epochs: int
    billed_tokens: int = Field(description="All tokens x epochs (what per-token training prices bill).")
    costs: list[CostLine]
    histogram: list[tuple[float, float, int]] = Field(description="(low, high, count) bins of tokens/example.")


class StatsSettings(BaseModel):
    """What ``data stats`` counts with and costs: the tokenizer's model, the epochs, the price-table entry."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(default=BUNDLED_NAME, description="Model whose tokenizer and chat template count tokens.")
    epochs: int = Field(default=3, description="Training epochs for the token and cost estimate (>= 1).")
    price_model: str | None = Field(
        default=None, description="Price-table entry to cost (default: the model's own); gpt-4o-mini is shown too."
    )
    bins: int = Field(default=12, ge=1, description="Bins of the tokens-per-example histogram.")


def compute_stats(
    path: str | Path,
    model: str = BUNDLED_NAME,
    epochs: int = 3,
    price_model: str | None = None,
    fmt: str = "auto",
    options: LoadOptions | None = None,
    tokenizer: Any = None,
    progress: bool = False,
    bins: int = 12,
) -> DataStats:
    """Stream ``path`` and summarise it: the CLI's file-and-flags form of :func:`source_stats`.

    Raises:
        ConfigError: ``epochs`` below 1. DatasetError: the file cannot be read. ModelError: the model is not
            available locally.
    """
    if epochs < 1:
        raise ConfigError(f"--epochs {epochs}: must be at least 1", "pass e.g. --epochs 3", param="epochs")
    settings = StatsSettings(model=model, epochs=epochs, price_model=price_model, bins=bins)
    return source_stats(DataSource.of(path, fmt, options), settings, tokenizer=tokenizer, progress=progress)


def source_stats(
    source: DataSource, settings: StatsSettings, tokenizer: Any = None, progress: bool = False
) -> DataStats:
    """Stream ``source`` and summarise it: roles, turns, tokens and trained tokens per example, and the cost.

    Args:
        source: the dataset (any supported format).
        settings: the tokenizer's model, epochs, price-table entry and histogram bins.
        tokenizer: an already loaded tokenizer for ``settings.model`` (skips loading).
        progress: show a progress bar.

    Raises:
        DatasetError: the file cannot be read. ModelError: the model is not available locally.
    """
    counter = TokenCounter(settings.model, tokenizer)
    roles: Counter = Counter()
    turns, tokens, trained = array("i"), array("i"), array("i")
    n_invalid, batch = 0, []
    path = source.path
    with file_progress(path, f"counting {path.name}", enabled=progress) as advance:
        for rec in source.records():
            advance(len(rec.raw) + 1)
            if rec.example is None:
                n_invalid += 1
                continue
            msgs = _messages(rec.example)
            roles.update(m.role for m in msgs)
            turns.append(len(msgs))
            batch.append(rec.example)
            if len(batch) >= 256:
                _count(counter, batch, tokens, trained)
        _count(counter, batch, tokens, trained)
    billed = int(sum(tokens)) * settings.epochs
    hist, edges = _histogram(np.asarray(tokens), settings.bins)
    return DataStats(
        path=str(path),
        model=settings.model,
        n_examples=len(turns),
        n_invalid=n_invalid,
        roles=dict(roles),
        turns=Distribution.of(turns),
        tokens=Distribution.of(tokens),
        trained_tokens=Distribution.of(trained),
        epochs=settings.epochs,
        billed_tokens=billed,
        costs=estimate_costs(billed, settings.price_model or settings.model),
        histogram=[(float(edges[i]), float(edges[i + 1]), int(c)) for i, c in enumerate(hist)],
    )


def _histogram(values: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Counts and edges; whole-token bins when the range is narrow (no fractional token edges)."""
    if values.size == 0:
        return np.array([], dtype=int), np.array([0.0])
    span = int(values.max() - values.min()) + 1
    if span <= bins:
        return np.histogram(values, bins=np.arange(values.min(), values.max() + 2))
    return np.histogram(values, bins=bins)


def _messages(ex: ChatExample | PreferenceExample) -> list:
    if isinstance(ex, PreferenceExample):
        return [*ex.input.messages, *ex.preferred_output]
    return ex.messages


def _count(counter: TokenCounter, batch: list, tokens: array, trained: array) -> None:
    for c in counter.count(batch):
        tokens.append(c.n_tokens if c else 0)
        trained.append(c.n_trained if c else 0)
    batch.clear()


def estimate_costs(billed_tokens: int, price_model: str) -> list[CostLine]:
    """Training cost of ``billed_tokens`` on ``price_model`` and, for comparison, gpt-4o-mini."""
    table = load_price_table()
    out = []
    for name in dict.fromkeys([price_model, COMPARE_MODEL]):
        try:
            price = table.price(name)
        except ConfigError:
            out.append(
                CostLine(
                    model=name,
                    kind="?",
                    usd=None,
                    note="not in the price table (add it to prices.yaml or pass --price-model)",
                )
            )
            continue
        usd = billed_tokens * price.training / 1e6 if price.training is not None else None
        note = f"prices as of {price.as_of}" + ("" if price.training is not None else "; no training price")
        if price.kind == "hosted":
            note += "; tokens counted with the local tokenizer (approximate for this model)"
        out.append(CostLine(model=name, kind=price.kind, usd=usd, note=note))
    return out


def save_histogram_png(stats: DataStats, png: str | Path) -> Path:
    """Draw the tokens-per-example histogram into ``png`` (matplotlib, Agg backend; written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tunesmith.core.atomic import atomic_open

    fig, ax = plt.subplots(figsize=(6, 3.5))
    lows = [lo for lo, _, _ in stats.histogram]
    widths = [hi - lo for lo, hi, _ in stats.histogram]
    ax.bar(lows, [c for _, _, c in stats.histogram], width=widths, align="edge", edgecolor="black")
    ax.set(xlabel=f"tokens per example ({stats.model})", ylabel="examples", title=Path(stats.path).name)
    fig.tight_layout()
    with atomic_open(png, "wb") as f:
        fig.savefig(f, format="png")
    plt.close(fig)
    return Path(png)
