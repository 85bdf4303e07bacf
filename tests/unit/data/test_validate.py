"""validate_file on one asset per error/warning code: right code, severity and line."""

from __future__ import annotations

import json

import pytest

from tests.unit.data.conftest import DATA, _generator
from tunesmith.data.checks import DataCheckConfig
from tunesmith.data.validate import validate_file

CODES = sorted(_generator().EXPECTED)
TOKEN_CODES = {"too_long", "special_token_in_content", "zero_trained_tokens"}


@pytest.mark.parametrize("code", [c for c in CODES if c != "few_examples"])
def test_each_asset_reports_its_code_at_its_line(code, expected, smol_tokenizer):
    severity, line = expected[code]
    needs_tok = code in TOKEN_CODES
    report = validate_file(
        DATA / f"{code}.jsonl",
        model="smollm2-135m-instruct" if needs_tok else None,
        tokenizer=smol_tokenizer if needs_tok else None,
        config=DataCheckConfig(max_length=64),
    )
    hits = [i for i in report.issues if i.code == code]
    assert hits, f"{code} not reported: {[(i.code, i.line) for i in report.issues]}"
    assert hits[0].severity == severity
    assert hits[0].line == line
    assert hits[0].message and hits[0].hint
    assert report.ok == (severity == "warning" and not report.errors)


def test_valid_file_has_no_errors_and_few_examples_warning(smol_tokenizer):
    report = validate_file(DATA / "valid.jsonl", tokenizer=smol_tokenizer)
    assert report.ok and report.n_examples == 12
    assert [i.code for i in report.issues] == ["few_examples"]
    assert report.context_length == 8192


def test_field_paths_name_the_message(expected):
    report = validate_file(DATA / "unknown_role.jsonl", model=None)
    (issue,) = [i for i in report.errors if i.code == "unknown_role"]
    assert issue.field == "messages.0.role" and "'human'" in issue.message


def test_duplicate_groups_list_every_line():
    report = validate_file(DATA / "exact_duplicate.jsonl", model=None)
    (dup,) = [i for i in report.issues if i.code == "exact_duplicate"]
    assert dup.lines == [3, 13]
    near = [i for i in validate_file(DATA / "near_duplicate.jsonl", model=None).issues if i.code == "near_duplicate"]
    assert near[0].lines == [13, 14]


def test_train_val_leak_is_reported_on_the_val_line():
    report = validate_file(DATA / "leak_train.jsonl", DATA / "leak_val.jsonl", model=None)
    (leak,) = [i for i in report.issues if i.code == "train_val_leak"]
    assert leak.file.endswith("leak_val.jsonl") and leak.line == 3 and leak.lines == [6]


def test_preference_records_are_detected_and_checked():
    report = validate_file(DATA / "preference.jsonl", model=None)
    assert report.kind == "preference" and report.n_examples == 13
    codes = {(i.code, i.line) for i in report.issues}
    assert ("identical_preference", 13) in codes
    assert ("missing_messages", 14) in codes and ("missing_output", 14) in codes


def test_rejects_file_holds_every_rejected_line_verbatim(tmp_path):
    src = tmp_path / "mixed.jsonl"
    raw = [
        json.dumps({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": "a"}]})
        for i in range(11)
    ] + ["[1]", '{"messages": []}', '{"messages": [{"role": "bot", "content": "x"}]}']
    src.write_text("\n".join(raw) + "\n", encoding="utf-8")
    rejects = tmp_path / "rejects.jsonl"
    report = validate_file(src, model=None, rejects_path=rejects)
    rows = [json.loads(line) for line in rejects.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in rows] == [12, 13, 14]
    assert [r["raw"] for r in rows] == raw[11:]
    assert all(r["reason"] and r["file"] == str(src) for r in rows)
    assert len({i.line for i in report.errors}) == 3 and not report.ok


def test_report_json_has_counts():
    data = validate_file(DATA / "missing_messages.jsonl", model=None).to_json()
    assert data["ok"] is False and data["n_errors"] == 2
    assert data["counts"]["missing_messages"] == 1
    json.dumps(data)
