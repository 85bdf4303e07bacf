"""OpenAI fine-tuning JSONL: chat (``{"messages": [...]}``) and preference/DPO records.

Structural problems are checked before schema validation so that every problem of a line is reported with
its own code and field (``messages.2.role``), not just the first one pydantic meets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunesmith.core.records import OPENAI_HINT, Problem, Record, unknown_keys, validate_into
from tunesmith.core.schema import (
    MESSAGE_KEYS,
    PREFERENCE_KEYS,
    ROLES,
    ChatExample,
    PreferenceExample,
)
from tunesmith.data.formats.source import iter_objects

CHAT_FIELDS = frozenset({"messages", "tools", "metadata"})


def is_preference(obj: dict[str, Any]) -> bool:
    """Whether a JSON object looks like a preference (DPO) record rather than a chat example."""
    return "preferred_output" in obj or "non_preferred_output" in obj or ("input" in obj and "messages" not in obj)


def iter_records(path: str | Path, kind: str = "chat") -> Iterator[Record]:
    """Stream an OpenAI JSONL file as Records; ``kind`` is chat, preference or auto (decided per line)."""
    for rec, obj in iter_objects(path):
        if obj is None:
            yield rec
            continue
        pref = is_preference(obj) if kind == "auto" else kind == "preference"
        yield parse_object(rec, obj, pref)


def parse_object(rec: Record, obj: dict[str, Any], preference: bool = False) -> Record:
    """Check and validate one JSON object into ``rec`` (chat or preference)."""
    problems = check_preference_object(obj) if preference else check_chat_object(obj)
    for p in problems:
        rec.add_problem(p.code, p.message, p.field, p.hint)
    if problems:
        return rec
    return validate_into(rec, obj, PreferenceExample if preference else ChatExample)


def check_chat_object(obj: Any, prefix: str = "") -> list[Problem]:
    """Every structural problem of a chat-format object (keys, message list, roles, content types)."""
    if not isinstance(obj, dict):
        return [Problem("not_json_object", "not a JSON object", prefix.rstrip(".") or None, OPENAI_HINT)]
    problems = unknown_keys(obj, CHAT_FIELDS, prefix)
    msgs = obj.get("messages")
    if not isinstance(msgs, list) or not msgs:
        what = "missing" if msgs is None else "empty" if msgs == [] else f"not a list ({type(msgs).__name__})"
        problems.append(Problem("missing_messages", f"messages list {what}", f"{prefix}messages", OPENAI_HINT))
        return problems
    for i, m in enumerate(msgs):
        problems += check_message(m, f"{prefix}messages.{i}")
    return problems


def check_message(m: Any, where: str) -> list[Problem]:
    """Structural problems of one message dict."""
    if not isinstance(m, dict):
        return [Problem("invalid_message", f"message is not an object ({type(m).__name__})", where, OPENAI_HINT)]
    out = [
        Problem(
            "unrecognized_key",
            f"unrecognized message key {k!r}",
            f"{where}.{k}",
            f"allowed keys: {', '.join(sorted(MESSAGE_KEYS))}",
        )
        for k in m
        if k not in MESSAGE_KEYS
    ]
    role = m.get("role")
    if role is None:
        out.append(Problem("missing_role", "message has no role", f"{where}.role", f"add one of {', '.join(ROLES)}"))
    elif role not in ROLES:
        out.append(
            Problem(
                "unknown_role",
                f"unrecognized role {role!r}",
                f"{where}.role",
                f"use one of {', '.join(ROLES)} (map e.g. human->user, gpt->assistant)",
            )
        )
    if "content" not in m and not m.get("tool_calls"):
        out.append(Problem("missing_content", "message has no content", f"{where}.content", 'add a "content" string'))
    elif m.get("content") is not None and not isinstance(m["content"], str):
        out.append(
            Problem(
                "non_string_content",
                f"content is not a string ({type(m['content']).__name__})",
                f"{where}.content",
                "content must be plain text (multimodal parts are not supported)",
            )
        )
    if "weight" in m and m["weight"] not in (0, 1):
        out.append(
            Problem(
                "invalid_weight",
                f"weight must be 0 or 1, got {m['weight']!r}",
                f"{where}.weight",
                "use weight 0 to skip training on an assistant message, 1 (or omit) to train",
            )
        )
    return out


def check_preference_object(obj: dict[str, Any]) -> list[Problem]:
    """Structural problems of a preference (DPO) record."""
    problems = unknown_keys(obj, PREFERENCE_KEYS, what="preference records have")
    if not isinstance(obj.get("input"), dict):
        problems.append(
            Problem(
                "missing_input",
                "preference record has no input object",
                "input",
                'add "input": {"messages": [...]} with the prompt',
            )
        )
    else:
        problems += check_chat_object(obj["input"], "input.")
    for key in ("preferred_output", "non_preferred_output"):
        val = obj.get(key)
        if not isinstance(val, list) or not val:
            problems.append(
                Problem(
                    "missing_output",
                    f"{key} is missing or not a non-empty list",
                    key,
                    f'add "{key}": [{{"role": "assistant", "content": ...}}]',
                )
            )
            continue
        for i, m in enumerate(val):
            problems += check_message(m, f"{key}.{i}")
    return problems


def to_record(example: ChatExample | PreferenceExample) -> tuple[dict[str, Any] | None, str | None]:
    """An example as an OpenAI JSONL object (always expressible)."""
    return example.to_openai(), None
