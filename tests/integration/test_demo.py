"""The main job's entry point on the real bundled model, shrunk: every step runs and re-running reuses them."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from rich.console import Console

from tests.conftest import REPO
from tunesmith.demo import DemoConfig, run_demo
from tunesmith.serve.settings import ServeSettings
from tunesmith.store import repo
from tunesmith.store.db import Database

pytestmark = pytest.mark.integration


def test_demo_runs_every_step_and_reuses_them(tmp_path):
    # 16 validation examples instead of 100: validation forward passes were most of this test's time on CPU.
    val = tmp_path / "val-16.jsonl"
    val.write_text("".join((REPO / "examples" / "sentiment" / "val.jsonl").read_text().splitlines(True)[:16]))
    cfg = DemoConfig(
        output_dir=tmp_path / "demo", example_dir=REPO / "examples" / "sentiment",
        train_config=REPO / "configs" / "train" / "sentiment-lora.yaml",
        train_overrides=["max_steps=3", "eval_steps=2", "save_steps=2", "logging_steps=1", "batch_size=4",
                         f"valid_file={val}"],
        few_shot_k=2, eval_limit=8, domain_shift_limit=4, batch_size=8,
    )
    out = StringIO()
    result = run_demo(cfg, Console(file=out, width=140))
    text = out.getvalue()
    for n in range(1, 6):
        assert f"step {n}/5" in text
    assert "advice: FINE-TUNE" in text and "OK: 0 error(s)" in text
    report = json.loads(result.report.read_text())
    assert {c["name"] for c in report["candidates"]} == {"zero-shot", "few-shot-k2", "fine-tuned"}
    assert result.report_html.exists() and (cfg.output_dir / "eval-tweets" / "report.json").exists()
    run = json.loads((result.run_dir / "run.json").read_text())
    assert run["status"] == "succeeded" and run["steps"] == 3
    db = Database(ServeSettings(data_dir=result.serve_dir).resolved_database_url())
    try:
        assert repo.get_alias(db, "sentiment").target == str(result.run_dir.resolve())
    finally:
        db.close()
    assert json.loads((cfg.output_dir / "demo.json").read_text())["verdict"] == result.verdict

    again = StringIO()
    rerun = run_demo(cfg, Console(file=again, width=140))
    assert "reusing the finished run" in again.getvalue()
    assert rerun.verdict == result.verdict  # answers come from the evaluation cache
