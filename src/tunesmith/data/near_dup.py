"""Exact and near-duplicate detection that streams: vectorised MinHash signatures in compact numpy arrays.

Each example is reduced to normalised words (lower case, punctuation dropped), hashed (exact duplicates: a 64-bit
hash of the roles and contents) and MinHash-ed over word-bigram shingles (bigrams, not characters, so that templated
examples sharing boilerplate are not flagged). Only the signatures are kept (the low 16 bits of each of ``num_perm``
hash values, b-bit MinHash: 128 bytes per example at 64 permutations; two different values match by chance with
probability 2^-16, negligible for the Jaccard estimate), not the texts. Candidates come from LSH banding done with
numpy sorts (``bands`` x ``rows`` = ``num_perm``), and each candidate pair is confirmed by its estimated Jaccard
similarity, so 1M examples need ~150 MB, not gigabytes of Python dicts (datasketch's own ``MinHashLSH`` keeps a
bytes key per band per example). Signatures are computed a batch at a time with numpy (:class:`MinHasher`): the
shingles of a whole batch are hashed at once with a polynomial hash over their UTF-8 bytes, and the permutations are
datasketch's ``affine32`` scheme (``a * fmix32(h) + b mod 2^32``, the same seeds), applied as one ``(shingles,
num_perm)`` matrix with a per-example minimum. datasketch hashes each shingle with SHA-1 in a Python loop: measured
on this 2-core CPU (busy), ~50 us of CPU per example for normalising, the shingle set and SHA-1, against ~8 us for
the words and ~15 us for the numpy batch here. The only change from datasketch is that base hash (``shingle_hash``;
the unit tests check that datasketch fed with it gives the same signatures), so a pair near the threshold can fall
on the other side of it than before; clear duplicates are found alike. The project's one near-duplicate index:
:class:`DuplicateIndex` groups a whole file, :class:`NearDupIndex` answers text by text (augment, distill).
"""

from __future__ import annotations

import hashlib
import re
from array import array
from dataclasses import dataclass

import numpy as np

from tunesmith.core.schema import ChatExample, PreferenceExample

_PUNCT = re.compile(r"[^\w\s]+")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"\w+")  # the words normalize(text).split() yields, in one pass
_BATCH = 1024  # examples per signature batch: its (shingles, num_perm) matrix stays ~10 MB
_BIG_BUCKET = 32  # LSH buckets larger than this are checked against their first member only
_M64 = (1 << 64) - 1
_POLY = 0x9E3779B97F4A7C15  # odd, so invertible mod 2^64
_POLY_INV = pow(_POLY, -1, 1 << 64)


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


def shingle_words(text: str) -> str:
    """``normalize(text)``'s words joined by single spaces (the same string, found with one regex pass)."""
    return " ".join(_WORD.findall(text.lower()))


def shingles(text: str, n: int = 2) -> set[str]:
    """Word ``n``-grams of the normalised text, the whole text when shorter (what :class:`MinHasher` hashes)."""
    words = shingle_words(text).split()
    if len(words) < n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def exact_key(text: str) -> int:
    """A 64-bit hash of an example's text (:func:`example_text`: same roles and contents = same key)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def shingle_hash(shingle: bytes) -> int:
    """The 32-bit base hash of one shingle (pure-Python reference of what :class:`MinHasher` computes).

    A polynomial hash of the bytes (each byte + 1) mod 2^64, then MurmurHash3's 64-bit finalizer; the low
    32 bits are kept.
    """
    h = 0
    for byte in shingle:
        h = (h * _POLY + byte + 1) & _M64
    return int(_fmix64(np.array([h], np.uint64))[0] & np.uint64(0xFFFFFFFF))


def _bands_for(num_perm: int, threshold: float) -> tuple[int, int]:
    """The (bands, rows) split of ``num_perm`` whose LSH threshold (1/b)^(1/r) is closest below it."""
    options = [(b, num_perm // b) for b in range(1, num_perm + 1) if num_perm % b == 0]
    below = [o for o in options if (1 / o[0]) ** (1 / o[1]) <= threshold] or options[-1:]
    return min(below, key=lambda o: threshold - (1 / o[0]) ** (1 / o[1]))


def _fmix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer (multiplications wrap mod 2^64, as intended)."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


def _fmix32(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 32-bit finalizer, the pre-mix datasketch's affine32 scheme applies."""
    h = h ^ (h >> np.uint32(16))
    h = h * np.uint32(0x85EBCA6B)
    h = h ^ (h >> np.uint32(13))
    h = h * np.uint32(0xC2B2AE35)
    return h ^ (h >> np.uint32(16))


class MinHasher:
    """MinHash signatures of word ``n``-gram shingles, a batch of documents per numpy call.

    Args:
        num_perm: permutations (signature length).
        seed: the permutation seed (datasketch's ``affine32`` parameters for the same seed).
        ngram: words per shingle (2: bigrams, for examples; 3 for short generated texts).
    """

    def __init__(self, num_perm: int = 64, seed: int = 1, ngram: int = 2) -> None:
        self.ngram = ngram
        gen = np.random.RandomState(seed)  # drawn as datasketch.MinHash(scheme="affine32") draws them
        self.a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        self.b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
        self._pow = np.ones(1, np.uint64)  # _POLY ** i mod 2^64
        self._inv_pow = np.ones(1, np.uint64)  # _POLY_INV ** i mod 2^64

    def signatures(self, docs: list[str]) -> np.ndarray:
        """``(len(docs), num_perm)`` uint32 MinHash values of each document's shingles.

        A document is its words joined by single spaces (:func:`shingle_words`); its shingles are
        :func:`shingles` (the word ``n``-grams, or the whole document when it has fewer than ``n`` words).
        """
        data = np.frombuffer("\n".join(docs).encode("utf-8"), np.uint8)
        left, right, first = _shingle_spans(data, len(docs), self.ngram)
        h32 = (_fmix64(self._span_hashes(data, left, right)) & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        values = _fmix32(h32)[:, None] * self.a + self.b  # (shingles, num_perm), wraps mod 2^32
        return np.minimum.reduceat(values, first, axis=0)

    def _span_hashes(self, data: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Polynomial hashes of ``data[left:right]`` for every span, from one prefix sum over the batch.

        With ``C[i] = sum_{j<i} (data[j] + 1) * P^-j``, ``(C[r] - C[l]) * P^(r-1)`` is the hash of the span
        wherever it sits (all mod 2^64).
        """
        n = len(data)
        self._grow(n + 1)
        prefix = np.zeros(n + 1, np.uint64)
        np.cumsum((data.astype(np.uint64) + np.uint64(1)) * self._inv_pow[:n], out=prefix[1:])
        return (prefix[right] - prefix[left]) * self._pow[np.maximum(right - 1, 0)]

    def _grow(self, n: int) -> None:
        if len(self._pow) >= n:
            return
        size = max(n, 2 * len(self._pow))
        self._pow = np.cumprod(np.r_[1, np.full(size - 1, _POLY, np.uint64)].astype(np.uint64))
        self._inv_pow = np.cumprod(np.r_[1, np.full(size - 1, _POLY_INV, np.uint64)].astype(np.uint64))


def _shingle_spans(data: np.ndarray, n_docs: int, n: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Byte spans ``[left, right)`` of every word ``n``-gram, ordered by document, and each document's first span.

    ``data`` holds the documents joined by newlines, words separated by single spaces (UTF-8 continuation
    bytes are never 0x0A or 0x20, so the separators are found bytewise). A document of fewer than ``n`` words
    is one shingle, the whole document.
    """
    seps = np.flatnonzero((data == 0x20) | (data == 0x0A))
    starts = np.r_[0, seps + 1]
    ends = np.r_[seps, len(data)]
    doc = np.r_[0, np.cumsum(data[seps] == 0x0A)]  # (words,) document of each word
    k = n - 1
    n_words = np.bincount(doc, minlength=n_docs)
    first_word = np.r_[0, np.cumsum(n_words)[:-1]]
    same = doc[k:] == doc[: len(doc) - k]  # word w and word w + k are in one document
    short = np.flatnonzero(n_words < n)
    left = np.r_[starts[: len(starts) - k][same], starts[first_word[short]]]
    right = np.r_[ends[k:][same], ends[first_word[short] + n_words[short] - 1]]
    order = np.argsort(np.r_[doc[: len(doc) - k][same], short], kind="stable")
    counts = np.maximum(n_words - k, 1)  # shingles per document
    first = np.r_[0, np.cumsum(counts)[:-1]]
    return left[order], right[order], first


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
        self._hasher = MinHasher(num_perm, seed)
        self._sigs: list[np.ndarray] = []  # (rows, num_perm) uint16 chunks, one per batch
        self._exact = array("Q")  # 8 bytes per example, not a Python int object
        self._pending: list[str] = []

    def __len__(self) -> int:
        return len(self._exact)

    def add(self, example: ChatExample | PreferenceExample) -> int:
        """Add one example; returns its index."""
        self._exact.append(exact_key(example_text(example)))
        self._pending.append(shingle_words(example_text(example, system=False)))
        if len(self._pending) >= _BATCH:
            self._flush()
        return len(self._exact) - 1

    def _flush(self) -> None:
        if self._pending:
            self._sigs.append((self._hasher.signatures(self._pending) & 0xFFFF).astype(np.uint16))
            self._pending = []

    def groups(self) -> DuplicateGroups:
        """Exact-duplicate groups and near-duplicate groups (each a sorted list of indices, size >= 2)."""
        self._flush()
        n = len(self._exact)
        exact = np.frombuffer(self._exact, dtype=np.uint64) if n else np.zeros(0, np.uint64)
        exact_root = _run_first(exact)  # (n,) smallest index with the same exact key
        reps = np.flatnonzero(exact_root == np.arange(n))  # one item per exact group: same signature
        weight = np.bincount(exact_root, minlength=n)[reps]  # items each representative stands for
        root = exact_root.copy()
        bands, rows = _bands_for(self.num_perm, self.threshold)
        mult = np.random.default_rng(0).integers(1, 2**61, size=rows, dtype=np.uint64) | np.uint64(1)
        for b in range(bands):
            keys = self._band_keys(reps, b * rows, rows, mult)
            i, j = _bucket_pairs(keys, weight)
            i, j = reps[i], reps[j]
            similar = self._similar(i, j)
            root = merge_pairs(root, i[similar], j[similar])
        exact_groups = _collect(exact_root)
        near_groups = [g for g in _collect(root) if len({int(exact_root[i]) for i in g}) > 1]
        return DuplicateGroups(exact_groups, near_groups, root)

    def _band_keys(self, idx: np.ndarray, col: int, rows: int, mult: np.ndarray) -> np.ndarray:
        """One 64-bit key per item of ``idx`` for the band of signature columns ``col:col+rows``."""
        keys = np.empty(len(idx), np.uint64)
        for start, stop, chunk, offsets in self._by_chunk(idx):
            band = chunk[offsets, col : col + rows].astype(np.uint64)
            keys[start:stop] = (band * mult).sum(axis=1)
        return keys

    def _by_chunk(self, idx: np.ndarray):
        """``(start, stop, chunk, rows)`` per stored chunk, for a sorted index array ``idx``."""
        first = np.r_[0, np.cumsum([len(c) for c in self._sigs])]  # index of each chunk's first row
        bounds = np.searchsorted(idx, first)
        for c, chunk in enumerate(self._sigs):
            start, stop = int(bounds[c]), int(bounds[c + 1])
            if stop > start:
                yield start, stop, chunk, idx[start:stop] - first[c]

    def _similar(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Whether each candidate pair's estimated Jaccard similarity reaches the threshold."""
        out = np.zeros(len(i), bool)
        for start in range(0, len(i), 1 << 16):  # bounded memory: 64k pairs of rows at a time
            a, b = i[start : start + (1 << 16)], j[start : start + (1 << 16)]
            out[start : start + len(a)] = (self._rows(a) == self._rows(b)).mean(axis=1) >= self.threshold
        return out

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        """Signature rows ``idx`` (any order), gathered from the chunks they were stored in."""
        order = np.argsort(idx, kind="stable")
        out = np.empty((len(idx), self.num_perm), np.uint16)
        for start, stop, chunk, offsets in self._by_chunk(idx[order]):
            out[order[start:stop]] = chunk[offsets]
        return out


class NearDupIndex:
    """Texts added one at a time; :meth:`find` names an earlier one whose estimated Jaccard similarity >= threshold.

    For generated text checked as it arrives (augment, distill). The same MinHash (word 3-grams by default:
    short paraphrases share bigrams by chance) and LSH banding; exact duplicates (normalised) are always found.

    Args:
        threshold: estimated Jaccard similarity at or above which two texts are near-duplicates.
        num_perm: MinHash permutations.
        ngram: words per shingle.
    """

    def __init__(self, threshold: float = 0.8, num_perm: int = 64, ngram: int = 3) -> None:
        self.threshold = threshold
        self._hasher = MinHasher(num_perm, ngram=ngram)
        self._bands, self._rows = _bands_for(num_perm, threshold)
        self._buckets: dict[tuple[int, bytes], list[str]] = {}
        self._exact: dict[str, str] = {}
        self._sigs: dict[str, np.ndarray] = {}

    def find(self, text: str) -> str | None:
        """The key of an indexed near-duplicate of ``text``, or None."""
        words = shingle_words(text)
        if words in self._exact:
            return self._exact[words]
        sig = self._hasher.signatures([words])[0]
        for band in range(self._bands):
            for key in self._buckets.get(self._bucket(sig, band), []):
                if (self._sigs[key] == sig).mean() >= self.threshold:  # buckets hold false positives too
                    return key
        return None

    def add(self, key: str, text: str) -> None:
        """Index ``text`` under ``key`` (keys must be unique)."""
        words = shingle_words(text)
        self._exact.setdefault(words, key)
        if key in self._sigs:
            return
        sig = self._sigs[key] = self._hasher.signatures([words])[0]
        for band in range(self._bands):
            self._buckets.setdefault(self._bucket(sig, band), []).append(key)

    def _bucket(self, sig: np.ndarray, band: int) -> tuple[int, bytes]:
        return band, sig[band * self._rows : (band + 1) * self._rows].tobytes()


def _run_first(keys: np.ndarray) -> np.ndarray:
    """For every item, the smallest index holding the same key."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    new_run = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]] if len(keys) else np.zeros(0, bool)
    first = order[np.flatnonzero(new_run)][np.cumsum(new_run) - 1]
    out = np.empty(len(keys), np.int64)
    out[order] = first
    return out


def _bucket_pairs(keys: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Candidate pairs ``(i, j)``, ``i < j``, of items sharing a key (an LSH bucket).

    A bucket of up to ``_BIG_BUCKET`` items (counting each item ``weight`` times) gives all its pairs, a
    larger one the pairs of its first item with the others.
    """
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    new_run = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]] if len(keys) else np.zeros(0, bool)
    run = np.cumsum(new_run) - 1
    starts = np.flatnonzero(new_run)
    length = np.diff(np.r_[starts, len(keys)])[run]  # (items,) members of the item's bucket
    size = np.add.reduceat(weight[order], starts)[run] if len(keys) else length
    pos = np.arange(len(keys)) - starts[run]
    small = np.flatnonzero((length > 1) & (size <= _BIG_BUCKET))
    pairs_i, pairs_j = [], []
    for d in range(1, _BIG_BUCKET):
        small = small[pos[small] + d < length[small]]
        if not len(small):
            break
        pairs_i.append(order[small])
        pairs_j.append(order[small + d])
    big = np.flatnonzero((size > _BIG_BUCKET) & (pos > 0))
    pairs_i.append(order[starts[run[big]]])
    pairs_j.append(order[big])
    return np.concatenate(pairs_i), np.concatenate(pairs_j)


def merge_pairs(root: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Union the pairs ``(i, j)`` into the forest ``root``; every item ends pointing at its set's smallest index.

    Hook-and-compress in numpy: each round hooks the larger root of every pair under the smaller one, then
    jumps pointers until each item points at a root; it stops when no pair spans two sets.
    """
    root = root.copy()
    while len(i):
        ri, rj = root[i], root[j]
        span = ri != rj
        if not span.any():
            break
        ri, rj = ri[span], rj[span]
        np.minimum.at(root, np.maximum(ri, rj), np.minimum(ri, rj))
        while True:
            jumped = root[root]
            if np.array_equal(jumped, root):
                break
            root = jumped
        i, j = i[span], j[span]
    return root


def _collect(roots: np.ndarray) -> list[list[int]]:
    """Groups of 2+ indices sharing a root, sorted by their first index."""
    order = np.argsort(roots, kind="stable")
    sorted_roots = roots[order]
    new_run = np.r_[True, sorted_roots[1:] != sorted_roots[:-1]] if len(roots) else np.zeros(0, bool)
    bounds = np.r_[np.flatnonzero(new_run), len(roots)]
    groups = [order[s:e].tolist() for s, e in zip(bounds[:-1], bounds[1:], strict=True) if e - s > 1]
    return sorted(groups, key=lambda g: g[0])
