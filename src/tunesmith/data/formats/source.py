"""Read the JSON objects of a JSONL file or of a JSON array file, each with its 1-based line number."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from tunesmith.core.records import Record, bad_utf8_record, iter_raw_lines, parse_json_object


def is_json_array(path: Path) -> bool:
    """Whether the file's first non-blank character is ``[``."""
    with open(path, "rb") as f:
        head = f.read(4096).lstrip()
    return head.startswith(b"[")


def iter_objects(path: str | Path) -> Iterator[tuple[Record, dict | None]]:
    """Yield ``(record, object)`` per JSONL line or JSON-array element; object is None when unusable."""
    path = Path(path)
    if is_json_array(path):
        yield from _iter_array(path)
        return
    last = _last_line_number(path)
    for lineno, text, rawb in iter_raw_lines(path):
        if text is None:
            yield bad_utf8_record(str(path), lineno, rawb), None
        else:
            yield parse_json_object(str(path), lineno, text, is_last=lineno == last)


def _last_line_number(path: Path) -> int:
    """Line number of the last line when the file does not end with a newline, else -1."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        if f.tell() == 0:
            return -1
        f.seek(-1, 2)
        if f.read(1) == b"\n":
            return -1
        f.seek(0)
        return sum(1 for _ in f)


def _iter_array(path: Path) -> Iterator[tuple[Record, dict | None]]:
    """Elements of a JSON array file, each with the line where it starts (a JSON array is read whole)."""
    rawb = path.read_bytes()
    try:
        text = rawb.decode("utf-8")
    except UnicodeDecodeError:
        yield bad_utf8_record(str(path), 1, rawb[:200]), None
        return
    decoder = json.JSONDecoder()
    pos = text.index("[") + 1
    line = 1 + text.count("\n", 0, pos)
    while True:
        nxt = _skip(text, pos)
        line += text.count("\n", pos, nxt)
        pos = nxt
        if pos >= len(text):
            rec = Record(str(path), line, "")
            yield (
                rec.add_problem(
                    "truncated_line",
                    "truncated JSON array: no closing ]",
                    hint="the file was probably cut off; close the array",
                ),
                None,
            )
            return
        if text[pos] == "]":
            return
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            rec = Record(str(path), line, text[pos : pos + 200])
            yield (
                rec.add_problem(
                    "invalid_json",
                    f"not valid JSON ({exc.msg} at line {exc.lineno})",
                    hint="fix the JSON array element (every element after it is skipped)",
                ),
                None,
            )
            return
        rec = Record(str(path), line, text[pos:end])
        if isinstance(obj, dict):
            yield rec, obj
        else:
            yield (
                rec.add_problem(
                    "not_json_object",
                    f"not a JSON object (got {type(obj).__name__})",
                    hint="each array element must be an object",
                ),
                None,
            )
        line += text.count("\n", pos, end)
        pos = end
        nxt = _skip(text, pos)
        if nxt < len(text) and text[nxt] == ",":
            line += text.count("\n", pos, nxt)
            pos = nxt + 1


def _skip(text: str, pos: int) -> int:
    """Index of the next non-whitespace character."""
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos
