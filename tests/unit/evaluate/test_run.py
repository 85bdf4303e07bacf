"""run_evaluation end to end on the tiny random Llama: zero-shot, few-shot and an adapter run; cache/resume;
the gate and the CLI on the report it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import ASSETS
from tunesmith.cli import app
from tunesmith.core.errors import ConfigError, EvalError
from tunesmith.evaluate.config import EvalConfig, parse_candidate
from tunesmith.evaluate.gate import check_gate
from tunesmith.evaluate.generate import GenerationCache, LocalGenerator, generate_cached
from tunesmith.evaluate.run import run_evaluation

TEST = ASSETS / "eval" / "sentiment-test.jsonl"
TRAIN = ASSETS / "eval" / "sentiment-train.jsonl"
SUITE = Path(__file__).parents[3] / "configs" / "eval" / "regression.yaml"


@pytest.fixture(scope="module")
def tiny_run(tiny_model_dir, tmp_path_factory) -> Path:
    """A run directory like `tunesmith train` writes: a random LoRA adapter on the tiny model + metrics."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run = tmp_path_factory.mktemp("run")
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    peft.save_pretrained(run / "adapter")
    (run / "config.yaml").write_text(f"model: {tiny_model_dir}\n")
    (run / "run.json").write_text(json.dumps({"model": str(tiny_model_dir), "trained_tokens": 40000}))
    rows = [{"step": s, "train_loss": 3 - 0.2 * s, "valid_loss": 3.1 - 0.15 * s} for s in range(1, 6)]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return run


def _config(tiny_model_dir: Path, run: Path, out: Path, **extra) -> EvalConfig:
    price = "smollm2-135m-instruct"
    cands = [
        parse_candidate(f"zero-shot:model={tiny_model_dir},price_model={price}"),
        parse_candidate(f"few-shot:k=2,model={tiny_model_dir},price_model={price}"),
        parse_candidate(f"run:{run},name=tuned,price_model={price}"),
    ]
    return EvalConfig(
        test_file=TEST,
        train_file=TRAIN,
        output_dir=out,
        candidates=cands,
        limit=6,
        max_new_tokens=4,
        batch_size=4,
        bootstrap_samples=200,
        regression_suite=SUITE,
        **extra,
    )


@pytest.fixture(scope="module")
def report_dir(tiny_model_dir, tiny_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("eval")
    run_evaluation(_config(tiny_model_dir, tiny_run, out))
    return out


def test_report_has_every_candidate_metric_interval_and_comparison(report_dir):
    report = json.loads((report_dir / "report.json").read_text())
    assert report["task_type"] == "label" and report["primary_metric"] == "accuracy"
    names = [c["name"] for c in report["candidates"]]
    assert names == ["zero-shot", "few-shot-k2", "tuned"]
    for cand in report["candidates"]:
        assert len(cand["examples"]) == 6
        for m in ("accuracy", "macro_f1", "json_valid"):
            v = cand["metrics"][m]
            assert v["low"] <= v["value"] <= v["high"]
        assert cand["cost"]["prompt_tokens_mean"] > 0 and cand["cost"]["cost_per_1k"] > 0
        assert cand["regression"]["cases"] and 0 <= cand["regression"]["pass_rate"] <= 1
        assert len(cand["worst"]) == 5
    by = {c["name"]: c for c in report["candidates"]}
    # the few-shot prompt carries two extra conversations: more prompt tokens, higher cost per query
    assert by["few-shot-k2"]["cost"]["prompt_tokens_mean"] > by["zero-shot"]["cost"]["prompt_tokens_mean"]
    assert by["tuned"]["loss_curve"][0]["train_loss"] == pytest.approx(2.8)
    comp = report["comparisons"][0]
    assert comp["finetuned"] == "tuned" and comp["baseline"] in ("zero-shot", "few-shot-k2")
    assert "Fine-tuned tuned reaches" in report["verdict"]
    html = (report_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 5  # metric bars, quality vs cost, loss curve, confusions
    assert "<script" not in html and "http://" not in html and "https://" not in html


def test_rerun_is_served_from_the_cache(report_dir, tiny_model_dir, tiny_run):
    caches = sorted((report_dir / "cache").glob("*.jsonl"))
    before = {p.name: p.read_text() for p in caches}
    run_evaluation(_config(tiny_model_dir, tiny_run, report_dir))
    assert {p.name: p.read_text() for p in sorted((report_dir / "cache").glob("*.jsonl"))} == before


def test_interrupted_generation_resumes_with_only_the_rest(tiny_model_dir, tmp_path):
    from tunesmith.models.load import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir), device="cpu")
    gen = LocalGenerator(model, tok, max_new_tokens=3)
    prompts = [[{"role": "user", "content": f"question {i}"}] for i in range(7)]
    seen: list[int] = []

    def interrupted(batch):
        if seen:
            raise KeyboardInterrupt
        seen.append(len(batch))
        return gen(batch)

    cache = GenerationCache(tmp_path / "c.jsonl")
    with pytest.raises(KeyboardInterrupt):
        generate_cached(interrupted, prompts, cache, batch_size=3)
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 3
    asked: list[str] = []

    def counting(batch):
        asked.extend(m[0]["content"] for m in batch)
        return gen(batch)

    rows = generate_cached(counting, prompts, GenerationCache(tmp_path / "c.jsonl"), batch_size=3)
    assert asked == [f"question {i}" for i in range(3, 7)]
    assert [r["index"] for r in rows] == list(range(7))
    assert len((tmp_path / "c.jsonl").read_text().splitlines()) == 7


def test_batched_greedy_matches_one_by_one(tiny_model_dir):
    from tunesmith.models.load import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir), device="cpu")
    gen = LocalGenerator(model, tok, max_new_tokens=5)
    prompts = [
        [{"role": "user", "content": "hi"}],
        [{"role": "user", "content": "a much longer question here"}],
    ]
    batched = [r["output"] for r in gen(prompts)]
    single = [gen([p])[0]["output"] for p in prompts]
    assert batched == single


def test_gate_passes_and_fails_with_exit_codes(report_dir):
    runner = CliRunner()
    ok = runner.invoke(app, ["gate", str(report_dir / "report.json"), "--min-gain", "-1", "--max-regression", "1"])
    assert ok.exit_code == 0, ok.output
    assert "gate passed" in ok.output
    bad = runner.invoke(app, ["gate", str(report_dir / "report.json"), "--min-gain", "0.5"])
    assert bad.exit_code == 1
    assert "FAIL accuracy" in bad.output and "gate failed" in bad.output


def test_gate_fails_on_regression_suite_drop(report_dir, tmp_path):
    report = json.loads((report_dir / "report.json").read_text())
    for cand in report["candidates"]:
        cand["regression"]["pass_rate"] = 0.2 if cand["kind"] == "run" else 1.0
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    result = check_gate(path, min_gain=-1.0, max_regression=0.02)
    assert not result.passed
    assert any(r.startswith("FAIL regression suite") for r in result.reasons)


def test_gate_errors_are_clear(report_dir, tmp_path):
    with pytest.raises(EvalError, match="metric 'bleu' is not in the report"):
        check_gate(report_dir / "report.json", metric="bleu")
    with pytest.raises(EvalError, match="no such report"):
        check_gate(tmp_path / "missing.json")


def test_bad_candidates_are_all_reported_before_loading(tmp_path, tiny_model_dir):
    cfg = EvalConfig(
        test_file=TEST,
        output_dir=tmp_path,
        candidates=[
            parse_candidate(f"run:{tmp_path / 'nope'}"),
            parse_candidate("endpoint:model=m,base_url=http://127.0.0.1:9/v1,api_key_env=TUNESMITH_TEST_NO_KEY"),
        ],
    )
    with pytest.raises(ConfigError, match=r"2 candidate problem\(s\)") as exc:
        run_evaluation(cfg)
    assert "does not exist" in exc.value.message and "TUNESMITH_TEST_NO_KEY" in exc.value.message


def test_compare_cli_writes_reports(tiny_model_dir, tmp_path):
    out = tmp_path / "cmp"
    result = CliRunner().invoke(
        app,
        [
            "compare",
            "--test",
            str(TEST),
            "--out",
            str(out),
            "-c",
            f"zero-shot:model={tiny_model_dir}",
            "-c",
            f"system:prompt=Answer with one word.,model={tiny_model_dir}",
            "--set",
            "limit=3",
            "--set",
            "max_new_tokens=3",
            "--set",
            "bootstrap_samples=100",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "verdict:" in result.output
    report = json.loads((out / "report.json").read_text())
    assert [c["name"] for c in report["candidates"]] == ["zero-shot", "system"]
    assert (out / "report.html").exists()
