"""Alpaca: ``{"instruction", "input", "output", "system"?, "history"?}`` as a JSON array or JSONL.

Reading: the user turn is ``instruction``, plus ``"\\n\\n" + input`` when ``input`` is not empty (the split is
kept in ``metadata["alpaca"]`` so converting back is lossless); ``history`` (LLaMA-Factory's list of
``[user, assistant]`` pairs) becomes earlier turns. Writing: only single-turn examples (optional system, one
user, one assistant, no tool calls, no weight 0) can be expressed; others are skipped and reported.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tunesmith.core.records import Record, unknown_keys, validate_into
from tunesmith.core.schema import ChatExample, PreferenceExample
from tunesmith.data.formats.source import iter_objects

KEYS = frozenset({"instruction", "input", "output", "system", "history"})
HINT = 'Alpaca records look like {"instruction": ..., "input": "", "output": ...}'


def iter_records(path: str | Path) -> Iterator[Record]:
    """Stream an Alpaca JSON array or JSONL file as Records."""
    for rec, obj in iter_objects(path):
        yield rec if obj is None else parse_object(rec, obj)


def parse_object(rec: Record, obj: dict[str, Any]) -> Record:
    """Check one Alpaca object and convert it to a ChatExample inside ``rec``."""
    rec.add_problems(unknown_keys(obj, KEYS, what="allowed"))
    for k in ("instruction", "output"):
        if k not in obj:
            rec.add_problem("missing_field", f"missing {k!r}", k, HINT)
    for k in ("instruction", "input", "output", "system"):
        if k in obj and obj[k] is not None and not isinstance(obj[k], str):
            rec.add_problem("non_string_content", f"{k} is not a string ({type(obj[k]).__name__})", k, HINT)
    history = obj.get("history") or []
    if not isinstance(history, list) or not all(isinstance(p, list) and len(p) == 2 for p in history):
        rec.add_problem("invalid_history", "history must be a list of [user, assistant] pairs", "history", HINT)
    if rec.problems:
        return rec
    return validate_into(rec, {"messages": _messages(obj, history), **_metadata(obj)}, ChatExample)


def _messages(obj: dict[str, Any], history: list[list[Any]]) -> list[dict[str, Any]]:
    msgs: list[dict[str, Any]] = []
    if obj.get("system"):
        msgs.append({"role": "system", "content": obj["system"]})
    for user, assistant in history:
        msgs += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    user = obj["instruction"] or ""
    if obj.get("input"):
        user = f"{user}\n\n{obj['input']}"
    return [*msgs, {"role": "user", "content": user}, {"role": "assistant", "content": obj["output"]}]


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    if not obj.get("input"):
        return {}
    return {"metadata": {"alpaca": {"instruction": obj["instruction"], "input": obj["input"]}}}


def to_record(example: ChatExample | PreferenceExample) -> tuple[dict[str, Any] | None, str | None]:
    """An example as an Alpaca object, or ``(None, reason)`` when Alpaca cannot express it."""
    if isinstance(example, PreferenceExample):
        return None, "preference records cannot be expressed in Alpaca"
    msgs = example.messages
    system = msgs[0].content if msgs and msgs[0].role == "system" else None
    rest = msgs[1:] if system is not None else msgs
    if len(rest) != 2 or rest[0].role != "user" or rest[1].role != "assistant":
        return (
            None,
            "multi-turn or non user/assistant conversation: Alpaca holds one user and one assistant turn",
        )
    if rest[1].tool_calls or example.tools or any(m.name for m in msgs):
        return None, "tool calls/tools/names cannot be expressed in Alpaca"
    if rest[1].weight == 0:
        return None, "an assistant turn with weight 0 cannot be expressed in Alpaca"
    user, answer = rest[0].content or "", rest[1].content or ""
    saved = (example.metadata or {}).get("alpaca")
    if isinstance(saved, dict) and f"{saved.get('instruction')}\n\n{saved.get('input')}" == user:
        out: dict[str, Any] = {"instruction": saved["instruction"], "input": saved["input"], "output": answer}
    else:
        out = {"instruction": user, "input": "", "output": answer}
    if system is not None:
        out["system"] = system
    return out, None
