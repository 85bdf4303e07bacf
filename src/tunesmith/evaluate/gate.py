"""The CI gate: does the fine-tuned model beat the best baseline without regressing? Exit 0 or 1."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tunesmith.core.errors import EvalError
from tunesmith.evaluate.metrics import LOWER_IS_BETTER, NO_DIRECTION
from tunesmith.evaluate.schema import CandidateResult, load_report


@dataclass
class GateResult:
    """The gate's decision and every reason behind it."""

    passed: bool
    reasons: list[str]
    finetuned: str | None = None
    baseline: str | None = None
    gain: float | None = None
    checks: list[dict] = field(default_factory=list)


def check_gate(
    report_path: str | Path, metric: str = "accuracy", min_gain: float = 0.0, max_regression: float = 0.02
) -> GateResult:
    """Gate a report: the fine-tuned candidate must beat the best baseline and not regress.

    It passes when the gain on ``metric`` is at least ``min_gain`` and the regression-suite pass rate and
    every other higher-is-better metric drop by at most ``max_regression``.

    Args:
        report_path: ``report.json`` (or its directory).
        metric: the metric the gain is measured on.
        min_gain: required ``finetuned - best baseline`` (absolute).
        max_regression: the largest allowed drop elsewhere (absolute).

    Raises:
        EvalError: unreadable report, or ``metric`` not in it.
    """
    report = load_report(report_path)
    fts = [c for c in report.candidates if c.kind == "run"]
    bases = [c for c in report.candidates if c.kind != "run"]
    if not fts or not bases:
        return GateResult(False, ["the report needs a fine-tuned `run` candidate and at least one baseline"])
    if not any(metric in c.metrics for c in report.candidates):
        known = sorted({m for c in report.candidates for m in c.metrics})
        raise EvalError(
            f"{report_path}: metric {metric!r} is not in the report",
            f"pass --metric with one of: {', '.join(known)}",
        )
    ft, base = best_candidate(fts, metric), best_candidate(bases, metric)
    if metric not in ft.metrics or metric not in base.metrics:
        return GateResult(False, [f"the fine-tuned run and at least one baseline need {metric!r} in the report"])
    gain = ft.metrics[metric].value - base.metrics[metric].value
    sign = -1 if metric in LOWER_IS_BETTER else 1
    reasons, checks = [], []
    ok = sign * gain >= min_gain
    reasons.append(
        f"{'PASS' if ok else 'FAIL'} {metric}: {ft.name} {ft.metrics[metric].value:.4f} vs best baseline "
        f"{base.name} {base.metrics[metric].value:.4f} (gain {gain:+.4f}, required {min_gain:+.4f})"
    )
    checks.append({"check": metric, "passed": ok, "gain": gain})
    for line, passed in regression_checks(ft, base, metric, max_regression):
        reasons.append(line)
        checks.append({"check": line, "passed": passed})
    return GateResult(all(c["passed"] for c in checks), reasons, ft.name, base.name, gain, checks)


def best_candidate(candidates: list[CandidateResult], metric: str) -> CandidateResult:
    """The candidate with the best ``metric`` value: the lowest for NLL / perplexity, else the highest."""
    sign = -1 if metric in LOWER_IS_BETTER else 1
    return max(candidates, key=lambda c: sign * c.metrics[metric].value if metric in c.metrics else float("-inf"))


def regression_checks(
    ft: CandidateResult, base: CandidateResult, metric: str, max_regression: float
) -> list[tuple[str, bool]]:
    """Drops of the regression-suite pass rate and of the other metrics, each against ``max_regression``."""
    out = []
    if ft.regression is not None and base.regression is not None:
        drop = base.regression.pass_rate - ft.regression.pass_rate
        ok = drop <= max_regression
        out.append(
            (
                f"{'PASS' if ok else 'FAIL'} regression suite: pass rate {ft.regression.pass_rate:.2%} vs "
                f"{base.regression.pass_rate:.2%} (drop {drop:+.2%}, allowed {max_regression:.2%})",
                ok,
            )
        )
    for name, value in ft.metrics.items():
        if name == metric or name in NO_DIRECTION or name not in base.metrics:
            continue
        drop = base.metrics[name].value - value.value
        if name in LOWER_IS_BETTER:
            drop = -drop / max(abs(base.metrics[name].value), 1e-9)  # relative for NLL / perplexity
        ok = drop <= max_regression
        out.append(
            (
                f"{'PASS' if ok else 'FAIL'} {name}: {value.value:.4f} vs {base.metrics[name].value:.4f} "
                f"(drop {drop:+.4f}, allowed {max_regression:.4f})",
                ok,
            )
        )
    return out
