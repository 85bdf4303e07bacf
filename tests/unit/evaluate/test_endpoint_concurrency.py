"""Endpoint candidates and the judge send requests concurrently (bounded by `concurrency`), answers in order."""

from __future__ import annotations

import json

from tests.conftest import chat, write_jsonl
from tests.unit.augment.teacher_server import TeacherServer
from tunesmith.evaluate.config import EvalConfig, JudgeSettings, parse_candidate
from tunesmith.evaluate.run import run_evaluation


def test_endpoint_candidate_and_judge_run_concurrently_with_a_bound(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_TEST_KEY", "k")
    test = write_jsonl(tmp_path / "t.jsonl", [chat(f"question number {i}", f"reference {i}") for i in range(10)])
    with TeacherServer(delay_s=0.2) as server:
        cfg = EvalConfig(
            test_file=test,
            candidates=[parse_candidate(f"endpoint:model=m,base_url={server.base_url},api_key_env=TUNESMITH_TEST_KEY")],
            output_dir=tmp_path / "out",
            concurrency=4,
            bootstrap_samples=100,
            judge=JudgeSettings(base_url=server.base_url, model="judge", api_key_env="TUNESMITH_TEST_KEY"),
        )
        run_evaluation(cfg)
        assert server.max_in_flight == 4  # never more than the bound, and not one at a time
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    examples = report["candidates"][0]["examples"]
    assert [e["output"] for e in examples] == [f"Answer to: question number {i}" for i in range(10)]
    assert all("pointwise" in e["judge"] for e in examples)  # each verdict stored on its own example
    assert sum(1 for b in server.requests if b["model"] == "judge") == 10
