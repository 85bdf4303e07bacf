"""Prefill planning for the engine: reuse of cached prompt prefixes, and grouping of admitted prompts.

Prefix reuse: the keys and values of a prompt's first ``k`` tokens depend on those ``k`` tokens only (causal
attention), so the cache of any earlier prompt, cut to the length it shares with a new prompt, is the new
prompt's cache for that part. :class:`PrefixCache` keeps recent prompts' caches per adapter (LRU, bounded in
bytes) and finds the longest shared prefix; only the rest of the prompt is prefilled. A shared system prompt
or few-shot block is then computed once per adapter, not once per request.

Grouping: prompts admitted together are prefilled in left-padded forwards; padding costs real compute on CPU,
and each extra forward costs one read of the weights. :func:`plan_groups` splits the prompts, sorted by length,
into the groups that cost least under that model.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

# One forward's fixed cost in prompt tokens: on the 2-core AMD EPYC (fp32, SmolLM2-135M, 1 thread) a 1-token
# forward took ~50 ms and each further prompt token ~3 ms (docs/generation.md); a padded token costs as much.
FORWARD_COST_TOKENS = 16
# Shorter shared prefixes are prefilled again: the copy and the bookkeeping are not worth a few tokens.
MIN_PREFIX_TOKENS = 8


@dataclass
class PrefixEntry:
    """One cached prompt: its adapter, its token ids and its keys/values per layer, (1, heads, len, dim)."""

    adapter: str | None
    ids: tuple[int, ...]
    layers: list[tuple[Any, Any]]
    nbytes: int


class PrefixCache:
    """Recent prompts' KV caches per adapter, least recently used dropped beyond ``max_bytes``."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes, self.nbytes = max_bytes, 0
        self.entries: OrderedDict[tuple[str | None, tuple[int, ...]], PrefixEntry] = OrderedDict()

    def longest(self, adapter: str | None, prompt: list[int]) -> tuple[PrefixEntry | None, int]:
        """The entry sharing the longest prefix with ``prompt`` (one token always left to prefill), and its length."""
        best, best_k, limit = None, 0, len(prompt) - 1
        if limit < MIN_PREFIX_TOKENS:
            return None, 0
        for entry in self.entries.values():
            if entry.adapter == adapter and entry.ids[0] == prompt[0]:
                k = shared_length(entry.ids, prompt, limit)
                if k > best_k:
                    best, best_k = entry, k
        if best is None or best_k < MIN_PREFIX_TOKENS:
            return None, 0
        self.entries.move_to_end((best.adapter, best.ids))
        return best, best_k

    def add(self, adapter: str | None, ids: list[int], layers: list[tuple[Any, Any]]) -> None:
        """Keep a prompt's cache (``layers``: contiguous (1, heads, len(ids), dim) keys and values per layer)."""
        key = (adapter, tuple(ids))
        if key in self.entries or not ids:
            return
        nbytes = sum(k.nbytes + v.nbytes for k, v in layers)
        if nbytes > self.max_bytes:
            return
        self.entries[key] = PrefixEntry(adapter, key[1], layers, nbytes)
        self.nbytes += nbytes
        while self.nbytes > self.max_bytes:
            self.nbytes -= self.entries.popitem(last=False)[1].nbytes

    def retain(self, adapters: set[str | None]) -> None:
        """Forget the prefixes of adapters not in ``adapters`` (unloaded: a new adapter may reuse the name)."""
        for key in [k for k in self.entries if k[0] not in adapters]:
            self.nbytes -= self.entries.pop(key).nbytes


def shared_length(a: tuple[int, ...] | list[int], b: list[int], limit: int) -> int:
    """How many leading tokens ``a`` and ``b`` share, at most ``limit``."""
    n = min(len(a), len(b), limit)
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def common_prefix(prompts: list[list[int]]) -> int:
    """How many leading tokens all ``prompts`` share (one token of the shortest always left over)."""
    first = prompts[0]
    k = min(len(p) for p in prompts) - 1
    for p in prompts[1:]:
        k = shared_length(first, p, k)
    return max(k, 0)


def plan_groups(lengths: list[int], fixed: int = FORWARD_COST_TOKENS) -> list[list[int]]:
    """Split prompts (by index) into left-padded forwards of least total cost, cost = ``fixed`` + rows x width.

    Prompts are sorted by length, so each group is a run of similar lengths (dynamic programming, O(n^2)).
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    best = [0] + [float("inf")] * len(order)  # best[j]: cheapest plan for the j shortest prompts
    cut = [0] * (len(order) + 1)
    for j in range(1, len(order) + 1):
        for i in range(j):
            cost = best[i] + fixed + (j - i) * lengths[order[j - 1]]
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups, j = [], len(order)
    while j:
        groups.append(order[cut[j] : j])
        j = cut[j]
    return groups[::-1]


def past_cache(hits: list[tuple[Any, int]]) -> Any:
    """A DynamicCache of each row's cached prefix (``entry``'s first ``k`` tokens; none: zeros), left-padded."""
    import torch
    from transformers import DynamicCache

    width = max(k for _, k in hits)
    ref = next(e for e, _ in hits if e is not None).layers
    layers = []
    for i in range(len(ref)):
        keys = [left_pad(e.layers[i][0][..., :k, :] if e else ref[i][0][..., :0, :], width) for e, k in hits]
        values = [left_pad(e.layers[i][1][..., :k, :] if e else ref[i][1][..., :0, :], width) for e, k in hits]
        layers.append((torch.cat(keys), torch.cat(values)))
    return DynamicCache(ddp_cache_data=layers)


def left_pad(x: Any, width: int) -> Any:
    """Zero-pad a (rows, heads, seq, dim) cache tensor on the left of its sequence axis to ``width``."""
    import torch

    return torch.nn.functional.pad(x, (0, 0, width - x.shape[-2], 0))
