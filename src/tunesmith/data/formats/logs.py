"""Raw conversation logs: one conversation per JSONL line, split into training examples as the user chooses.

A line is ``{"messages": [...]}``, ``{"conversation": [...]}`` or a bare list of ``{"role", "content"}``
messages; other top-level keys (session ids, timestamps) are kept in ``metadata``. ``split="conversation"``
makes one example per conversation; ``split="turn"`` makes one example per assistant turn with all the history
before it, where earlier assistant turns get ``weight`` 0 so that each turn is trained exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunesmith.core.records import Record, bad_utf8_record, iter_raw_lines, parse_json_object, validate_into
from tunesmith.core.schema import ChatExample
from tunesmith.data.formats.openai import check_message


def iter_records(path: str | Path, split: str = "conversation") -> Iterator[Record]:
    """Stream a conversation-log JSONL file as Records (several per line with ``split="turn"``)."""
    for lineno, text, rawb in iter_raw_lines(path):
        if text is None:
            yield bad_utf8_record(str(path), lineno, rawb)
            continue
        stripped = text.strip()
        if stripped.startswith("["):  # a bare message list
            text = json.dumps({"messages": _try_list(stripped)}) if _try_list(stripped) is not None else text
        rec, obj = parse_json_object(str(path), lineno, text)
        if obj is None:
            yield rec
            continue
        rec.raw = stripped
        yield from _split(rec, obj, split)


def _try_list(text: str) -> list | None:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, list) else None


def _split(rec: Record, obj: dict[str, Any], split: str) -> Iterator[Record]:
    msgs = obj.get("messages", obj.get("conversation"))
    if not isinstance(msgs, list) or not msgs:
        yield rec.add_problem(
            "missing_messages",
            "no messages/conversation list",
            "messages",
            'each line needs {"messages": [{"role": ..., "content": ...}, ...]}',
        )
        return
    key = "messages" if "messages" in obj else "conversation"
    for i, m in enumerate(msgs):
        for p in check_message(m, f"{key}.{i}"):
            rec.add_problem(p.code, p.message, p.field, p.hint)
    if rec.problems:
        yield rec
        return
    meta = {k: v for k, v in obj.items() if k not in ("messages", "conversation")}
    base = {"metadata": meta} if meta else {}
    if split == "conversation":
        yield validate_into(rec, {"messages": msgs, **base}, ChatExample)
        return
    turns = [i for i, m in enumerate(msgs) if m.get("role") == "assistant"]
    if not turns:  # let validation report the missing assistant turn
        yield validate_into(rec, {"messages": msgs, **base}, ChatExample)
    for t in turns:
        history = [dict(m, weight=0) if m.get("role") == "assistant" else m for m in msgs[:t]]
        out = Record(rec.path, rec.line, rec.raw)
        yield validate_into(out, {"messages": [*history, msgs[t]], **base}, ChatExample)
