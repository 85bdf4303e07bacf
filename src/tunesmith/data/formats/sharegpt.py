"""ShareGPT: ``{"conversations": [{"from": "human"|"gpt"|"system", "value": ...}], "system"?, "id"?}``.

Roles map human/user -> user, gpt/assistant/chatgpt/bard/bing/model -> assistant, system -> system. A
top-level ``system`` string becomes the first message; ``id`` is kept in ``metadata["id"]``. Writing: weights,
tool calls, tool messages and names cannot be expressed in ShareGPT; such examples are skipped and reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunesmith.core.records import Record, unknown_keys, validate_into
from tunesmith.core.schema import ChatExample, PreferenceExample
from tunesmith.data.formats.source import iter_objects

ROLE_MAP = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "model": "assistant",
    "system": "system",
}
KEYS = frozenset({"conversations", "system", "id"})
HINT = 'ShareGPT records look like {"conversations": [{"from": "human", "value": ...}, ...]}'


def iter_records(path: str | Path) -> Iterator[Record]:
    """Stream a ShareGPT JSON array or JSONL file as Records."""
    for rec, obj in iter_objects(path):
        yield rec if obj is None else parse_object(rec, obj)


def parse_object(rec: Record, obj: dict[str, Any]) -> Record:
    """Check one ShareGPT object and convert it to a ChatExample inside ``rec``."""
    rec.add_problems(unknown_keys(obj, KEYS, what="allowed"))
    turns = obj.get("conversations")
    if not isinstance(turns, list) or not turns:
        rec.add_problem("missing_messages", "conversations list missing or empty", "conversations", HINT)
        return rec
    msgs: list[dict[str, Any]] = []
    if isinstance(obj.get("system"), str) and obj["system"]:
        msgs.append({"role": "system", "content": obj["system"]})
    for i, turn in enumerate(turns):
        where = f"conversations.{i}"
        if not isinstance(turn, dict):
            rec.add_problem("invalid_message", "turn is not an object", where, HINT)
            continue
        extra = [k for k in turn if k not in ("from", "value")]
        for k in extra:
            rec.add_problem("unrecognized_key", f"unrecognized turn key {k!r}", f"{where}.{k}", HINT)
        if "from" not in turn:
            rec.add_problem("missing_role", "turn has no 'from'", f"{where}.from", HINT)
        elif turn["from"] not in ROLE_MAP:
            rec.add_problem(
                "unknown_role",
                f"unrecognized role {turn['from']!r}",
                f"{where}.from",
                f"use one of {', '.join(sorted(ROLE_MAP))}",
            )
        if "value" not in turn:
            rec.add_problem("missing_content", "turn has no 'value'", f"{where}.value", HINT)
        elif not isinstance(turn["value"], str):
            rec.add_problem("non_string_content", "value is not a string", f"{where}.value", HINT)
        if not rec.problems:
            msgs.append({"role": ROLE_MAP[turn["from"]], "content": turn["value"]})
    if rec.problems:
        return rec
    out: dict[str, Any] = {"messages": msgs}
    if "id" in obj:
        out["metadata"] = {"id": obj["id"]}
    return validate_into(rec, out, ChatExample)


def to_record(example: ChatExample | PreferenceExample) -> tuple[dict[str, Any] | None, str | None]:
    """An example as a ShareGPT object, or ``(None, reason)`` when ShareGPT cannot express it."""
    if isinstance(example, PreferenceExample):
        return None, "preference records cannot be expressed in ShareGPT"
    if example.tools or any(m.tool_calls or m.role == "tool" or m.name for m in example.messages):
        return None, "tool calls/tool messages/names cannot be expressed in ShareGPT"
    if any(m.weight is not None for m in example.messages):
        return None, "per-message weights cannot be expressed in ShareGPT"
    back = {"user": "human", "assistant": "gpt", "system": "system"}
    out: dict[str, Any] = {
        "conversations": [{"from": back[m.role], "value": m.content or ""} for m in example.messages]
    }
    if example.metadata and "id" in example.metadata:
        out["id"] = example.metadata["id"]
    return out, None
