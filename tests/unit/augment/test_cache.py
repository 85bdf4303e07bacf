"""The append-only request cache: keys, persistence across reopen, a torn last line after a kill."""

from __future__ import annotations

import pytest

from tunesmith.augment.client import CachedResponse, RequestCache, request_key
from tunesmith.core.errors import DatasetError

MSGS = [{"role": "user", "content": "hi"}]


def test_request_key_is_stable_and_covers_model_messages_and_params():
    key = request_key("m", MSGS, {"temperature": 0.7, "max_tokens": 5})
    assert key == request_key("m", [dict(MSGS[0])], {"max_tokens": 5, "temperature": 0.7})
    assert key != request_key("m2", MSGS, {"temperature": 0.7, "max_tokens": 5})
    assert key != request_key("m", [{"role": "user", "content": "hi!"}], {"temperature": 0.7, "max_tokens": 5})
    assert key != request_key("m", MSGS, {"temperature": 0.0, "max_tokens": 5})


def test_entries_survive_reopen(tmp_path):
    cache = RequestCache(tmp_path / "c.jsonl")
    cache.put("k1", CachedResponse("one", 3, 1, "m"))
    cache.put("k2", CachedResponse("two", 4, 2, "m"))
    cache.close()
    again = RequestCache(tmp_path / "c.jsonl")
    assert len(again) == 2 and again.get("k2") == CachedResponse("two", 4, 2, "m")
    assert again.get("missing") is None


def test_torn_last_line_is_dropped_and_overwritten(tmp_path):
    path = tmp_path / "c.jsonl"
    cache = RequestCache(path)
    cache.put("k1", CachedResponse("one", 1, 1, "m"))
    cache.close()
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"key": "k2", "response": {"te')  # killed mid-write
    reopened = RequestCache(path)
    assert len(reopened) == 1 and reopened.torn_lines == 1
    reopened.put("k3", CachedResponse("three", 1, 1, "m"))
    reopened.close()
    final = RequestCache(path)
    assert set(final.rows) == {"k1", "k3"} and final.torn_lines == 0


def test_corrupt_complete_line_is_an_error_naming_the_line(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_text(
        '{"key": "k1", "response": {"text": "a", "prompt_tokens": 1, "completion_tokens": 1, '
        '"model": "m"}}\nnot json\n',
        encoding="utf-8",
    )
    with pytest.raises(DatasetError, match=r"c.jsonl line 2: not a cache entry"):
        RequestCache(path)
