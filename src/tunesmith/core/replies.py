"""What a model's reply says: the JSON value in it, and the score an LLM judge gives.

One score parser serves evaluation's judge (0-10, clipped) and distillation's answer filter (1-10, out of range
rejected); it lives below both stages (evaluate and augment are one layer and must not import each other). Judges
often restate the scale ("On a scale of 1-10: 8", "Score (0-10): 7"), so the scale is removed before any
number is read: the first number of such a reply is the scale, not the score.
"""

from __future__ import annotations

import json
import re
from typing import Any

NUMBER = r"(\d+(?:\.\d+)?)"
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
_SCORE_KEYS = ("score", "rating", "grade")
# "1-10", "0 to 10", "(1–10)", "from 1 (useless) to 10 (perfect)": the scale, not a score.
_SCALE = re.compile(r"\(?\b(?:from\s+)?[01]\s*(?:\([^)]*\)\s*)?(?:-|–|to)\s*10\b(?:\s*\([^)]*\))?\)?", re.IGNORECASE)
_SCORE_PATTERNS = [
    re.compile(rf"(?:score|rating|grade)[\"'*\s]*[:=]?[\"'*\s]*{NUMBER}", re.IGNORECASE),
    re.compile(rf"{NUMBER}\s*(?:/|out\s+of)\s*10\b", re.IGNORECASE),
    re.compile(rf"\[\[\s*{NUMBER}\s*\]\]"),
    re.compile(rf"^\s*{NUMBER}\s*\.?\s*$"),
    re.compile(rf"(?<![\d.]){NUMBER}"),  # last resort: the first number left once the scale is gone
]


def find_score(text: str) -> float | None:
    """The score a judge's reply gives, as written (callers clip or range-check it); None if it has none.

    Tried in order on the reply without its scale: ``score/rating/grade: N`` (JSON keys included),
    ``N/10`` or ``N out of 10``, ``[[N]]``, a bare number, then the first number.
    """
    text = _SCALE.sub(" ", text).strip()
    for pattern in _SCORE_PATTERNS:
        match = pattern.search(text)
        if match:
            return float(match.group(1))
    return None


def parse_json(text: str) -> Any | None:
    """The JSON value in ``text`` (whole text, a ```json fence, or the first ``{...}``), else None."""
    candidates = [text.strip()]
    candidates += [m.strip() for m in _FENCE.findall(text)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for c in candidates:
        try:
            return json.loads(c)
        except (json.JSONDecodeError, ValueError):
            continue
    return None


def parse_score(text: str, low: float = 0.0, high: float = 10.0, clip: bool = True) -> float | None:
    """A judge's score on the scale ``low..high``: a JSON ``score``/``rating``/``grade``, else :func:`find_score`.

    Args:
        text: the judge's reply.
        low: the scale's lowest score.
        high: the scale's highest score.
        clip: clip a score outside the scale to it (evaluation), instead of returning None (distillation).

    Returns:
        The score, or None when the reply has none (or, with ``clip=False``, one outside the scale).
    """
    obj = parse_json(text)
    values = [obj.get(key) for key in _SCORE_KEYS] if isinstance(obj, dict) else []
    score = next((float(v) for v in values if _is_number(v)), None)
    if score is None:
        score = find_score(text)
    if score is None:
        return None
    if clip:
        return min(high, max(low, score))
    return score if low <= score <= high else None


def _is_number(value: Any) -> bool:
    """A JSON number (not a bool) or a string holding only a number."""
    if isinstance(value, str):
        return re.fullmatch(r"\s*\d+(\.\d+)?\s*", value) is not None
    return isinstance(value, int | float) and not isinstance(value, bool)
