"""`run_augment` against the local teacher: variations, provenance, dedup, rejects, resume, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO, chat, write_jsonl
from tests.unit.augment.conftest import SENTENCES
from tunesmith.augment.augment import parse_paraphrases, run_augment
from tunesmith.augment.config import AugmentConfig, TeacherSettings
from tunesmith.cli import app
from tunesmith.core.errors import DatasetError
from tunesmith.data.load import load_examples


def config(teacher, src, out, **kw) -> AugmentConfig:
    ts = TeacherSettings(model="teacher-x", base_url=teacher.base_url, backoff_s=0.01, concurrency=2)
    return AugmentConfig(input=src, output=out, teacher=ts, **kw)


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_parse_paraphrases_accepts_json_fences_and_numbered_lists():
    assert parse_paraphrases('["a", " b "]') == ["a", "b"]
    assert parse_paraphrases('```json\n["a", "b"]\n```') == ["a", "b"]
    assert parse_paraphrases("1. first one\n2) second one\n") == ["first one", "second one"]
    assert parse_paraphrases("Sorry, I can't help with that.") is None
    assert parse_paraphrases("") is None
    assert parse_paraphrases("[1, 2]") is None and parse_paraphrases("[]") is None


def test_augment_writes_originals_and_variations_with_provenance(teacher, source_file, tmp_path):
    out = tmp_path / "aug.jsonl"
    report = run_augment(config(teacher, source_file, out, variations=2), show_progress=False)
    rows = read(out)
    assert report.sources == 6 and report.requested == 12 and report.accepted == 12 and report.rejected == 0
    assert report.written == len(rows) == 18 and len(teacher.requests) == 6  # one request per user turn
    assert len(load_examples(out)) == 18  # every output is a valid example
    new = [r for r in rows if "augment" in (r.get("metadata") or {})]
    assert len(new) == 12
    first = new[0]
    prov = first["metadata"]["augment"]
    assert prov["source_line"] == 1 and prov["source_id"] == "ex0" and prov["variation"] == 1
    assert prov["teacher"] == "teacher-x" and prov["prompt_version"] == "paraphrase-v1"
    assert prov["source_file"] == str(source_file) and first["metadata"]["id"] == "ex0"
    original = rows[0]
    assert first["messages"][0] == original["messages"][0]  # system prompt kept
    assert first["messages"][2] == original["messages"][2]  # the answer is kept verbatim
    assert first["messages"][1]["content"].startswith("Variant 1:")
    assert report.prompt_tokens > 0 and report.cost_usd is None  # unknown model: cost n/a, no crash
    assert "estimated cost n/a" in report.summary()


def test_near_duplicates_and_garbage_are_rejected_with_reasons(teacher, tmp_path):
    src = write_jsonl(
        tmp_path / "src.jsonl",
        [
            chat("DUPME this phone is great value for money", "pos"),
            chat("GARBAGE the screen cracked within a week", "neg"),
            chat("EMPTY nothing to say about this one", "neu"),
            chat("the delivery was quick and the box was intact", "pos"),
        ],
    )
    out = tmp_path / "aug.jsonl"
    report = run_augment(config(teacher, src, out, variations=3), show_progress=False)
    rejects = read(tmp_path / "aug.rejects.jsonl")
    assert report.accepted == 3 and report.rejected == 9 == len(rejects)
    by_line = {}
    for r in rejects:
        by_line.setdefault(r["source_line"], []).append(r["reason"])
    assert by_line[1] == ["near-duplicate of line 1"] * 3  # paraphrase == source
    assert all('not a JSON array of paraphrases: "Sorry' in r for r in by_line[2])
    assert all("not a JSON array of paraphrases: '(empty)'" in r for r in by_line[3])
    assert report.reject_reasons == {
        "near-duplicate": 3,
        "teacher reply is not a JSON array of paraphrases": 6,
    }
    assert len(read(out)) == 4 + 3


def test_variations_that_duplicate_each_other_are_dropped(teacher, tmp_path, monkeypatch):
    from tests.unit.augment import teacher_server

    monkeypatch.setattr(teacher_server, "paraphrases", lambda text, n: ["same new words here"] * n)
    src = write_jsonl(tmp_path / "src.jsonl", [chat("an utterly different original sentence", "ok")])
    report = run_augment(config(teacher, src, tmp_path / "o.jsonl", variations=3), show_progress=False)
    assert report.accepted == 1
    assert report.reject_reasons == {"near-duplicate": 2}
    reasons = [r["reason"] for r in read(tmp_path / "o.rejects.jsonl")]
    assert reasons == ["near-duplicate of line 1 variation 1"] * 2


def test_rewrite_answers_restyles_the_assistant_turn(teacher, source_file, tmp_path):
    out = tmp_path / "aug.jsonl"
    report = run_augment(
        config(teacher, source_file, out, variations=1, rewrite_answers=True, include_originals=False),
        show_progress=False,
    )
    rows = read(out)
    assert report.accepted == len(rows) == 6 and len(teacher.requests) == 12
    assert all(r["messages"][-1]["content"] == 'Rewritten: {"sentiment": "positive"}' for r in rows)
    assert all(r["metadata"]["augment"]["answer_prompt_version"] == "rewrite-v1" for r in rows)


def test_rerun_is_answered_from_the_cache(teacher, source_file, tmp_path):
    out = tmp_path / "aug.jsonl"
    run_augment(config(teacher, source_file, out), show_progress=False)
    first = out.read_text(encoding="utf-8")
    n = len(teacher.requests)
    report = run_augment(config(teacher, source_file, out), show_progress=False)
    assert len(teacher.requests) == n and report.http_requests == 0 and report.cache_hits == 6
    assert out.read_text(encoding="utf-8") == first


def test_failed_requests_are_rejected_and_retried_on_the_next_run(teacher, source_file, tmp_path):
    teacher.fail_plan = [(503, {})] * 3  # max_retries=2 -> the first item fails for good
    ts = TeacherSettings(model="t", base_url=teacher.base_url, backoff_s=0.01, concurrency=1, max_retries=2)
    cfg = AugmentConfig(input=source_file, output=tmp_path / "o.jsonl", teacher=ts, variations=1)
    report = run_augment(cfg, show_progress=False)
    assert report.accepted == 5 and report.reject_reasons == {"teacher request failed after 2 retries": 1}
    report = run_augment(cfg, show_progress=False)
    assert report.accepted == 6 and report.http_requests == 1 and report.cache_hits == 5


def test_invalid_source_lists_every_bad_line_before_any_request(teacher, tmp_path):
    src = write_jsonl(tmp_path / "bad.jsonl", [chat("fine", "ok"), "{not json", {"messages": "x"}])
    with pytest.raises(DatasetError, match=r"2 invalid record\(s\):\n.*line 2.*\n.*line 3"):
        run_augment(config(teacher, src, tmp_path / "o.jsonl"), show_progress=False)
    assert teacher.requests == []


def test_cli_augment_prints_the_summary(teacher, source_file, tmp_path):
    out = tmp_path / "cli.jsonl"
    result = CliRunner().invoke(
        app,
        [
            "data",
            "augment",
            str(source_file),
            "--teacher",
            "teacher-x",
            "--base-url",
            teacher.base_url,
            "-n",
            "2",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "12 accepted of 12 candidates; 18 examples written" in result.output
    assert "estimated cost n/a" in result.output and len(read(out)) == 18


def test_cli_rejects_bad_options_with_the_flag_named(tmp_path, source_file):
    result = CliRunner().invoke(app, ["data", "augment", str(source_file), "--teacher", "t", "-n", "0"])
    assert result.exit_code != 0
    assert "variations" in str(result.exception) and "greater than or equal to 1" in str(result.exception)


def test_killed_run_resumes_without_repeating_finished_requests(teacher, tmp_path):
    """Run the CLI in a subprocess, kill it mid-run, rerun: finished items are never requested again."""
    src = write_jsonl(
        tmp_path / "src.jsonl", [chat(f"sentence number {i} about product {i * 7}", "ok") for i in range(12)]
    )
    out, cache = tmp_path / "o.jsonl", tmp_path / "o.jsonl.cache.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "tunesmith",
        "data",
        "augment",
        str(src),
        "--teacher",
        "teacher-x",
        "--base-url",
        teacher.base_url,
        "-n",
        "2",
        "--out",
        str(out),
        "--concurrency",
        "1",
        "--quiet",
    ]
    teacher.delay_s = 0.15
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        env={**os.environ, "OPENAI_API_KEY": "k"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while len(teacher.keys) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    while teacher.in_flight:  # let the server finish the request the kill interrupted
        time.sleep(0.02)
    assert not out.exists()  # killed before the end: nothing half-written
    cached_first = [json.loads(line)["key"] for line in cache.read_text().splitlines() if line.strip()]
    assert 3 <= len(cached_first) < 12  # the 4th answer may have been lost in flight
    answered_first = len(teacher.keys)
    teacher.delay_s = 0.0
    result = subprocess.run(
        cmd, cwd=REPO, env={**os.environ, "OPENAI_API_KEY": "k"}, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    second = teacher.keys[answered_first:]
    assert not set(second) & set(cached_first)  # nothing finished was paid for twice
    assert len(second) == 12 - len(cached_first)
    assert len(read(out)) == 12 * 3


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt"])
def test_augment_reads_alpaca_and_sharegpt_sources(teacher, tmp_path, fmt):
    questions = SENTENCES[:2]
    if fmt == "alpaca":
        rows = [{"instruction": q, "input": "", "output": "yes"} for q in questions]
    else:
        rows = [{"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": "yes"}]} for q in questions]
    src = write_jsonl(tmp_path / "a.jsonl", rows) if fmt == "alpaca" else tmp_path / "s.json"
    if fmt == "sharegpt":  # a one-line JSON array: both sources start on line 1
        src.write_text(json.dumps(rows))
    out = tmp_path / "aug.jsonl"
    report = run_augment(config(teacher, src, out, variations=2), show_progress=False)
    assert report.sources == 2 and report.accepted == 4 and report.written == 6
    users = [r["messages"][0]["content"] for r in read(out)]
    assert users[0] == questions[0] and users[3] == questions[1]
    assert users[1].startswith("Variant 1:") and users[5].startswith("Variant 2:")
    assert all(r["messages"][1] == {"role": "assistant", "content": "yes"} for r in read(out))
    assert read(out)[4]["metadata"]["augment"]["source_line"] == (2 if fmt == "alpaca" else 1)
