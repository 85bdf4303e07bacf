"""Turn generated answers into headline metrics with intervals, cost/speed, comparisons and the verdict."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tunesmith.core.errors import ConfigError
from tunesmith.core.pricing import PriceTable
from tunesmith.evaluate import metrics as M
from tunesmith.evaluate.schema import CandidateResult, Comparison, CostSpeed, ExampleResult, MetricValue
from tunesmith.evaluate.stats import (
    bootstrap_ci,
    bootstrap_stat,
    flips,
    mcnemar_exact,
    paired_bootstrap,
    percentile,
)


def example_results(
    rows: list[dict[str, Any]], refs: list[str], metrics: list[str], extra: dict[str, list[float]]
) -> list[ExampleResult]:
    """Per-example scores: the string metrics plus precomputed ones (``semantic_similarity``, ``nll``)."""
    out = []
    for i, (row, ref) in enumerate(zip(rows, refs, strict=True)):
        scores = M.score_example(row["output"], ref, metrics)
        scores.update({name: vals[i] for name, vals in extra.items()})
        out.append(
            ExampleResult(
                index=i,
                output=row["output"],
                scores=scores,
                prompt_tokens=int(row["prompt_tokens"]),
                completion_tokens=int(row["completion_tokens"]),
                latency_s=float(row["latency_s"]),
            )
        )
    return out


def headline_metrics(
    examples: list[ExampleResult], refs: list[str], metrics: list[str], samples: int, seed: int
) -> dict[str, MetricValue]:
    """Every requested metric with a seeded 95% bootstrap interval."""
    out: dict[str, MetricValue] = {}
    for name in metrics:
        if name == "macro_f1":
            preds = np.array([M.extract_label(e.output) for e in examples])
            gold = np.array([M.extract_label(r) for r in refs])
            value, lo, hi = bootstrap_stat(
                lambda idx, p=preds, g=gold: M.macro_f1(list(p[idx]), list(g[idx])), len(refs), samples, seed
            )
            out[name] = MetricValue(value=value, low=lo, high=hi)
        elif name == "perplexity" and all("nll" in e.scores for e in examples):
            mean, lo, hi = bootstrap_ci([e.scores["nll"] for e in examples], samples, seed)
            out[name] = MetricValue(value=math.exp(mean), low=math.exp(lo), high=math.exp(hi))
        elif examples and name in examples[0].scores:
            mean, lo, hi = bootstrap_ci([e.scores[name] for e in examples], samples, seed)
            out[name] = MetricValue(value=mean, low=lo, high=hi)
    return out


def confusion(examples: list[ExampleResult], refs: list[str]) -> dict[str, Any]:
    """Confusion matrix of extracted labels."""
    return M.confusion_matrix([M.extract_label(e.output) for e in examples], [M.extract_label(r) for r in refs])


def cost_speed(examples: list[ExampleResult], table: PriceTable, price_model: str | None) -> CostSpeed:
    """Mean tokens, latency percentiles and USD per 1,000 queries (None when the model has no price)."""
    p = float(np.mean([e.prompt_tokens for e in examples])) if examples else 0.0
    c = float(np.mean([e.completion_tokens for e in examples])) if examples else 0.0
    lat = [e.latency_s for e in examples]
    cost, note = None, ""
    if price_model:
        try:
            cost = 1000 * table.query_cost(price_model, p, c)
        except ConfigError as exc:
            note = exc.message
    return CostSpeed(
        prompt_tokens_mean=p,
        completion_tokens_mean=c,
        latency_p50_s=percentile(lat, 50),
        latency_p95_s=percentile(lat, 95),
        price_model=price_model,
        cost_per_1k=cost,
        note=note,
    )


def worst_examples(examples: list[ExampleResult], primary: str, k: int) -> list[int]:
    """Indices of the ``k`` lowest-scoring examples on the primary metric (ties: shorter overlap first)."""
    ranked = sorted(examples, key=lambda e: (e.scores.get(primary, 0.0), e.scores.get("token_f1", 0.0), e.index))
    return [e.index for e in ranked[:k]]


def compare(
    ft: CandidateResult, baselines: list[CandidateResult], primary: str, samples: int, seed: int
) -> Comparison | None:
    """Paired comparison of a fine-tuned candidate with the best baseline on the primary metric."""
    usable = [b for b in baselines if primary in b.metrics]
    if primary not in ft.metrics or not usable:
        return None
    best = max(usable, key=lambda b: b.metrics[primary].value)
    a = [e.scores[primary] for e in ft.examples]
    b = [e.scores[primary] for e in best.examples]
    pb = paired_bootstrap(a, b, samples, seed)
    a_pass, b_pass = [M.is_pass(primary, x) for x in a], [M.is_pass(primary, x) for x in b]
    f = flips(b_pass, a_pass)
    return Comparison(
        finetuned=ft.name,
        baseline=best.name,
        metric=primary,
        diff=pb["diff"],
        low=pb["low"],
        high=pb["high"],
        p_value=pb["p_value"],
        mcnemar=mcnemar_exact(a_pass, b_pass),
        pass_to_fail=f["pass_to_fail"],
        fail_to_pass=f["fail_to_pass"],
    )


def break_even(ft: CandidateResult, base: CandidateResult, table: PriceTable) -> float | None:
    """Queries until cheaper queries pay back the fine-tune's training cost (None: never or unknown)."""
    if ft.trained_tokens is None or ft.cost.cost_per_1k is None or base.cost.cost_per_1k is None:
        return None
    saving = (base.cost.cost_per_1k - ft.cost.cost_per_1k) / 1000
    try:
        training = table.training_cost(ft.cost.price_model or ft.model, ft.trained_tokens)
    except ConfigError:
        return None
    return training / saving if saving > 0 else None


def verdict(cands: list[CandidateResult], comp: Comparison | None, primary: str, queries: float | None) -> str:
    """The one-paragraph summary at the top of the report."""
    if comp is None:
        best = max(cands, key=lambda c: c.metrics[primary].value if primary in c.metrics else -1)
        m = best.metrics.get(primary)
        return (
            f"No fine-tuned run to compare. Best candidate: {best.name} with {primary} "
            f"{m.value:.3f} ± {m.half_width:.3f}."
            if m
            else "No candidate produced the primary metric."
        )
    ft, base = (
        next(c for c in cands if c.name == comp.finetuned),
        next(c for c in cands if c.name == comp.baseline),
    )
    mf, mb = ft.metrics[primary], base.metrics[primary]
    subject = "The fine-tuned model" if ft.name in ("fine-tuned", "fine-tune") else f"Fine-tuned {ft.name}"
    text = (
        f"{subject} reaches {mf.value:.3f} ± {mf.half_width:.3f} {primary} vs {mb.value:.3f} "
        f"± {mb.half_width:.3f} for {base.name} (difference {comp.diff:+.3f}, 95% CI [{comp.low:+.3f}, "
        f"{comp.high:+.3f}], paired bootstrap p={comp.p_value:.3f}; {len(comp.fail_to_pass)} examples fixed, "
        f"{len(comp.pass_to_fail)} broken)"
    )
    if ft.cost.cost_per_1k is not None and base.cost.cost_per_1k:
        text += f" at {100 * ft.cost.cost_per_1k / base.cost.cost_per_1k:.0f}% of its per-query cost"
    else:
        text += (
            f"; it uses {ft.cost.prompt_tokens_mean:.0f} prompt tokens per query vs {base.cost.prompt_tokens_mean:.0f}"
        )
    if comp.high < 0:  # cheaper queries do not pay for a model that is worse
        text += "; no break-even worth stating (it is significantly worse)"
    elif queries is not None:
        text += f"; break-even after {queries:,.0f} queries"
    elif ft.trained_tokens is None:
        text += "; break-even unknown (the run has no trained_tokens in run.json)"
    else:
        text += "; no break-even (the fine-tuned model is not cheaper per query)"
    significant = comp.low > 0 or comp.high < 0
    return text + (
        ". The difference is statistically significant."
        if significant
        else ". The difference is not statistically significant at this test-set size."
    )
