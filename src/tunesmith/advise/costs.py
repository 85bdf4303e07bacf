"""Return on fine-tuning: token-cost arithmetic over the price table (:mod:`tunesmith.core.pricing`)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunesmith.core.errors import ConfigError
from tunesmith.core.pricing import PriceTable, load_price_table
from tunesmith.evaluate.schema import load_report


class Workload(BaseModel):
    """One way of serving the task: a model and its tokens per query."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="Price-table key of the model.")
    prompt_tokens: float = Field(ge=0, description="Prompt tokens per query (system prompt + shots + input).")
    completion_tokens: float = Field(ge=0, description="Completion tokens per query.")


class RoiInput(BaseModel):
    """A prompt-heavy large model vs a fine-tuned small model at a given volume."""

    model_config = ConfigDict(extra="forbid")
    large: Workload = Field(
        default_factory=lambda: Workload(model="gpt-4o", prompt_tokens=2000, completion_tokens=500),
        description="The current (prompted, large) setup.",
    )
    small: Workload = Field(
        default_factory=lambda: Workload(model="ft:gpt-4o-mini", prompt_tokens=500, completion_tokens=400),
        description="The fine-tuned small model with a short prompt.",
    )
    queries_per_day: float = Field(default=100_000, gt=0, description="Traffic.")
    trained_tokens: float = Field(
        default=3_000_000,
        ge=0,
        description="Tokens trained on (examples x tokens x epochs); default 1,000 examples x 1,000 tokens x 3 epochs.",
    )
    training_cost: float | None = Field(
        default=None,
        ge=0,
        description="USD of the fine-tune; default: trained_tokens x the small model's training price.",
    )


class RoiEstimate(BaseModel):
    """Daily costs, savings and the days until the training cost is recovered."""

    large_cost_per_query: float
    small_cost_per_query: float
    large_daily: float
    small_daily: float
    daily_savings: float
    training_cost: float
    break_even_days: float | None = Field(description="None when the fine-tuned model does not save money.")
    break_even_queries: float | None
    yearly_savings: float


def estimate_roi(inp: RoiInput, table: PriceTable | None = None) -> RoiEstimate:
    """Return on fine-tuning: what each setup costs per day and when the training cost is paid back.

    Args:
        inp: the two workloads, the volume and the training size or cost.
        table: prices (default: :func:`load_price_table`).

    Raises:
        ConfigError: a model is missing from the price table or has no training price.
    """
    table = table or load_price_table()
    large_q = table.query_cost(inp.large.model, inp.large.prompt_tokens, inp.large.completion_tokens)
    small_q = table.query_cost(inp.small.model, inp.small.prompt_tokens, inp.small.completion_tokens)
    training = inp.training_cost
    if training is None:
        base = inp.small.model.split(":")[1] if inp.small.model.startswith("ft:") else inp.small.model
        training = table.training_cost(base, inp.trained_tokens)
    saving_q = large_q - small_q
    days = training / (saving_q * inp.queries_per_day) if saving_q > 0 else None
    return RoiEstimate(
        large_cost_per_query=large_q,
        small_cost_per_query=small_q,
        large_daily=large_q * inp.queries_per_day,
        small_daily=small_q * inp.queries_per_day,
        daily_savings=saving_q * inp.queries_per_day,
        training_cost=training,
        break_even_days=days,
        break_even_queries=training / saving_q if saving_q > 0 else None,
        yearly_savings=saving_q * inp.queries_per_day * 365 - training,
    )


def roi_from_report(
    report_path: str | Path,
    finetuned: str | None = None,
    baseline: str | None = None,
    base: RoiInput | None = None,
) -> RoiInput:
    """An ROI input whose tokens per query are the ones measured in an evaluation ``report.json``.

    The large side is the best baseline (or ``baseline``), the small side the fine-tuned run
    (or ``finetuned``); their price-table models come from the report. Volume and training size come
    from ``base``.
    """
    report = load_report(report_path)
    comp = report.comparisons[0] if report.comparisons else None
    ft_name = finetuned or (comp.finetuned if comp else None)
    base_name = baseline or (comp.baseline if comp else None)
    if ft_name is None or base_name is None:
        raise ConfigError(
            f"{report_path}: no fine-tuned vs baseline comparison in the report",
            "pass --finetuned NAME and --baseline NAME (candidate names in the report)",
        )
    sides = []
    for cand in (report.candidate(base_name), report.candidate(ft_name)):
        sides.append(
            Workload(
                model=cand.cost.price_model or cand.model,
                prompt_tokens=cand.cost.prompt_tokens_mean,
                completion_tokens=cand.cost.completion_tokens_mean,
            )
        )
    base = base or RoiInput()
    trained = report.candidate(ft_name).trained_tokens
    return base.model_copy(
        update={
            "large": sides[0],
            "small": sides[1],
            "trained_tokens": trained if trained is not None else base.trained_tokens,
        }
    )


def parse_workload(text: str, flag: str = "--large") -> Workload:
    """``MODEL:PROMPT_TOKENS:COMPLETION_TOKENS`` (the model may contain colons, e.g. ``ft:gpt-4o-mini``)."""
    model, _, rest = text.rpartition(":")
    model, _, prompt = model.rpartition(":")
    try:
        return Workload(model=model, prompt_tokens=float(prompt), completion_tokens=float(rest))
    except (ValueError, ValidationError) as exc:
        raise ConfigError(
            f"{flag} {text!r}: expected MODEL:PROMPT_TOKENS:COMPLETION_TOKENS", f"e.g. {flag} gpt-4o:2000:500"
        ) from exc
