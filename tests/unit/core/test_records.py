"""Line parsing every dataset format shares: each problem gets its code, its line and a hint."""

from __future__ import annotations

from tunesmith.core.records import Record, bad_utf8_record, iter_raw_lines, parse_json_object, validate_into
from tunesmith.core.schema import ChatExample


def test_a_cut_off_last_line_is_truncated_and_a_broken_one_is_invalid():
    rec, obj = parse_json_object("f.jsonl", 7, '{"messages": [', is_last=True)
    assert obj is None and rec.code == "truncated_line" and rec.where() == "f.jsonl line 7"
    rec, obj = parse_json_object("f.jsonl", 2, '{"a": 1,, "b": 2}\n')
    assert rec.code == "invalid_json" and "column 9" in rec.error
    rec, obj = parse_json_object("f.jsonl", 3, "[1]\n")
    assert rec.code == "not_json_object" and "got list" in rec.error


def test_bad_utf8_names_the_byte_and_blank_lines_are_skipped(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"b": "\xff"}\n')
    lines = list(iter_raw_lines(path))
    assert [n for n, _, _ in lines] == [1, 3] and lines[1][1] is None
    rec = bad_utf8_record(str(path), 3, lines[1][2])
    assert rec.code == "invalid_utf8" and "at byte 7" in rec.error and rec.hint == "re-encode the file as UTF-8"


def test_schema_problems_name_the_field_and_every_problem_is_kept():
    rec = validate_into(Record("f.jsonl", 1, "{}"), {"messages": [{"role": "robot", "content": "x"}]}, ChatExample)
    assert rec.example is None and rec.code == "invalid_record" and rec.field == "messages.0.role"
    rec.add_problem("empty", "second problem", "messages")
    assert [p.code for p in rec.all_problems()] == ["invalid_record", "empty"] and rec.error != "second problem"
    ok = validate_into(Record("f.jsonl", 2, "{}"), {"messages": [{"role": "user", "content": "hi"}]}, ChatExample)
    assert ok.example is not None and ok.all_problems() == []
