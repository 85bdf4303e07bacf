"""Prefill planning: cached prompt prefixes (lookup, byte budget, adapters) and the grouping of admitted prompts."""

from __future__ import annotations

import pytest

from tunesmith.models.prefill import MIN_PREFIX_TOKENS, PrefixCache, common_prefix, plan_groups


def layers(n_tokens: int, n_layers: int = 2):
    import torch

    return [(torch.zeros(1, 2, n_tokens, 4), torch.zeros(1, 2, n_tokens, 4)) for _ in range(n_layers)]


def test_the_longest_shared_prefix_is_found_per_adapter_and_one_token_is_always_left():
    cache = PrefixCache(max_bytes=10**6)
    system = list(range(100, 130))
    cache.add(None, [*system, 1, 2, 3], layers(33))
    cache.add(None, [*system, 1, 2, 9, 9], layers(34))
    cache.add("a", [*system, 1, 2, 3, 4], layers(34))
    entry, k = cache.longest(None, [*system, 1, 2, 3, 4, 5])
    assert k == 33 and entry.ids == (*system, 1, 2, 3)
    assert cache.longest(None, [*system, 1, 2, 3])[1] == 32  # the last token is prefilled for its logits
    assert cache.longest("a", [*system, 7])[1] == 30 and cache.longest("b", [*system, 7]) == (None, 0)
    assert cache.longest(None, system[: MIN_PREFIX_TOKENS - 1] + [5, 5])[0] is None  # too short to pay


def test_the_cache_keeps_to_its_byte_budget_and_forgets_unloaded_adapters():
    one = sum(k.nbytes + v.nbytes for k, v in layers(20))
    cache = PrefixCache(max_bytes=2 * one)
    for first in (1, 2, 3):
        cache.add(None, [first] * 20, layers(20))
    assert [e.ids[0] for e in cache.entries.values()] == [2, 3] and cache.nbytes == 2 * one  # oldest dropped
    cache.add("gone", [4] * 20, layers(20))
    cache.retain({None})
    assert all(e.adapter is None for e in cache.entries.values()) and cache.nbytes <= 2 * one
    PrefixCache(max_bytes=0).add(None, [1] * 20, layers(20))  # 0: nothing kept, no error


def test_common_prefix_leaves_a_token_of_the_shortest_prompt():
    assert common_prefix([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 3]]) == 2
    assert common_prefix([[1, 2], [3, 4]]) == 0


@pytest.mark.parametrize(
    ("lengths", "groups"),
    [
        ([30, 31, 32], [[0, 1, 2]]),  # padding of 3 tokens is cheaper than a second forward
        ([10, 100, 12], [[0, 2], [1]]),  # a long prompt is prefilled apart from short ones
        ([5], [[0]]),
    ],
)
def test_plan_groups_splits_where_padding_costs_more_than_a_forward(lengths, groups):
    assert plan_groups(lengths, fixed=16) == groups
