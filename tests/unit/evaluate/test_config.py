"""Candidate syntax, EvalConfig validation, and every YAML shipped in configs/eval/."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tunesmith.advise.profile import TaskProfile
from tunesmith.core.config import load_config
from tunesmith.core.errors import ConfigError
from tunesmith.evaluate.config import EvalConfig, parse_candidate
from tunesmith.evaluate.regression import RegressionCase, check_case, load_suite

CONFIGS = Path(__file__).parents[3] / "configs" / "eval"


def test_parse_candidate_forms():
    assert parse_candidate("zero-shot").kind == "zero-shot"
    few = parse_candidate("few-shot:k=6,selection=nearest")
    assert (few.k, few.selection, few.label) == (6, "nearest", "few-shot-k6-nearest")
    run = parse_candidate("run:runs/x,name=tuned")
    assert run.path == Path("runs/x") and run.label == "tuned" and run.is_finetuned
    ep = parse_candidate("endpoint:model=gpt-4o-mini,base_url=http://h/v1,api_key_env=MY_KEY")
    assert (ep.model, ep.base_url, ep.api_key_env) == ("gpt-4o-mini", "http://h/v1", "MY_KEY")


@pytest.mark.parametrize(
    "text,match",
    [
        ("fewshot", "unknown kind 'fewshot'"),
        ("few-shot:k=6,oops", "'oops' is not key=value"),
        ("few-shot:k=0", "k: Input should be greater than or equal to 1"),
        ("endpoint:model=x", "needs `base_url`"),
        ("run:runs/x,colour=red", "colour: unknown key"),
    ],
)
def test_parse_candidate_errors(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_candidate(text)


def test_eval_config_reports_every_problem(tmp_path):
    path = tmp_path / "eval.yaml"
    path.write_text(
        "test_file: t.jsonl\nmetrics: [accuracy, bleu]\nmax_new_token: 5\ncandidates:\n  - kind: few-shot\n"
    )
    with pytest.raises(ConfigError, match="invalid setting") as exc:
        load_config(EvalConfig, path)
    assert "max_new_token: unknown key" in exc.value.message
    assert "metrics: Value error, unknown metric(s) ['bleu']" in exc.value.message


def test_duplicate_candidate_names_are_rejected():
    with pytest.raises(ConfigError, match="candidate names must be unique"):
        load_config(EvalConfig, None, ["test_file=t.jsonl", "candidates=[{kind: zero-shot}, {kind: zero-shot}]"])


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_validate(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith("#"), "each config starts with a comment giving its command"
    if path.name == "regression.yaml":
        assert load_suite(path).cases
    elif path.name.startswith("profile"):
        TaskProfile.model_validate(yaml.safe_load(path.read_text()))
    else:
        cfg = load_config(EvalConfig, path)
        assert cfg.candidates


def test_regression_case_checks():
    case = RegressionCase(prompt="p", contains=["Paris"], not_contains=["{"], regex=r"\bcapital\b")
    assert check_case(case, "The capital is paris.") == []
    assert check_case(case, "{Lyon}") == ["missing 'Paris'", "contains '{'", r"does not match /\bcapital\b/"]


def test_regression_suite_errors(tmp_path):
    bad = tmp_path / "suite.yaml"
    bad.write_text("cases:\n  - prompt: hi\n    regex: '('\n  - contains: [x]\n")
    with pytest.raises(ConfigError, match="invalid regression suite") as exc:
        load_suite(bad)
    assert "cases.0.regex" in exc.value.message and "cases.1.prompt" in exc.value.message
