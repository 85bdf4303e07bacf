"""A failing judge call is recorded on its example instead of ending the evaluation; all failing is an error."""

from __future__ import annotations

import pytest

from tests.unit.augment.teacher_server import TeacherServer
from tunesmith.core.errors import EndpointError
from tunesmith.evaluate.config import CandidateSpec, EvalConfig, JudgeSettings
from tunesmith.evaluate.items import TestItem
from tunesmith.evaluate.judge_run import run_judge
from tunesmith.evaluate.schema import CandidateResult, CostSpeed, ExampleResult


def setup(tmp_path, base_url):
    test = tmp_path / "t.jsonl"
    test.write_text('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n')
    # one judge call at a time: the server refuses the first request it gets, which is then example 0's
    cfg = EvalConfig(
        test_file=test,
        candidates=[CandidateSpec(kind="zero-shot")],
        output_dir=tmp_path,
        concurrency=1,
        judge=JudgeSettings(base_url=base_url, model="judge", api_key_env="JUDGE_KEY"),
    )
    items = [TestItem(i, [{"role": "user", "content": f"question {i}"}], "ref", f"question {i}") for i in range(3)]
    cost = CostSpeed(prompt_tokens_mean=1, completion_tokens_mean=1, latency_p50_s=0, latency_p95_s=0)
    examples = [
        ExampleResult(index=i, output=f"answer {i}", scores={}, prompt_tokens=1, completion_tokens=1, latency_s=0)
        for i in range(3)
    ]
    result = CandidateResult(
        name="zero-shot", kind="zero-shot", model="m", spec={}, metrics={}, cost=cost, examples=examples
    )
    return cfg, items, result


def test_one_failed_judge_call_is_recorded_and_the_rest_are_judged(tmp_path, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "k")
    with TeacherServer() as server:
        cfg, items, result = setup(tmp_path, server.base_url)
        server.fail_plan = [(400, {})]  # the first judge request is refused
        run_judge(cfg, items, [result], [])
        assert len(server.requests) == 3
    reasons = [ex.judge["pointwise"]["reasoning"] for ex in result.examples]
    assert reasons[0].startswith("judge call failed") and not reasons[1].startswith("judge call failed")


def test_a_judge_failing_on_every_example_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("JUDGE_KEY", "k")
    with TeacherServer() as server:
        cfg, items, result = setup(tmp_path, server.base_url)
        server.fail_plan = [(400, {})] * 3
        with pytest.raises(EndpointError, match="the judge failed on every example"):
            run_judge(cfg, items, [result], [])
