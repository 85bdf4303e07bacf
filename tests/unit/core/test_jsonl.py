"""The one JSONL reader, durable log and cache: torn last lines, resuming, and errors that name file and line."""

from __future__ import annotations

import json

import pytest

from tunesmith.core.errors import DatasetError
from tunesmith.core.jsonl import DurableLog, JsonlCache, iter_jsonl, read_jsonl


def test_log_drops_a_torn_last_line_and_resumes_after_the_rows_on_disk(tmp_path):
    path = tmp_path / "log.jsonl"
    with DurableLog(path) as log:
        log.append({"i": 0})
        log.extend([{"i": 1}, {"i": 2}])
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"i": 3, "te')  # killed mid-write
    reopened = DurableLog(path)
    assert [r["i"] for r in reopened.rows] == [0, 1, 2] and reopened.torn_lines == 1
    reopened.append({"i": 3})
    reopened.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["i"] for line in lines] == [0, 1, 2, 3]  # the new row is not glued to the torn bytes
    assert DurableLog(path).torn_lines == 0


def test_log_check_rejecting_a_row_names_the_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"key": "a"}\n{"other": 1}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"log.jsonl line 2: not a cache entry \(KeyError"):
        DurableLog(path, "cache entry", check=lambda row: row["key"])


def test_cache_keeps_the_last_row_per_key_across_reopen(tmp_path):
    path = tmp_path / "cache.jsonl"
    cache = JsonlCache(path, key="index")
    cache.append([{"index": 0, "out": "a"}, {"index": 1, "out": "b"}])
    cache.append([{"index": 1, "out": "c"}])
    cache.close()
    again = JsonlCache(path, key="index")
    assert len(again) == 2 and 1 in again and 5 not in again
    assert again.rows[1]["out"] == "c" and again.path == path


def test_cache_row_without_its_key_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "cache.jsonl"
    path.write_text('{"index": 0}\n{"output": "x"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"cache.jsonl line 2: not a generation cache entry"):
        JsonlCache(path, key="index", what="generation cache entry")


def test_reader_names_file_and_line_of_a_bad_line(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n[1, 2]\n{"a": 2}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"rows.jsonl line 3: not a JSON object \(got list\)") as info:
        read_jsonl(path)
    assert "fix or remove the line" in info.value.hint
    path.write_text('{"a": 1}\nnot json\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"rows.jsonl line 2: not a JSON object \(Expecting value at column 1\)"):
        read_jsonl(path)


def test_reader_skips_bad_lines_on_request_and_a_torn_tail_always(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\nnot json\n{"step": 2}\n{"step": 3, "lo', encoding="utf-8")
    assert [r["step"] for r in read_jsonl(path, skip_bad=True)] == [1, 2]
    assert [n for n, _ in iter_jsonl(path, skip_bad=True)] == [1, 3]  # line numbers of the file
    assert read_jsonl(tmp_path / "missing.jsonl") == []


def test_reader_reports_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "bin.jsonl"
    path.write_bytes(b'{"a": "\xff"}\n')
    with pytest.raises(DatasetError, match=r"bin.jsonl: cannot be read as UTF-8 JSONL"):
        read_jsonl(path)
