"""Exact and near-duplicate detection that streams: MinHash signatures (datasketch) in compact numpy arrays.

Each example is reduced to normalised text (lower case, punctuation dropped, whitespace collapsed), hashed
(exact duplicates: a 64-bit hash of the roles and contents) and MinHash-ed over word-bigram shingles (bigrams,
not characters, so that templated examples sharing boilerplate are not flagged). Only the signatures are kept
(the low 16 bits of each of ``num_perm`` hash values, b-bit MinHash: 128 bytes per example at 64 permutations;
two different values match by chance with probability 2^-16, negligible for the Jaccard estimate), not the texts.
Candidates come from LSH banding done with numpy sorts (``bands`` x ``rows`` = ``num_perm``), and each
candidate pair is confirmed by its estimated Jaccard similarity, so 1M examples need ~150 MB, not gigabytes of
Python dicts (datasketch's own ``MinHashLSH`` keeps a bytes key per band per example).
"""

from __future__ import annotations

import hashlib
import re
from array import array
from dataclasses import dataclass

import numpy as np
from datasketch import MinHash

from tunesmith.data.schema import ChatExample, PreferenceExample

_PUNCT = re.compile(r"[^\w\s]+")
_SPACE = re.compile(r"\s+")


def example_text(example: ChatExample | PreferenceExample, system: bool = True) -> str:
    """The text that identifies an example: each message as ``role: content`` (preference: prompt+chosen).

    ``system=False`` leaves system messages out: a long system prompt shared by every example would otherwise
    make all of them look like near-duplicates of each other.
    """
    if isinstance(example, PreferenceExample):
        msgs = [*example.input.messages, *example.preferred_output]
    else:
        msgs = example.messages
    return "\n".join(f"{m.role}: {m.content or ''}" for m in msgs if system or m.role != "system")


def normalize(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed."""
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


def exact_key(text: str) -> int:
    """A 64-bit hash of an example's text (:func:`example_text`: same roles and contents = same key)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _bands_for(num_perm: int, threshold: float) -> tuple[int, int]:
    """The (bands, rows) split of ``num_perm`` whose LSH threshold (1/b)^(1/r) is closest below it."""
    options = [(b, num_perm // b) for b in range(1, num_perm + 1) if num_perm % b == 0]
    below = [o for o in options if (1 / o[0]) ** (1 / o[1]) <= threshold] or options[-1:]
    return min(below, key=lambda o: threshold - (1 / o[0]) ** (1 / o[1]))


@dataclass
class DuplicateGroups:
    """Clusters of item indices (sorted), split into exact-duplicate groups and near-duplicate groups."""

    exact: list[list[int]]
    near: list[list[int]]
    cluster_of: np.ndarray  # (n,) cluster id of every item: items in one exact/near group share it


class DuplicateIndex:
    """Collect examples one by one, then find exact and near-duplicate groups.

    Args:
        threshold: estimated Jaccard similarity at or above which two examples are near-duplicates.
        num_perm: MinHash permutations (32-64 keeps memory bounded).
    """

    def __init__(self, threshold: float = 0.85, num_perm: int = 64, seed: int = 1) -> None:
        self.threshold = threshold
        self.num_perm = num_perm
        self._proto = MinHash(num_perm=num_perm, seed=seed)
        self._sigs: list[np.ndarray] = []
        self._exact = array("Q")  # 8 bytes per example, not a Python int object
        self._chunk: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self._exact)

    def add(self, example: ChatExample | PreferenceExample) -> int:
        """Add one example; returns its index."""
        text = example_text(example)
        words = normalize(example_text(example, system=False)).split() or [""]
        shingles = {f"{a} {b}" for a, b in zip(words, words[1:], strict=False)} or {words[0]}
        mh = MinHash(num_perm=self.num_perm, permutations=self._proto.permutations, scheme=self._proto.scheme)
        mh.update_batch([s.encode("utf-8") for s in shingles])
        self._chunk.append((mh.hashvalues & 0xFFFF).astype(np.uint16))
        if len(self._chunk) >= 4096:
            self._flush()
        self._exact.append(exact_key(text))
        return len(self._exact) - 1

    def _flush(self) -> None:
        if self._chunk:
            self._sigs.append(np.stack(self._chunk))
            self._chunk = []

    def groups(self) -> DuplicateGroups:
        """Exact-duplicate groups and near-duplicate groups (each a sorted list of indices, size >= 2)."""
        self._flush()
        n = len(self._exact)
        exact = np.frombuffer(self._exact, dtype=np.uint64) if n else np.zeros(0, np.uint64)
        parent = np.arange(n)
        for members in _equal_runs(exact):
            _union_all(parent, members, members[0])
        exact_root = np.array([_find(parent, i) for i in range(n)])
        bands, rows = _bands_for(self.num_perm, self.threshold)
        mult = np.random.default_rng(0).integers(1, 2**61, size=rows, dtype=np.uint64) | np.uint64(1)
        for b in range(bands):
            # Band keys chunk by chunk: the signature matrix is never concatenated (that doubled peak memory).
            keys = np.concatenate(
                [(c[:, b * rows : (b + 1) * rows].astype(np.uint64) * mult).sum(axis=1) for c in self._sigs]
                or [np.zeros(0, np.uint64)]
            )
            for members in _equal_runs(keys):
                self._link_similar(parent, members)
        root = np.array([_find(parent, i) for i in range(n)])
        exact_groups = _collect(exact_root)
        near_groups = [g for g in _collect(root) if len({exact_root[i] for i in g}) > 1]
        return DuplicateGroups(exact_groups, near_groups, root)

    def _link_similar(self, parent: np.ndarray, members: np.ndarray) -> None:
        """Union candidates of one LSH bucket whose estimated Jaccard reaches the threshold."""
        sigs = self._rows(members)  # (len(members), num_perm)
        leaders = range(len(members)) if len(members) <= 32 else range(1)
        for k in leaders:
            sims = (sigs == sigs[k]).mean(axis=1)
            _union_all(parent, members[sims >= self.threshold], members[k])

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        """Signature rows ``idx``, gathered from the chunks they were stored in."""
        starts = np.cumsum([0] + [len(c) for c in self._sigs])
        chunk = np.searchsorted(starts, idx, side="right") - 1
        return np.stack([self._sigs[c][i - starts[c]] for c, i in zip(chunk, idx, strict=True)])


def _equal_runs(keys: np.ndarray) -> list[np.ndarray]:
    """Index arrays of the items sharing a key, for every key held by 2+ items."""
    if len(keys) < 2:
        return []
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(keys)]
    return [np.sort(order[s:e]) for s, e in zip(starts, ends, strict=True) if e - s > 1]


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return int(i)


def _union_all(parent: np.ndarray, members: np.ndarray, lead: int) -> None:
    root = _find(parent, int(lead))
    for m in members:
        r = _find(parent, int(m))
        if r != root:
            lo, hi = min(r, root), max(r, root)
            parent[hi] = lo
            root = lo


def _collect(roots: np.ndarray) -> list[list[int]]:
    """Groups of 2+ indices sharing a root, sorted by their first index."""
    return sorted(([int(i) for i in run] for run in _equal_runs(roots.astype(np.uint64))), key=lambda g: g[0])
