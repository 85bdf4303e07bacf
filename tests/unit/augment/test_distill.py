"""`run_distill` against the local teacher: prompts files, schema and judge filters, dedup, errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tests.conftest import chat, write_jsonl
from tunesmith.augment.config import DistillConfig, TeacherSettings
from tunesmith.augment.distill import parse_score, read_prompts, run_distill
from tunesmith.cli import app
from tunesmith.core.errors import ConfigError, DatasetError
from tunesmith.data.load import load_examples

SCHEMA = {
    "type": "object",
    "properties": {"sentiment": {"enum": ["positive", "negative", "neutral"]}},
    "required": ["sentiment"],
}


def config(teacher, prompts, out, **kw) -> DistillConfig:
    ts = TeacherSettings(model="teacher-x", base_url=teacher.base_url, backoff_s=0.01)
    return DistillConfig(prompts=prompts, output=out, teacher=ts, **kw)


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_distill_text_prompts_with_system_and_provenance(teacher, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("What is LoRA in one line?\n\nWhy fine-tune a small model?\nEMPTY please\n")
    out = tmp_path / "d.jsonl"
    report = run_distill(config(teacher, prompts, out, system="Be brief."), show_progress=False)
    rows = read(out)
    assert report.sources == 3 and report.accepted == 2 == len(rows) and len(teacher.requests) == 3
    assert rows[0]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is LoRA in one line?"},
        {"role": "assistant", "content": "Answer to: What is LoRA in one line?"},
    ]
    prov = rows[1]["metadata"]["distill"]
    assert prov["source_line"] == 3 and prov["teacher"] == "teacher-x" and prov["prompt_version"] == "distill-v1"
    assert read(tmp_path / "d.rejects.jsonl") == [
        {"source_line": 4, "prompt": "EMPTY please", "reason": "teacher returned an empty answer"}
    ]
    assert len(load_examples(out)) == 2


def test_distill_from_a_dataset_drops_old_answers_and_near_duplicate_prompts(teacher, tmp_path):
    src = write_jsonl(
        tmp_path / "ds.jsonl",
        [
            chat("How do I reset my password?", "old answer", system="Support bot."),
            chat("how do i reset my password", "another old answer"),
            {"prompt": "Where is my order?"},
        ],
    )
    out = tmp_path / "d.jsonl"
    report = run_distill(config(teacher, src, out), show_progress=False)
    rows = read(out)
    assert [r["messages"][-1]["content"] for r in rows] == [
        "Answer to: How do I reset my password?",
        "Answer to: Where is my order?",
    ]
    assert rows[0]["messages"][0] == {"role": "system", "content": "Support bot."}
    assert len(teacher.requests) == 2  # the duplicate prompt is never sent
    assert report.reject_reasons == {"near-duplicate prompt": 1}
    assert read(tmp_path / "d.rejects.jsonl")[0]["reason"] == "near-duplicate prompt of line 1"


def test_json_schema_filter(teacher, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("JSON for a great phone\nJSONBAD for a bad phone\nplain text for a cable\n")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(SCHEMA))
    out = tmp_path / "d.jsonl"
    report = run_distill(config(teacher, prompts, out, json_schema=schema), show_progress=False)
    assert [r["messages"][-1]["content"] for r in read(out)] == ['{"sentiment": "positive"}']
    reasons = [r["reason"] for r in read(tmp_path / "d.rejects.jsonl")]
    assert reasons[0].startswith("answer does not match the JSON schema: at sentiment: 5 is not one of")
    assert reasons[1].startswith("answer is not valid JSON")
    assert report.accepted == 1 and report.rejected == 2


def test_judge_filter_and_scores_in_metadata(teacher, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("a good question\nLOWSCORE question\n")
    judge = TeacherSettings(model="judge-y", base_url=teacher.base_url, backoff_s=0.01)
    out = tmp_path / "d.jsonl"
    report = run_distill(config(teacher, prompts, out, judge=judge, min_score=7), show_progress=False)
    rows = read(out)
    assert len(rows) == 1 and rows[0]["metadata"]["distill"]["judge_score"] == 9.0
    assert rows[0]["metadata"]["distill"]["judge"] == "judge-y"
    assert [r["model"] for r in teacher.requests] == ["teacher-x", "teacher-x", "judge-y", "judge-y"]
    judge_req = teacher.requests[2]
    assert judge_req["temperature"] == 0.0 and "Answer to grade:" in judge_req["messages"][1]["content"]
    assert read(tmp_path / "d.rejects.jsonl")[0]["reason"] == "judge score below --min-score: 3 < 7"
    assert report.http_requests == 4


def test_parse_score():
    assert parse_score("8") == 8.0 and parse_score("Score: 7.5/10") == 7.5
    assert parse_score("none") is None and parse_score("42") is None and parse_score("0") is None


@pytest.mark.parametrize(
    ("reply", "score"),
    [
        ("On a scale of 1-10: 8", 8.0),
        ("Score (1-10): 6", 6.0),
        ("On a scale from 1 (useless) to 10 (perfect), I give it 9.", 9.0),
        ("I rate it 7 out of 10; it misses 2 details.", 7.0),
    ],
)
def test_parse_score_skips_the_restated_scale(reply, score):
    assert parse_score(reply) == score


def test_bad_prompt_lines_are_all_reported(tmp_path):
    src = write_jsonl(tmp_path / "p.jsonl", [{"prompt": "ok"}, "{oops", {"messages": [{"role": "system"}]}, [1]])
    with pytest.raises(
        DatasetError,
        match=r"3 bad prompt line\(s\):\n.*line 2: not valid JSON.*\n.*line 3: "
        r"field messages: no user turn\n.*line 4: expected",
    ):
        read_prompts(src, None)
    with pytest.raises(DatasetError, match="no such file"):
        read_prompts(tmp_path / "missing.txt", None)
    (tmp_path / "empty.txt").write_text("\n\n")
    with pytest.raises(DatasetError, match="no prompts"):
        read_prompts(tmp_path / "empty.txt", None)


def test_invalid_schema_is_a_config_error_before_any_request(teacher, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("hello\n")
    schema = tmp_path / "s.json"
    schema.write_text('{"type": "no-such-type"}')
    with pytest.raises(ConfigError, match="not a valid JSON Schema"):
        run_distill(config(teacher, prompts, tmp_path / "d.jsonl", json_schema=schema), show_progress=False)
    with pytest.raises(ConfigError, match="no such file"):
        config(teacher, prompts, tmp_path / "d.jsonl", json_schema=tmp_path / "nope.json")
    assert teacher.requests == []


def test_cli_distill_with_judge(teacher, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("first prompt here\nLOWSCORE second prompt\n")
    out = tmp_path / "cli.jsonl"
    args = [
        "data",
        "distill",
        str(prompts),
        "--teacher",
        "t",
        "--judge",
        "j",
        "--min-score",
        "5",
        "--base-url",
        teacher.base_url,
        "--out",
        str(out),
        "--quiet",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "1 accepted of 2 candidates" in result.output and "judge score below --min-score: 1" in result.output
    assert len(read(out)) == 1


@pytest.mark.parametrize("fmt", ["alpaca", "sharegpt", "csv"])
def test_distill_reads_prompts_from_alpaca_sharegpt_and_csv_datasets(teacher, tmp_path, fmt):
    questions = ["How do I reset my password?", "Where is my order?"]
    if fmt == "alpaca":
        src = write_jsonl(tmp_path / "a.jsonl", [{"instruction": q, "input": "", "output": "old"} for q in questions])
    elif fmt == "sharegpt":
        src = tmp_path / "s.json"  # a JSON array, as ShareGPT dumps usually are
        turns = [[{"from": "human", "value": q}, {"from": "gpt", "value": "old"}] for q in questions]
        src.write_text(json.dumps([{"conversations": t} for t in turns]))
    else:
        src = tmp_path / "c.csv"
        src.write_text("question,answer\n" + "".join(f'"{q}",old\n' for q in questions))
    out = tmp_path / "d.jsonl"
    report = run_distill(config(teacher, src, out), show_progress=False)
    assert report.sources == 2 and report.accepted == 2
    assert [r["messages"] for r in read(out)] == [
        [{"role": "user", "content": q}, {"role": "assistant", "content": f"Answer to: {q}"}] for q in questions
    ]
