"""Infer the JSON Schema of a task's answers from its training answers (the structured-output rung).

For JSON-object answers: each field's type, an enum where a string field has few distinct values, the fields
every answer has as ``required``, no other fields. For short plain-text labels (``positive``, ``B``): a string
enum, so the constrained answer is one JSON string (``"positive"``) that scoring unwraps. Free text: None (a
schema would not constrain anything useful).
"""

from __future__ import annotations

import json
from typing import Any

MAX_ENUM = 20  # a string field with at most this many distinct values becomes an enum
MAX_LABEL_WORDS = 3


def infer_schema(answers: list[str]) -> dict[str, Any] | None:
    """The JSON Schema the training answers follow, or None when they are free text.

    Args:
        answers: the reference answers (assistant turns) of the training set.

    Returns:
        A JSON Schema (draft 2020-12 subset llguidance compiles), or None.
    """
    values = [_load(a) for a in answers]
    if answers and all(isinstance(v, dict) for v in values):
        return _object_schema(values)
    labels = sorted({a.strip() for a in answers})
    if answers and _few(labels, len(answers)) and all(len(a.split()) <= MAX_LABEL_WORDS for a in labels):
        return {"type": "string", "enum": labels}
    return None


def unwrap_answer(output: str, reference_is_json: bool) -> str:
    """The answer to score: a JSON string answer (``"positive"``) becomes its text when references are plain."""
    if reference_is_json:
        return output
    value = _load(output)
    return value if isinstance(value, str) else output


def is_json_answer(text: str) -> bool:
    """Whether a reference answer is a JSON object (scored as JSON, not unwrapped)."""
    return isinstance(_load(text), dict)


def _load(text: str) -> Any:
    try:
        return json.loads(text.strip())
    except (json.JSONDecodeError, ValueError):
        return None


def _few(distinct: list[Any], n: int) -> bool:
    return len(distinct) <= min(MAX_ENUM, max(2, n // 2))


def _object_schema(objs: list[dict[str, Any]]) -> dict[str, Any]:
    keys: dict[str, list[Any]] = {}
    for obj in objs:
        for key, value in obj.items():
            keys.setdefault(key, []).append(value)
    return {
        "type": "object",
        "properties": {key: _value_schema(vals) for key, vals in keys.items()},
        "required": [key for key, vals in keys.items() if len(vals) == len(objs)],
        "additionalProperties": False,
    }


def _value_schema(values: list[Any]) -> dict[str, Any]:
    present = [v for v in values if v is not None]
    types = sorted({_type_name(v) for v in present}) or ["null"]
    if types == ["integer", "number"]:
        types = ["number"]
    if types == ["string"]:
        distinct = sorted(set(present))
        schema: dict[str, Any] = {"type": "string"}
        if _few(distinct, len(present)):
            schema["enum"] = distinct
    elif types == ["object"]:
        schema = _object_schema(present)
    elif len(types) == 1:
        schema = {"type": types[0]}
    else:
        schema = {"type": types}
    if len(present) < len(values):  # some answers have null here
        schema = {"anyOf": [schema, {"type": "null"}]}
    return schema


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"
