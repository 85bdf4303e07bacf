"""The main job's entry point on the real bundled model, shrunk: every step runs and re-running reuses them."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from rich.console import Console

from tests.conftest import REPO
from tunesmith.cli.demo import DemoConfig, run_demo
from tunesmith.serve.settings import ServeSettings
from tunesmith.store import repo
from tunesmith.store.db import Database

pytestmark = pytest.mark.integration


def test_demo_runs_every_step_and_reuses_them(tmp_path):
    cfg = DemoConfig(
        output_dir=tmp_path / "demo",
        example_dir=REPO / "examples" / "sentiment",
        knowledge_dir=REPO / "examples" / "countries",
        train_config=REPO / "configs" / "train" / "sentiment-lora.yaml",
        # no validation pass within 3 steps: validation forward passes were most of this test's time on CPU
        train_overrides=["max_steps=3", "eval_steps=1000", "save_steps=2", "logging_steps=1", "batch_size=4"],
        few_shot_k=2,
        eval_limit=8,
        batch_size=8,
    )
    out = StringIO()
    result = run_demo(cfg, Console(file=out, width=160))
    text = out.getvalue()
    for n in range(1, 5):
        assert f"step {n}/4" in text
    assert "advice: FINE-TUNE" in text and "OK: 0 error(s)" in text
    assert "recommendation (sentiment):" in text and "recommendation (knowledge):" in text
    sentiment = json.loads(result.report.read_text())
    rungs = ["prompt", "structured", "few-shot", "fine-tune", "fine-tune+structured"]
    assert [c["name"] for c in sentiment["candidates"]] == rungs
    assert sentiment["recommendation"]["candidate"] in rungs and result.report_html.exists()
    knowledge = json.loads((cfg.output_dir / "knowledge" / "report.json").read_text())
    assert [c["name"] for c in knowledge["candidates"]] == ["prompt", "few-shot", "rag", "fine-tune"]
    assert knowledge["recommendation"]["skipped"][0].startswith("structured: the training answers are free text")
    for task in ("sentiment", "knowledge"):
        run = json.loads((cfg.output_dir / task / "train" / "run.json").read_text())
        assert run["status"] == "succeeded" and run["steps"] == 3
    db = Database(ServeSettings(data_dir=result.serve_dir).resolved_database_url())
    try:
        for alias in ("sentiment", "countries"):
            assert repo.get_alias(db, alias).target.startswith("recipe:")  # every winner deploys as a recipe
    finally:
        db.close()
    saved = json.loads((cfg.output_dir / "demo.json").read_text())
    assert saved["recommendations"] == result.recommendations and set(saved["aliases"]) == {"sentiment", "countries"}

    again = StringIO()
    rerun = run_demo(cfg, Console(file=again, width=160))
    assert again.getvalue().count("reusing the finished fine-tune") == 2
    assert rerun.recommendations == result.recommendations  # answers come from the evaluation cache
