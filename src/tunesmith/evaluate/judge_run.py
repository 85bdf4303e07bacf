"""Run the LLM judge over an evaluation's answers: pointwise scores per candidate, pairwise per comparison."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tunesmith.core.errors import EndpointError
from tunesmith.evaluate.config import EvalConfig
from tunesmith.evaluate.items import TestItem
from tunesmith.evaluate.judge_verdicts import Judge, Verdict
from tunesmith.evaluate.schema import CandidateResult, Comparison, MetricValue
from tunesmith.evaluate.stats import bootstrap_ci


def run_judge(
    cfg: EvalConfig, items: list[TestItem], results: list[CandidateResult], comparisons: list[Comparison]
) -> None:
    """Add ``judge_score`` (0-10, with interval) per candidate and A/B counts per comparison, in place.

    The judge's verdict and reasoning are stored on each example (``example.judge``).
    """
    assert cfg.judge is not None
    judge = Judge(cfg.judge)
    n = min(len(items), cfg.judge.max_examples or len(items))
    failures: list[str] = []
    pool = ThreadPoolExecutor(max_workers=cfg.concurrency)  # judge calls in flight at once, results in order
    if cfg.judge.mode in ("pointwise", "both"):
        for res in results:
            scores = []
            pairs = list(zip(items[:n], res.examples[:n], strict=True))
            calls = [(judge.pointwise, item.question, ex.output, item.reference) for item, ex in pairs]
            for (_, ex), v in zip(pairs, pool.map(lambda c: _judged(c[0], failures, *c[1:]), calls), strict=True):
                ex.judge = {"pointwise": v.to_dict()}
                if v.score is not None:
                    scores.append(v.score)
            if scores:
                mean, lo, hi = bootstrap_ci(scores, cfg.bootstrap_samples, cfg.seed)
                res.metrics["judge_score"] = MetricValue(value=mean, low=lo, high=hi)
    if cfg.judge.mode in ("pairwise", "both"):
        by_name = {r.name: r for r in results}
        for comp in comparisons:
            ft, base = by_name[comp.finetuned], by_name[comp.baseline]
            counts = {"finetuned": 0, "baseline": 0, "tie": 0, "unknown": 0}
            triples = list(zip(items[:n], ft.examples[:n], base.examples[:n], strict=True))
            calls = [(judge.pairwise, item.question, a.output, b.output, item.reference) for item, a, b in triples]
            verdicts = pool.map(lambda c: _judged(c[0], failures, *c[1:]), calls)
            for (_, a, _), v in zip(triples, verdicts, strict=True):
                key = {"A": "finetuned", "B": "baseline"}.get(v.winner or "", v.winner or "unknown")
                counts[key] += 1
                a.judge = {**(a.judge or {}), f"pairwise_vs_{base.name}": v.to_dict()}
            comp.judge_pairwise = counts
    pool.shutdown()
    if failures and len(failures) == n * _calls_per_item(cfg, results, comparisons):
        raise EndpointError(
            f"the judge failed on every example: {failures[-1]}",
            "check the judge's base_url, model and API key (judge.api_key_env)",
        )


def _judged(call: Any, failures: list[str], *args: str) -> Verdict:
    """One judge call; a failure is recorded on the example (and counted) instead of ending the evaluation."""
    try:
        return call(*args)
    except EndpointError as exc:
        failures.append(exc.message)
        return Verdict(reasoning=f"judge call failed: {exc.message}")


def _calls_per_item(cfg: EvalConfig, results: list[CandidateResult], comparisons: list[Comparison]) -> int:
    mode = cfg.judge.mode if cfg.judge else "pointwise"
    return (len(results) if mode in ("pointwise", "both") else 0) + (
        len(comparisons) if mode in ("pairwise", "both") else 0
    )
