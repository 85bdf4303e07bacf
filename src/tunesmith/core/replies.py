"""The score in an LLM judge's reply: one parser for evaluation's judge and distillation's answer filter.

It lives below both stages (evaluate and augment are one layer and must not import each other). Judges
often restate the scale ("On a scale of 1-10: 8", "Score (0-10): 7"), so the scale is removed before any
number is read: the first number of such a reply is the scale, not the score.
"""

from __future__ import annotations

import re

NUMBER = r"(\d+(?:\.\d+)?)"
# "1-10", "0 to 10", "(1–10)", "from 1 (useless) to 10 (perfect)": the scale, not a score.
_SCALE = re.compile(
    r"\(?\b(?:from\s+)?[01]\s*(?:\([^)]*\)\s*)?(?:-|–|to)\s*10\b(?:\s*\([^)]*\))?\)?", re.IGNORECASE
)
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
