"""`tunesmith decide` on the tiny random Llama (every rung, recipes, report) and the recommendation rule."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ASSETS, REPO, chat, write_jsonl
from tunesmith.core.pricing import load_price_table
from tunesmith.evaluate.recipe import load_recipe
from tunesmith.evaluate.schema import CandidateResult, CostSpeed, EvalReport, ExampleResult, MetricValue
from tunesmith.ladder.config import DecideConfig
from tunesmith.ladder.recommend import recommend
from tunesmith.ladder.run import run_decision

TEST = ASSETS / "eval" / "sentiment-test.jsonl"
TRAIN = ASSETS / "eval" / "sentiment-train.jsonl"


def _cand(name: str, passes: list[int], cost: float) -> CandidateResult:
    mean = sum(passes) / len(passes)
    return CandidateResult(
        name=name,
        kind="run" if name.startswith("fine-tune") else "zero-shot",
        model="smollm2-135m-instruct",
        spec={},
        metrics={"accuracy": MetricValue(value=mean, low=mean - 0.1, high=mean + 0.1)},
        cost=CostSpeed(prompt_tokens_mean=cost, completion_tokens_mean=5, latency_p50_s=0.1, latency_p95_s=0.2),
        examples=[
            ExampleResult(
                index=i, output="", scores={"accuracy": float(p)}, prompt_tokens=1, completion_tokens=1, latency_s=0.1
            )
            for i, p in enumerate(passes)
        ],
    )


def _report(cands: list[CandidateResult]) -> EvalReport:
    n = len(cands[0].examples)
    return EvalReport(
        created="now",
        test_file="t",
        n_examples=n,
        task_type="label",
        primary_metric="accuracy",
        metrics=["accuracy"],
        references=[""] * n,
        questions=[""] * n,
        candidates=cands,
        config={},
    )


def test_the_cheapest_rung_as_good_as_the_best_is_recommended():
    n = 100
    prompt = _cand("prompt", [1] * 20 + [0] * 80, 50)
    few = _cand("few-shot", [1] * 80 + [0] * 20, 400)  # the best
    rag = _cand("rag", [1] * 79 + [0] * 21, 600)  # 0.01 behind: within the margin
    ft = _cand("fine-tune", [1] * 80 + [0] * 20, 50)
    rec = recommend(_report([prompt, few, rag, ft]), load_price_table(), 0.02, 500, 0)
    assert rec.best == "few-shot" and rec.candidate == "few-shot" and rec.approach == "FEW-SHOT"
    by = {r.name: r for r in rec.alternatives}
    assert by["prompt"].significantly_worse and by["prompt"].diff_vs_best == pytest.approx(-0.6)
    assert not by["rag"].significantly_worse and by["rag"].within_margin
    assert "cheaper rungs fall short: prompt -0.600 (significant)" in rec.reason
    assert "paired bootstrap" in rec.test and rec.margin == 0.02
    # a rung 0.05 behind without significance is still not "as good": the margin decides
    near = _cand("prompt", [0] * 10 + [1] * 75 + [0] * 15, 50)  # 10 examples worse, 5 better
    rec = recommend(_report([near, few]), load_price_table(), 0.02, 500, 0)
    assert rec.candidate == "few-shot" and "beyond the margin" in rec.reason
    assert len(rec.alternatives) == 2 and n == len(near.examples)


def test_a_fine_tune_that_loses_is_shown_losing():
    rag = _cand("rag", [1] * 60 + [0] * 40, 600)
    ft = _cand("fine-tune", [1] * 5 + [0] * 95, 50)
    rec = recommend(_report([_cand("prompt", [0] * 100, 50), rag, ft]), load_price_table(), 0.02, 500, 0)
    assert rec.candidate == "rag"
    assert "The fine-tune was measured too: 0.050" in rec.reason and "significantly worse" in rec.reason


@pytest.fixture(scope="module")
def decided(tiny_model_dir, tmp_path_factory) -> tuple[Path, EvalReport]:
    tmp = tmp_path_factory.mktemp("decide")
    docs = write_jsonl(tmp / "docs.jsonl", [{"id": "a", "text": "Reviews of films and devices."}])
    cfg = DecideConfig(
        train_file=TRAIN,
        val_file=TRAIN,
        test_file=TEST,
        docs=docs,
        output_dir=tmp / "out",
        model=str(tiny_model_dir),
        max_steps=2,
        max_new_tokens=8,
        limit=6,
        bootstrap_samples=100,
        train_overrides=["batch_size=8", "eval_steps=1", "logging_steps=1"],
    )
    events: list[str] = []
    report = run_decision(cfg, lambda event, payload: events.append(event))
    assert events.count("report") == 1 and "step" in events
    return tmp / "out", report


def test_decide_measures_every_rung_and_writes_recipes(decided):
    out, report = decided
    rec = report.recommendation
    names = [r.name for r in rec.alternatives]
    assert names == ["prompt", "structured", "few-shot", "rag", "fine-tune", "fine-tune+structured"]
    saved = json.loads((out / "report.json").read_text())
    assert saved["recommendation"]["candidate"] == rec.candidate and saved["recommendation"]["reason"]
    for rung in rec.alternatives:
        recipe = load_recipe(Path(rung.recipe))
        assert recipe.name == rung.name
    assert load_recipe(out / "recipes" / "fine-tune+structured.yaml").json_schema["type"] == "object"
    assert load_recipe(out / "recipes" / "rag.yaml").rag.docs.name == "docs.jsonl"
    html = (out / "report.html").read_text()
    assert "Recommendation:" in html and "the ladder: quality vs cost" in html
    assert (out / "train" / "adapter" / "adapter_config.json").exists()


def test_free_text_answers_skip_the_structured_rungs(tiny_model_dir, tmp_path):
    rows = [chat(f"Tell me about {i}", f"a long free answer about the number {i} and more") for i in range(12)]
    data = write_jsonl(tmp_path / "free.jsonl", rows)
    cfg = DecideConfig(
        train_file=data,
        test_file=data,
        output_dir=tmp_path / "out",
        model=str(tiny_model_dir),
        finetune=False,
        limit=3,
        max_new_tokens=4,
        bootstrap_samples=100,
    )
    report = run_decision(cfg)
    assert [r.name for r in report.recommendation.alternatives] == ["prompt", "few-shot"]
    assert report.recommendation.skipped[0].startswith("structured: the training answers are free text")
    assert "fine-tune: finetune is false" in report.recommendation.skipped


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "decide").glob("*.yaml")), ids=lambda p: p.name)
def test_every_decide_config_loads_and_names_its_command(path: Path):
    from tunesmith.core.config import load_config

    assert path.read_text().splitlines()[0] == f"# tunesmith decide configs/decide/{path.name}"
    cfg = load_config(DecideConfig, path)
    for f in (cfg.train_file, cfg.val_file, cfg.test_file, cfg.docs, cfg.train_config):
        assert f is None or (REPO / f).exists(), f


def test_decide_config_needs_splits_or_one_file():
    with pytest.raises(ValueError, match="give train_file and test_file"):
        DecideConfig(train_file=TRAIN)
    with pytest.raises(ValueError, match="not both"):
        DecideConfig(data_file=TRAIN, train_file=TRAIN, test_file=TEST)
