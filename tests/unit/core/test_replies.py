"""One judge-score parser for both scales: evaluation clips to 0-10, distillation rejects what is outside 1-10."""

from __future__ import annotations

import pytest

from tunesmith.core.replies import parse_json, parse_score


@pytest.mark.parametrize(
    ("reply", "clipped", "strict"),
    [
        ('{"score": 7, "reasoning": "ok"}', 7.0, 7.0),
        ('{"rating": "8"}', 8.0, 8.0),
        ("Score (1-10): 6", 6.0, 6.0),
        ('{"score": 14}', 10.0, None),
        ("0", 1.0, None),
        ("no number", None, None),
    ],
)
def test_one_parser_two_policies(reply, clipped, strict):
    assert parse_score(reply, low=1, high=10) == clipped
    assert parse_score(reply, low=1, high=10, clip=False) == strict


def test_parse_json_finds_the_value_in_a_fence_or_in_prose():
    assert parse_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json('Here it is: {"a": [1, 2]} done') == {"a": [1, 2]}
    assert parse_json("[1, 2]") == [1, 2] and parse_json("nothing") is None
