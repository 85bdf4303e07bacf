"""The recommendation: the cheapest rung of the ladder that is not significantly worse than the best one.

Pure functions over an evaluation report. The test: a paired bootstrap of the per-example difference on the
primary metric (the same test examples answered by both rungs), 95% two-sided interval; a rung is
*significantly worse* when that interval lies below zero, and is acceptable when it is not significantly worse
**and** its observed difference is within the margin (default 0.02 of the metric). Rungs are tried in ladder
order (prompt, structured, few-shot, RAG, fine-tune, fine-tune + structured): the guides' order of cost and effort.
"""

from __future__ import annotations

from tunesmith.core.pricing import PriceTable
from tunesmith.evaluate import score as S
from tunesmith.evaluate.schema import CandidateResult, EvalReport, Recommendation, RungResult
from tunesmith.evaluate.stats import paired_bootstrap

APPROACH = {
    "prompt": "PROMPT",
    "structured": "STRUCTURED OUTPUT",
    "few-shot": "FEW-SHOT",
    "rag": "RAG",
    "fine-tune": "FINE-TUNE",
    "fine-tune+structured": "FINE-TUNE + STRUCTURED OUTPUT",
    "teacher": "LARGER MODEL (teacher endpoint)",
}
FINE_TUNED = ("fine-tune", "fine-tune+structured")


def recommend(
    report: EvalReport, table: PriceTable, margin: float, samples: int, seed: int, skipped: list[str] | None = None
) -> Recommendation:
    """Rank the report's candidates (in ladder order) against the best and pick the cheapest acceptable one.

    Args:
        report: the evaluation of every rung (candidates named as in :data:`APPROACH`).
        table: the price table (fine-tune payback).
        margin: how much worse than the best (in the primary metric) still counts as as good.
        samples: bootstrap resamples.
        seed: bootstrap seed.
        skipped: rungs that were not run, each with its reason.

    Returns:
        The recommendation with every rung's comparison.
    """
    metric = report.primary_metric
    rungs = [c for c in report.candidates if metric in c.metrics]
    best = max(rungs, key=lambda c: c.metrics[metric].value)  # ties: the earlier (cheaper) rung
    base_for_payback = _best_not_finetuned(rungs, metric)
    results = [_rung(c, best, metric, margin, samples, seed, table, base_for_payback) for c in rungs]
    chosen = next(r for r in results if not r.significantly_worse and r.within_margin)
    return Recommendation(
        approach=chosen.approach,
        candidate=chosen.name,
        reason=explain(chosen, results, best.name, metric, margin),
        metric=metric,
        best=best.name,
        test=f"paired bootstrap of the per-example {metric} difference ({samples} resamples, 95% interval); "
        f"margin {margin:g}",
        margin=margin,
        alternatives=results,
        skipped=skipped or [],
    )


def _best_not_finetuned(rungs: list[CandidateResult], metric: str) -> CandidateResult | None:
    others = [c for c in rungs if c.name not in FINE_TUNED]
    return max(others, key=lambda c: c.metrics[metric].value) if others else None


def _rung(
    c: CandidateResult,
    best: CandidateResult,
    metric: str,
    margin: float,
    samples: int,
    seed: int,
    table: PriceTable,
    base: CandidateResult | None,
) -> RungResult:
    pb = paired_bootstrap(
        [e.scores[metric] for e in c.examples], [e.scores[metric] for e in best.examples], samples, seed
    )
    m = c.metrics[metric]
    worse = pb["high"] < 0
    # payback only means something for a fine-tune that is not worse than the best: cheaper queries, same quality
    payback = S.break_even(c, base, table) if c.name in FINE_TUNED and base is not None and not worse else None
    return RungResult(
        name=c.name,
        approach=APPROACH.get(c.name, c.name.upper()),
        value=m.value,
        low=m.low,
        high=m.high,
        diff_vs_best=pb["diff"],
        diff_low=pb["low"],
        diff_high=pb["high"],
        p_value=pb["p_value"],
        significantly_worse=worse,
        within_margin=pb["diff"] >= -margin - 1e-12,
        cost_per_1k=c.cost.cost_per_1k,
        latency_p50_s=c.cost.latency_p50_s,
        prompt_tokens_mean=c.cost.prompt_tokens_mean,
        payback_queries=payback,
    )


def explain(chosen: RungResult, results: list[RungResult], best: str, metric: str, margin: float) -> str:
    """Why the chosen rung: its standing against the best, what the cheaper rungs lacked, how fine-tuning did."""
    text = f"{chosen.name} ({metric} {chosen.value:.3f} [{chosen.low:.3f}, {chosen.high:.3f}])"
    if chosen.name == best:
        text += " is the best rung"
    else:
        text += (
            f" is the cheapest rung not significantly worse than the best, {best} (difference "
            f"{chosen.diff_vs_best:+.3f}, 95% CI [{chosen.diff_low:+.3f}, {chosen.diff_high:+.3f}], within the "
            f"{margin:g} margin)"
        )
    cheaper = results[: results.index(chosen)]
    if cheaper:
        text += "; cheaper rungs fall short: " + ", ".join(
            f"{r.name} {r.diff_vs_best:+.3f}" + (" (significant)" if r.significantly_worse else " (beyond the margin)")
            for r in cheaper
        )
    text += "."
    return text + _finetune_note(chosen, results)


def _finetune_note(chosen: RungResult, results: list[RungResult]) -> str:
    tuned = [r for r in results if r.name in FINE_TUNED and r.name != chosen.name]
    if chosen.name in FINE_TUNED:
        if chosen.payback_queries is not None:
            return f" Fine-tuning pays back its training cost after {chosen.payback_queries:,.0f} queries."
        return " Fine-tuning does not pay back on cost alone (it is not cheaper per query); it wins on quality."
    if not tuned:
        return ""
    ft = tuned[0]
    gap = chosen.diff_vs_best - ft.diff_vs_best  # chosen minus fine-tune, both against the same best
    return (
        f" The fine-tune was measured too: {ft.value:.3f} [{ft.low:.3f}, {ft.high:.3f}], {gap:.3f} behind "
        f"{chosen.name}" + (" (significantly worse than the best)." if ft.significantly_worse else ".")
    )
