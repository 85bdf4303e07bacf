"""Line-numbered source records and what is wrong with them: what every dataset format parses into.

A :class:`Record` carries the file, the line a record starts on, its raw text, and either the parsed example or
its :class:`Problem` list, so callers report every problem at once with file, line and field and drop nothing
silently. The line-level parsing every format shares (raw lines, UTF-8, JSON objects, schema validation) is here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tunesmith.core.schema import ChatExample, PreferenceExample

OPENAI_HINT = 'see the OpenAI chat fine-tuning format: {"messages": [{"role": ..., "content": ...}]}'


@dataclass
class Problem:
    """One thing wrong with a record: a short ``code``, the ``field`` at fault, a message and a hint."""

    code: str
    message: str
    field: str | None = None
    hint: str = ""


def unknown_keys(
    obj: dict[str, Any], allowed: frozenset[str], prefix: str = "", what: str = "allowed keys"
) -> list[Problem]:
    """An ``unrecognized_key`` Problem for every key of ``obj`` that is not in ``allowed``."""
    hint = f"{what}: {', '.join(sorted(allowed))}"
    return [
        Problem("unrecognized_key", f"unrecognized key {k!r}", f"{prefix}{k}", hint) for k in obj if k not in allowed
    ]


@dataclass
class Record:
    """One source record: where it came from, its raw text, and the parsed example or the problem(s).

    ``error`` / ``field`` / ``hint`` / ``code`` describe the first problem; ``problems`` lists all of them.
    """

    path: str
    line: int
    raw: str
    example: ChatExample | PreferenceExample | None = None
    error: str | None = None
    field: str | None = None
    hint: str | None = None
    code: str | None = None
    problems: list[Problem] = dc_field(default_factory=list)

    def where(self) -> str:
        """``file line N field F`` for messages."""
        return f"{self.path} line {self.line}" + (f" field {self.field}" if self.field else "")

    def add_problem(self, code: str, message: str, field: str | None = None, hint: str = "") -> Record:
        """Record a problem (the first one also fills ``error``/``field``/``hint``/``code``); returns self."""
        self.problems.append(Problem(code, message, field, hint))
        if self.error is None:
            self.error, self.field, self.hint, self.code = message, field, hint, code
        self.example = None
        return self

    def add_problems(self, problems: list[Problem]) -> Record:
        """Record several problems (see :meth:`add_problem`); returns self."""
        for p in problems:
            self.add_problem(p.code, p.message, p.field, p.hint)
        return self

    def all_problems(self) -> list[Problem]:
        """Every problem, including one set directly through ``error`` (older call sites)."""
        if self.problems or self.error is None:
            return self.problems
        return [Problem(self.code or "invalid_record", self.error, self.field, self.hint or "")]


def iter_raw_lines(path: str | Path) -> Iterator[tuple[int, str | None, bytes]]:
    """Stream ``(line_number, text or None if not UTF-8, raw bytes)`` for non-blank lines of a file."""
    with open(path, "rb") as f:
        for lineno, rawb in enumerate(f, start=1):
            if not rawb.strip():
                continue
            try:
                yield lineno, rawb.decode("utf-8"), rawb
            except UnicodeDecodeError:
                yield lineno, None, rawb


def bad_utf8_record(path: str, lineno: int, rawb: bytes) -> Record:
    """A Record for a line that is not valid UTF-8 (the byte offset is named)."""
    try:
        rawb.decode("utf-8")
        where = ""
    except UnicodeDecodeError as exc:
        where = f" ({exc.reason} at byte {exc.start})"
    return Record(path, lineno, rawb.decode("utf-8", "replace").rstrip("\r\n")).add_problem(
        "invalid_utf8", f"invalid UTF-8{where}", hint="re-encode the file as UTF-8"
    )


def parse_json_object(path: str, lineno: int, raw: str, is_last: bool = False) -> tuple[Record, dict | None]:
    """Parse one JSONL line; returns the Record (with a problem if not a JSON object) and the object."""
    rec = Record(path, lineno, raw.rstrip("\r\n"))
    try:
        obj = json.loads(raw)
    except json.JSONDecodeError as exc:
        truncated = exc.pos >= len(raw.rstrip()) or not raw.endswith("\n") and is_last
        if truncated:
            rec.add_problem(
                "truncated_line",
                f"truncated line: the JSON ends early ({exc.msg})",
                hint="the file was probably cut off while writing; complete or remove the line",
            )
        else:
            rec.add_problem(
                "invalid_json",
                f"not valid JSON ({exc.msg} at column {exc.colno})",
                hint="fix or remove the line",
            )
        return rec, None
    if not isinstance(obj, dict):
        rec.add_problem(
            "not_json_object",
            f"not a JSON object (got {type(obj).__name__})",
            hint='each line must be one object like {"messages": [...]}',
        )
        return rec, None
    return rec, obj


def validate_into(rec: Record, obj: dict[str, Any], model: type) -> Record:
    """Validate ``obj`` as ``model`` into ``rec.example``, or add the schema problem to ``rec``."""
    try:
        rec.example = model.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or None
        if err["type"] == "extra_forbidden":
            rec.add_problem("unrecognized_key", "unrecognized key", loc, OPENAI_HINT)
        else:
            rec.add_problem("invalid_record", err["msg"], loc, OPENAI_HINT)
    return rec
