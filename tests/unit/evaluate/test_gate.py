"""The gate on hand-built reports: the best candidate is chosen in the metric's own direction."""

from __future__ import annotations

import json
from pathlib import Path

from tunesmith.evaluate.gate import check_gate


def _candidate(name: str, kind: str, **metrics: float) -> dict:
    cost = {"prompt_tokens_mean": 1, "completion_tokens_mean": 1, "latency_p50_s": 0, "latency_p95_s": 0}
    return {
        "name": name,
        "kind": kind,
        "model": "m",
        "spec": {},
        "metrics": {k: {"value": v, "low": v, "high": v} for k, v in metrics.items()},
        "cost": cost,
        "examples": [],
    }


def _report(tmp_path: Path, candidates: list[dict]) -> Path:
    report = {
        "created": "now",
        "test_file": "t.jsonl",
        "n_examples": 1,
        "task_type": "text",
        "primary_metric": "rouge_l",
        "metrics": ["rouge_l", "perplexity"],
        "references": [],
        "questions": [],
        "candidates": candidates,
        "config": {},
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    return path


def test_gate_compares_lower_is_better_metrics_against_the_lowest_baseline(tmp_path):
    path = _report(
        tmp_path,
        [
            _candidate("zero-shot", "zero-shot", perplexity=20.0),
            _candidate("few-shot", "few-shot", perplexity=5.0),
            _candidate("tuned-a", "run", perplexity=9.0),
            _candidate("tuned-b", "run", perplexity=4.0),
        ],
    )
    result = check_gate(path, metric="perplexity", min_gain=0.5)
    assert (result.finetuned, result.baseline) == ("tuned-b", "few-shot")
    assert result.gain == -1.0 and result.passed
    # 1.0 lower than the best baseline is not the 16.0 lower than the worst one.
    assert not check_gate(path, metric="perplexity", min_gain=2.0).passed


def test_gate_compares_higher_is_better_metrics_against_the_highest_baseline(tmp_path):
    path = _report(
        tmp_path,
        [
            _candidate("zero-shot", "zero-shot", rouge_l=0.2),
            _candidate("few-shot", "few-shot", rouge_l=0.5),
            _candidate("tuned", "run", rouge_l=0.6),
        ],
    )
    result = check_gate(path, metric="rouge_l", min_gain=0.05)
    assert result.baseline == "few-shot" and result.passed
    assert not check_gate(path, metric="rouge_l", min_gain=0.2).passed
