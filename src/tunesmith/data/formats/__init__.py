"""Dataset formats, each read into the one internal schema (:mod:`tunesmith.core.schema`).

Every loader streams :class:`~tunesmith.core.records.Record` objects with the source line number, bad records
included (with a problem code), so callers can report every problem at once and nothing is silently dropped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tunesmith.core.errors import DatasetError
from tunesmith.core.records import Record
from tunesmith.data.formats import alpaca, csv, logs, openai, sharegpt

FORMATS: tuple[str, ...] = ("openai", "alpaca", "sharegpt", "csv", "logs")
FormatName = Literal["auto", "openai", "alpaca", "sharegpt", "csv", "logs"]


class LoadOptions(BaseModel):
    """How to read formats that need a choice from the user."""

    model_config = ConfigDict(extra="forbid")
    columns: dict[str, str] | None = Field(
        default=None,
        description="CSV/TSV column mapping role -> column, e.g. {'user': 'question', "
        "'assistant': 'answer', 'system': 'sys'}; default: detected from common header names.",
    )
    logs_split: Literal["conversation", "turn"] = Field(
        default="conversation",
        description="Conversation logs: one example per conversation, or one per "
        "assistant turn with its history (earlier assistant turns get weight 0).",
    )


def parse_columns(spec: str | None) -> dict[str, str] | None:
    """Parse ``user=question,assistant=answer,system=sys`` into a role -> column mapping."""
    if not spec:
        return None
    mapping: dict[str, str] = {}
    for part in spec.split(","):
        role, sep, col = part.partition("=")
        role, col = role.strip(), col.strip()
        if not sep or not role or not col:
            raise DatasetError(
                f"--columns {spec!r}: {part!r} is not ROLE=COLUMN",
                "write e.g. --columns user=question,assistant=answer,system=sys",
            )
        if role not in ("system", "user", "assistant"):
            raise DatasetError(f"--columns {spec!r}: unknown role {role!r}", "roles are system, user, assistant")
        mapping[role] = col
    if "user" not in mapping or "assistant" not in mapping:
        raise DatasetError(
            f"--columns {spec!r}: both user= and assistant= columns are required",
            "add e.g. user=question,assistant=answer",
        )
    return mapping


def detect_format(path: str | Path) -> str:
    """Guess a file's format from its extension and its first JSON object's keys."""
    path = Path(path)
    if path.suffix.lower() in (".csv", ".tsv"):
        return "csv"
    obj = _first_json_value(path)
    if isinstance(obj, list):  # a JSON array file, or a JSONL line holding a bare message list (logs)
        first = obj[0] if obj else None
        if isinstance(first, dict) and "role" in first:
            return "logs"
        obj = first
    if not isinstance(obj, dict):
        return "openai"  # let the OpenAI loader report what is wrong
    if "conversations" in obj:
        return "sharegpt"
    if "instruction" in obj or ("output" in obj and "messages" not in obj and "input" not in obj):
        return "alpaca"
    if "conversation" in obj:
        return "logs"
    return "openai"


def _first_json_value(path: Path) -> object:
    """The first JSON value of the file (a JSON array's start, or the first parseable JSONL line)."""
    with open(path, "rb") as f:
        head = f.read(1 << 16).decode("utf-8", "replace")
    stripped = head.lstrip()
    if stripped.startswith("["):
        try:
            return json.loads(Path(path).read_text(encoding="utf-8", errors="replace"))
        except json.JSONDecodeError:
            return []
    for line in head.splitlines()[:50]:
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return None


def iter_format_records(
    path: Path, kind: str = "chat", fmt: str = "auto", options: LoadOptions | None = None
) -> Iterator[Record]:
    """Stream ``path`` in format ``fmt`` (``auto`` = detected) as Records."""
    options = options or LoadOptions()
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "openai":
        yield from openai.iter_records(path, kind=kind)
    elif fmt == "alpaca":
        yield from alpaca.iter_records(path)
    elif fmt == "sharegpt":
        yield from sharegpt.iter_records(path)
    elif fmt == "csv":
        yield from csv.iter_records(path, options.columns)
    elif fmt == "logs":
        yield from logs.iter_records(path, options.logs_split)
    else:
        raise DatasetError(f"unknown format {fmt!r}", f"use one of: auto, {', '.join(FORMATS)}", param="format")
