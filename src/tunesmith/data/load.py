"""Entry point for reading a dataset file of any supported format into the internal schema.

``load_examples`` is what other stages call (training, the server's upload check, evaluation): it reads the
whole file, and raises one ``DatasetError`` listing every bad record with file, line and field.
``iter_records`` streams any format as :class:`Record` objects (line-numbered, bad records included), which is
what ``tunesmith data validate`` / ``stats`` / ``split`` build on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tunesmith.data.schema import ChatExample, PreferenceExample
from tunesmith.errors import DatasetError

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


def iter_jsonl_records(path: str | Path, kind: str = "chat") -> Iterator[Record]:
    """Stream an OpenAI JSONL file (``kind`` chat or preference) as Records, bad lines included."""
    from tunesmith.data.formats import openai

    yield from openai.iter_records(path, kind=kind)


def parse_jsonl_line(path: str, lineno: int, raw: str, kind: str = "chat") -> Record:
    """Parse one OpenAI-format JSONL line into a Record (example or error)."""
    rec, obj = parse_json_object(path, lineno, raw)
    if obj is None:
        return rec
    return validate_into(rec, obj, PreferenceExample if kind == "preference" else ChatExample)


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


def iter_records(
    path: str | Path, kind: str = "chat", fmt: str = "auto", options: Any = None
) -> Iterator[Record]:
    """Stream any supported format as Records (bad ones included), detecting the format unless given.

    Args:
        path: the dataset file.
        kind: ``chat`` or ``preference`` (OpenAI format only; other formats are chat).
        fmt: ``auto``, ``openai``, ``alpaca``, ``sharegpt``, ``csv`` or ``logs``.
        options: a :class:`tunesmith.data.formats.LoadOptions` (CSV columns, log splitting).
    """
    from tunesmith.data.formats import iter_format_records

    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file", "check the path")
    yield from iter_format_records(path, kind=kind, fmt=fmt, options=options)


def load_examples(
    path: str | Path, kind: str = "chat", fmt: str = "auto", options: Any = None
) -> list[ChatExample | PreferenceExample]:
    """Read every example of ``path``; raise one DatasetError naming every bad record.

    Args:
        path: a dataset file.
        kind: ``chat`` (SFT) or ``preference`` (DPO).
        fmt: the file format (``auto`` detects it; see :func:`iter_records`).
        options: format options (:class:`tunesmith.data.formats.LoadOptions`).

    Raises:
        DatasetError: the file is missing, or some records are invalid (all are listed, with line and field).
    """
    return [example for _, example in load_numbered_examples(path, kind, fmt, options)]


def load_numbered_examples(
    path: str | Path, kind: str = "chat", fmt: str = "auto", options: Any = None
) -> list[tuple[int, ChatExample | PreferenceExample]]:
    """Like :func:`load_examples`, each example with the line its record starts on (for provenance).

    Raises:
        DatasetError: the file is missing, or some records are invalid (all are listed, with line and field).
    """
    path = Path(path)
    examples, bad = [], []
    for rec in iter_records(path, kind, fmt, options):
        if rec.example is not None:
            examples.append((rec.line, rec.example))
        else:
            bad.append(rec)
    if bad:
        lines = "\n".join(f"  {r.where()}: {r.error}" for r in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise DatasetError(
            f"{path}: {len(bad)} invalid record(s):\n{lines}{more}",
            f"run `tunesmith data validate {path}` for every problem and fix",
        )
    if not examples:
        raise DatasetError(
            f"{path}: no examples", "the file is empty; add examples, one JSON object per line"
        )
    return examples
