"""Judge reply parsing (pure): JSON, `Score: 7` text, A/B verdicts and the position-bias swap."""

from __future__ import annotations

import pytest

from tunesmith.core.replies import parse_score
from tunesmith.evaluate.judge_verdicts import combine_swapped, parse_winner, reasoning_of


@pytest.mark.parametrize(
    "reply,score",
    [
        ('{"reasoning": "fine", "score": 7}', 7.0),
        ('```json\n{"score": "8"}\n```', 8.0),
        ("The answer is mostly right.\nScore: 6", 6.0),
        ("Rating: **9/10**", 9.0),
        ("I'd give it 4/10 because it misses a field.", 4.0),
        ("[[5]]", 5.0),
        ("3", 3.0),
        ('{"score": 14}', 10.0),
        ("On a scale of 0-10: 8", 8.0),
        ("Score (0 to 10): 2", 2.0),
        ("I rate it 7 out of 10.", 7.0),
        ("no number here", None),
    ],
)
def test_parse_score(reply, score):
    assert parse_score(reply) == score


@pytest.mark.parametrize(
    "reply,winner",
    [
        ('{"reasoning": "A is right", "winner": "A"}', "A"),
        ('{"winner": "tie"}', "tie"),
        ("Both fine. Winner: B", "B"),
        ("My verdict: [[A]]", "A"),
        ("tie", "tie"),
        ("cannot decide", None),
    ],
)
def test_parse_winner(reply, winner):
    assert parse_winner(reply) == winner


def test_combine_swapped_cancels_position_bias():
    assert combine_swapped("A", "B") == "A"  # A first, then (swapped) B = the same answer wins
    assert combine_swapped("A", "A") == "tie"  # always the first position: position bias -> tie
    assert combine_swapped("tie", "A") == "tie"
    assert combine_swapped(None, "A") == "B"
    assert combine_swapped(None, None) == "unknown"


def test_reasoning_is_kept():
    assert reasoning_of('{"reasoning": "exact", "score": 10}') == "exact"
    assert reasoning_of("Score: 2 - wrong label") == "Score: 2 - wrong label"
