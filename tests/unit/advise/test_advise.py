"""The decision framework reproduces the guides' scenarios; costs reproduce the worked example."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tunesmith.advise.costs import RoiInput, Workload, estimate_roi, parse_workload
from tunesmith.advise.decide import recommend
from tunesmith.advise.profile import TaskProfile
from tunesmith.cli import app
from tunesmith.core.errors import ConfigError
from tunesmith.core.pricing import load_price_table


def test_few_examples_means_few_shot():
    advice = recommend(TaskProfile(n_examples=40, strict_output_format=True))
    assert advice.approach == "FEW-SHOT"
    assert any("only 40 examples" in r for r in advice.reasons)


def test_changing_knowledge_means_rag():
    advice = recommend(TaskProfile(changing_knowledge=True, n_examples=5000))
    assert advice.approach == "RAG"
    assert "fine-tuning teaches behaviour, not facts" in advice.reasons[0]


def test_high_volume_long_prompt_means_fine_tune_a_small_model():
    advice = recommend(TaskProfile(n_examples=2000, queries_per_day=100_000, prompt_tokens=2000))
    assert (advice.approach, advice.method) == ("FINE-TUNE", "SFT")
    assert any("high volume" in r for r in advice.reasons)


def test_expensive_strong_model_means_distillation():
    advice = recommend(TaskProfile(n_examples=500, strong_model_too_expensive=True))
    assert advice.method == "SFT (distillation)"
    assert any("distill" in s for s in advice.try_first)


def test_preference_data_means_dpo():
    advice = recommend(TaskProfile(n_examples=1000, consistent_style=True, has_preference_data=True))
    assert (advice.approach, advice.method) == ("FINE-TUNE", "DPO")


def test_simple_describable_task_means_prompt_and_strict_format_adds_structured_output():
    assert recommend(TaskProfile()).approach == "PROMPT"
    assert recommend(TaskProfile(strict_output_format=True, n_examples=0)).approach == "STRUCTURED OUTPUT + PROMPT"


def test_fine_tune_with_changing_knowledge_also_recommends_rag():
    advice = recommend(TaskProfile(n_examples=5000, domain_terminology=True, changing_knowledge=True))
    assert advice.approach == "FINE-TUNE" and advice.also == ["RAG"]


def test_worked_example_daily_costs_from_the_shipped_price_table():
    table = load_price_table()
    roi = estimate_roi(RoiInput(), table)
    # gpt-4o: 2000 x $2.50/M + 500 x $10/M = $0.010/query -> $1,000/day at 100k/day
    assert roi.large_daily == pytest.approx(1000.0)
    # ft:gpt-4o-mini: 500 x $0.30/M + 400 x $1.20/M = $0.00063/query -> $63/day
    assert roi.small_daily == pytest.approx(63.0)
    assert roi.daily_savings == pytest.approx(937.0)
    # training: 3M tokens x $3/M (gpt-4o-mini) = $9, recovered in 9 / 937 days
    assert roi.training_cost == pytest.approx(9.0)
    assert roi.break_even_days == pytest.approx(9 / 937)


def test_no_saving_means_no_break_even():
    inp = RoiInput(
        large=Workload(model="gpt-4o-mini", prompt_tokens=100, completion_tokens=10),
        small=Workload(model="ft:gpt-4.1-mini", prompt_tokens=100, completion_tokens=10),
    )
    roi = estimate_roi(inp)
    assert roi.break_even_days is None and roi.daily_savings < 0


def test_cost_errors_are_clear():
    with pytest.raises(ConfigError, match="no price for model 'llama-99b'"):
        estimate_roi(RoiInput(large=Workload(model="llama-99b", prompt_tokens=1, completion_tokens=1)))
    with pytest.raises(ConfigError, match="expected MODEL:PROMPT_TOKENS:COMPLETION_TOKENS"):
        parse_workload("gpt-4o:lots", "--large")
    assert parse_workload("ft:gpt-4o-mini:500:400").model == "ft:gpt-4o-mini"


def test_costs_and_advise_cli(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["costs"])
    assert res.exit_code == 0, res.output
    assert "1,000.00" in res.output and "63.00" in res.output and "Saves 937.00 USD/day" in res.output
    profile = tmp_path / "p.yaml"
    profile.write_text("n_examples: 3000\nstrict_output_format: true\n")
    res = runner.invoke(app, ["advise", str(profile)])
    assert res.exit_code == 0, res.output
    assert "FINE-TUNE (SFT)" in res.output and "try first" in res.output
    res = runner.invoke(app, ["advise", "--set", "n_examples=10", "--set", "domain_terminology=true"])
    assert "FEW-SHOT" in res.output


def test_advise_interactive(tmp_path):
    answers = "\n".join(["y", "y", "n", "n", "n", "2000", "n", "100000", "0", "2000", "n"]) + "\n"
    res = CliRunner().invoke(app, ["advise", "--interactive"], input=answers)
    assert res.exit_code == 0, res.output
    assert "recommendation: FINE-TUNE" in res.output


def test_costs_from_report_uses_measured_tokens(tmp_path):
    report = {
        "created": "x",
        "test_file": "t",
        "n_examples": 1,
        "task_type": "label",
        "primary_metric": "accuracy",
        "metrics": ["accuracy"],
        "references": ["a"],
        "questions": ["q"],
        "config": {},
        "candidates": [_cand("few-shot", "few-shot", 900, None), _cand("tuned", "run", 60, 10_000_000)],
        "comparisons": [
            {
                "finetuned": "tuned",
                "baseline": "few-shot",
                "metric": "accuracy",
                "diff": 0.1,
                "low": 0,
                "high": 0.2,
                "p_value": 0.1,
                "mcnemar": {},
                "pass_to_fail": [],
                "fail_to_pass": [],
            }
        ],
    }
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    res = CliRunner().invoke(app, ["costs", "--from-report", str(path), "--queries-per-day", "10000"])
    assert res.exit_code == 0, res.output
    assert "900/8" in res.output and "60/8" in res.output
    # training: 10M tokens x $0.50/M (smollm2 local entry) = $5
    assert "training costs 5.00 USD" in res.output


def _cand(name, kind, prompt_tokens, trained):
    return {
        "name": name,
        "kind": kind,
        "model": "smollm2-135m-instruct",
        "spec": {},
        "metrics": {},
        "cost": {
            "prompt_tokens_mean": prompt_tokens,
            "completion_tokens_mean": 8,
            "latency_p50_s": 0.1,
            "latency_p95_s": 0.2,
            "price_model": "smollm2-135m-instruct",
            "cost_per_1k": 0.01,
        },
        "examples": [],
        "trained_tokens": trained,
    }
