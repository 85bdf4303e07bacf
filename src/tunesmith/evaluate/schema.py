"""The evaluation report: everything `report.json` holds, as pydantic models (read back by the gate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from tunesmith.core.errors import EvalError


class MetricValue(BaseModel):
    """A headline metric with its 95% bootstrap interval."""

    value: float
    low: float
    high: float

    @property
    def half_width(self) -> float:
        """Half the interval width (the ``±`` in the verdict)."""
        return (self.high - self.low) / 2


class ExampleResult(BaseModel):
    """One candidate's answer to one test example."""

    index: int
    output: str
    scores: dict[str, float]
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    judge: dict[str, Any] | None = None


class CostSpeed(BaseModel):
    """Tokens, latency and money per query."""

    prompt_tokens_mean: float
    completion_tokens_mean: float
    latency_p50_s: float
    latency_p95_s: float
    price_model: str | None = None
    cost_per_1k: float | None = Field(default=None, description="USD per 1,000 queries (None: no price entry).")
    note: str = ""


class RegressionResult(BaseModel):
    """The regression suite on one candidate."""

    pass_rate: float
    cases: list[dict[str, Any]]


class CandidateResult(BaseModel):
    """Everything measured for one candidate."""

    name: str
    kind: str
    model: str
    spec: dict[str, Any]
    metrics: dict[str, MetricValue]
    cost: CostSpeed
    confusion: dict[str, Any] | None = None
    worst: list[int] = Field(default_factory=list, description="Indices of the worst examples (primary metric).")
    regression: RegressionResult | None = None
    examples: list[ExampleResult]
    loss_curve: list[dict[str, Any]] | None = None
    trained_tokens: float | None = None
    json_schema: dict[str, Any] | None = Field(
        default=None, description="The JSON Schema answers were constrained to (given or inferred)."
    )
    retrieval_hit_rate: float | None = Field(
        default=None, description="rag: share of questions whose source document was retrieved."
    )


class Comparison(BaseModel):
    """Fine-tuned vs the best baseline on the primary metric, paired over the same examples."""

    finetuned: str
    baseline: str
    metric: str
    diff: float
    low: float
    high: float
    p_value: float
    mcnemar: dict[str, float]
    pass_to_fail: list[int]
    fail_to_pass: list[int]
    judge_pairwise: dict[str, int] | None = None


class RungResult(BaseModel):
    """One rung of the decision ladder against the best rung, on the primary metric."""

    name: str
    approach: str
    value: float
    low: float
    high: float
    diff_vs_best: float = Field(description="This rung minus the best rung, paired over the same examples.")
    diff_low: float
    diff_high: float
    p_value: float
    significantly_worse: bool = Field(description="The 95% interval of the difference lies below zero.")
    within_margin: bool = Field(description="The difference is no worse than minus the margin.")
    cost_per_1k: float | None = None
    latency_p50_s: float
    prompt_tokens_mean: float
    payback_queries: float | None = Field(
        default=None, description="Fine-tune rungs: queries until the training cost is paid back (None: never)."
    )
    recipe: str | None = Field(default=None, description="The recipe YAML that deploys this rung.")


class Recommendation(BaseModel):
    """What `tunesmith decide` recommends: the cheapest rung not significantly worse than the best."""

    approach: str
    candidate: str
    reason: str
    metric: str
    best: str
    test: str = Field(description="The paired test and the margin used.")
    margin: float
    alternatives: list[RungResult]
    skipped: list[str] = Field(default_factory=list, description="Rungs not run, with the reason.")


class EvalReport(BaseModel):
    """The whole evaluation (``report.json``)."""

    created: str
    test_file: str
    n_examples: int
    task_type: str
    primary_metric: str
    metrics: list[str]
    references: list[str]
    questions: list[str]
    candidates: list[CandidateResult]
    comparisons: list[Comparison] = Field(default_factory=list)
    verdict: str = ""
    break_even_queries: float | None = None
    config: dict[str, Any]
    recommendation: Recommendation | None = Field(default=None, description="`tunesmith decide` only.")

    def candidate(self, name: str) -> CandidateResult:
        """The candidate called ``name``."""
        for c in self.candidates:
            if c.name == name:
                return c
        raise EvalError(f"report has no candidate {name!r}", f"known: {', '.join(c.name for c in self.candidates)}")


def load_report(path: str | Path) -> EvalReport:
    """Read a ``report.json`` (or the directory holding it).

    Raises:
        EvalError: missing, not JSON, or not a tunesmith report.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    if not path.exists():
        raise EvalError(f"{path}: no such report", "run `tunesmith eval CONFIG.yaml` first; it writes report.json")
    try:
        return EvalReport.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as exc:
        raise EvalError(
            f"{path}: not a valid tunesmith report ({exc.error_count()} problem(s), first: "
            f"{exc.errors()[0]['loc']}: {exc.errors()[0]['msg']})",
            "regenerate it with `tunesmith eval`",
        ) from exc
