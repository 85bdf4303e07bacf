"""augment and distill against a real `tunesmith serve` with the bundled SmolLM2 as the teacher.

Quality is irrelevant here (a 135M model rarely writes a valid JSON list of paraphrases); the plumbing is
what is tested: real HTTP through the openai SDK, usage and cost accounting, validation and rejects with
reasons, provenance, and a rerun answered entirely from the cache.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import chat, write_jsonl
from tunesmith.augment.augment import run_augment
from tunesmith.augment.config import AugmentConfig, DistillConfig, TeacherSettings
from tunesmith.augment.distill import run_distill
from tunesmith.data.load import load_examples

pytestmark = pytest.mark.integration
TEACHER = "smollm2-135m-instruct"


def teacher_settings(live_server, max_tokens: int) -> TeacherSettings:
    return TeacherSettings(
        model=TEACHER,
        base_url=live_server.base_url,
        api_key_env="TUNESMITH_LIVE_KEY",
        max_tokens=max_tokens,
        temperature=0.0,
        concurrency=2,
        timeout_s=120,
        max_retries=2,
    )


def test_distill_with_the_served_bundled_model(live_server, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_LIVE_KEY", live_server.api_key)
    prompts = tmp_path / "p.txt"
    prompts.write_text("Name a primary colour.\nWhat is two plus two?\nSay hello in French.\n")
    out = tmp_path / "d.jsonl"
    cfg = DistillConfig(prompts=prompts, output=out, teacher=teacher_settings(live_server, 8), system="Be brief.")
    report = run_distill(cfg, show_progress=False)
    assert report.requested == 3 and report.accepted + report.rejected == 3 and report.accepted >= 1
    assert report.http_requests == 3 and report.completion_tokens > 0 and report.cost_usd is not None
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == report.accepted == len(load_examples(out))
    assert all(r["metadata"]["distill"]["teacher"] == TEACHER and r["messages"][-1]["content"] for r in rows)
    again = run_distill(cfg, show_progress=False)
    assert again.http_requests == 0 and again.cache_hits == 3 and out.read_text().count("\n") == len(rows)


def test_augment_with_the_served_bundled_model(live_server, tmp_path, monkeypatch):
    monkeypatch.setenv("TUNESMITH_LIVE_KEY", live_server.api_key)
    src = write_jsonl(
        tmp_path / "s.jsonl",
        [
            chat("The film was a delight.", '{"sentiment": "positive"}'),
            chat("The charger broke in a week.", '{"sentiment": "negative"}'),
        ],
    )
    out = tmp_path / "a.jsonl"
    cfg = AugmentConfig(input=src, output=out, teacher=teacher_settings(live_server, 32), variations=2)
    report = run_augment(cfg, show_progress=False)
    assert report.http_requests == 2 and report.requested == 4
    assert report.accepted + report.rejected == 4 and report.prompt_tokens > 0
    rejects = [json.loads(line) for line in (tmp_path / "a.rejects.jsonl").read_text().splitlines()]
    assert len(rejects) == report.rejected and all(r["reason"] for r in rejects)
    rows = load_examples(out)  # originals + accepted variations, all valid
    assert len(rows) == 2 + report.accepted
    assert all(r.metadata["augment"]["teacher"] == TEACHER for r in rows if r.metadata and "augment" in r.metadata)


def test_distill_on_the_local_engine_answers_as_the_server(live_server, tmp_path, monkeypatch):
    """One engine: `teacher.base_url: local` writes the served model's greedy answers, with no server."""
    monkeypatch.setenv("TUNESMITH_LIVE_KEY", live_server.api_key)
    prompts = tmp_path / "p.txt"
    prompts.write_text("Name a primary colour.\nWhat is two plus two?\nSay hello in French.\nName a planet.\n")
    answers = {}
    for where in ("served", "local"):
        out = tmp_path / f"{where}.jsonl"
        teacher = teacher_settings(live_server, 12)
        if where == "local":
            teacher = teacher.model_copy(update={"base_url": "local"})
        report = run_distill(DistillConfig(prompts=prompts, output=out, teacher=teacher), show_progress=False)
        assert report.requested == 4 and report.cache_hits == 0
        answers[where] = [json.loads(line)["messages"] for line in out.read_text().splitlines()]
    assert answers["local"] == answers["served"] and len(answers["local"]) >= 3
    assert report.generated == 4 and report.http_requests == 0 and report.cost_usd == 0.0
