"""One judge model's verdicts through an OpenAI-compatible endpoint: pointwise 0-10 scores, pairwise A/B with swap.

Parsing is robust and pure: the judge may answer JSON (``{"score": 7, "reasoning": ...}``), or text like
``Score: 7``, ``7/10``, ``On a scale of 1-10: 8`` (:func:`tunesmith.core.replies.parse_score`), ``Winner: A``,
``[[B]]`` or ``tie``. Unparseable replies are kept (raw) with no score.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from typing import Any

import openai

from tunesmith.core.endpoints import call_with_retries, endpoint_error, make_client
from tunesmith.core.errors import ConfigError
from tunesmith.core.replies import parse_json, parse_score
from tunesmith.evaluate.config import JudgeSettings

_WINNER_PATTERNS = [
    re.compile(r"\[\[\s*(A|B|tie|C)\s*\]\]", re.IGNORECASE),
    re.compile(
        r"(?:winner|better|verdict|choice|preferred)\s*(?:answer|response)?\s*(?:is)?\s*[:=]?\s*\**\s*"
        r"\"?(A|B|tie)\b",
        re.IGNORECASE,
    ),
    re.compile(r"^\s*\"?(A|B|tie)\"?\s*\.?\s*$", re.IGNORECASE),
]

POINTWISE_PROMPT = """You are a strict grader. Rubric: {rubric}
Question:
{question}
Reference answer:
{reference}
Answer to grade:
{answer}
Reply with JSON only: {{"reasoning": "<one or two sentences>", "score": <integer 0-10>}}"""

PAIRWISE_PROMPT = """You compare two answers to the same question. Rubric: {rubric}
Question:
{question}
Reference answer:
{reference}
Answer A:
{a}
Answer B:
{b}
Reply with JSON only: {{"reasoning": "<one or two sentences>", "winner": "A" | "B" | "tie"}}"""


def parse_winner(text: str) -> str | None:
    """``A``, ``B`` or ``tie`` from a judge reply (JSON ``winner`` or text); None if absent."""
    obj = parse_json(text)
    if isinstance(obj, dict):
        value = obj.get("winner", obj.get("better", obj.get("choice")))
        if isinstance(value, str):
            return _norm_winner(value)
    for pattern in _WINNER_PATTERNS:
        m = pattern.search(text)
        if m:
            return _norm_winner(m.group(1))
    return None


def _norm_winner(value: str) -> str | None:
    v = value.strip().strip("\"'[]").lower()
    return {"a": "A", "b": "B", "tie": "tie", "c": "tie", "draw": "tie", "equal": "tie"}.get(v)


def combine_swapped(first: str | None, second_swapped: str | None) -> str:
    """Merge the A/B verdicts of both presentation orders (the second was asked with A and B swapped).

    Both orders agree -> that winner; they disagree (position bias) or either is a tie -> ``tie``;
    one unparseable -> the other; both unparseable -> ``unknown``.
    """
    unswap = {"A": "B", "B": "A", "tie": "tie", None: None}[second_swapped]
    if first is None and unswap is None:
        return "unknown"
    if first is None or unswap is None:
        return first or unswap or "unknown"
    return first if first == unswap else "tie"


def reasoning_of(text: str) -> str:
    """The judge's reasoning: the JSON ``reasoning`` field, else the whole reply."""
    obj = parse_json(text)
    if isinstance(obj, dict) and isinstance(obj.get("reasoning"), str):
        return obj["reasoning"]
    return text.strip()


@dataclass
class Verdict:
    """One judged item: the score or winner, the reasoning, the raw replies."""

    score: float | None = None
    winner: str | None = None
    reasoning: str = ""
    raw: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        """As a JSON-able dict."""
        return asdict(self)


class Judge:
    """Calls the judge model through :func:`tunesmith.core.endpoints.make_client` (its retry policy, EndpointError)."""

    def __init__(self, settings: JudgeSettings) -> None:
        key = os.environ.get(settings.api_key_env)
        if not key:
            raise ConfigError(
                f"judge.api_key_env: environment variable {settings.api_key_env} is not set",
                f"export {settings.api_key_env}=... (the judge endpoint's API key)",
            )
        self.settings = settings
        self.client = make_client(settings.base_url, key)

    def _ask(self, prompt: str) -> str:
        def request() -> Any:
            return self.client.chat.completions.create(
                model=self.settings.model,
                messages=[{"role": "user", "content": prompt}],
                temperature=0,
                max_tokens=self.settings.max_tokens,
            )

        try:
            resp = call_with_retries(request)
        except openai.OpenAIError as exc:
            raise endpoint_error(
                exc,
                f"judge {self.settings.base_url} model {self.settings.model!r}",
                "check judge.base_url, judge.model and the API key",
            ) from exc
        return resp.choices[0].message.content or ""

    def pointwise(self, question: str, answer: str, reference: str) -> Verdict:
        """Score ``answer`` 0-10 against the rubric and the reference."""
        reply = self._ask(
            POINTWISE_PROMPT.format(rubric=self.settings.rubric, question=question, reference=reference, answer=answer)
        )
        return Verdict(score=parse_score(reply), reasoning=reasoning_of(reply), raw=[reply])

    def pairwise(self, question: str, a: str, b: str, reference: str) -> Verdict:
        """A vs B, asked in both orders to cancel position bias; ties allowed."""
        fmt = {"rubric": self.settings.rubric, "question": question, "reference": reference}
        first = self._ask(PAIRWISE_PROMPT.format(a=a, b=b, **fmt))
        second = self._ask(PAIRWISE_PROMPT.format(a=b, b=a, **fmt))
        winner = combine_swapped(parse_winner(first), parse_winner(second))
        return Verdict(
            winner=winner,
            reasoning=reasoning_of(first) + " | swapped: " + reasoning_of(second),
            raw=[first, second],
        )
