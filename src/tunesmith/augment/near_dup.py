"""Near-duplicate detection for generated text: MinHash over word 3-shingles with datasketch's LSH index."""

from __future__ import annotations

from datasketch import MinHash, MinHashLSH

from tunesmith.data.near_dup import normalize

NUM_PERM = 64


def normalise_text(text: str) -> str:
    """The data stage's normalisation (Unicode-aware: lower case, punctuation dropped, spaces collapsed)."""
    return normalize(text)


def shingles(text: str, n: int = 3) -> set[str]:
    """Word ``n``-grams of the normalised text (the whole text when shorter than ``n`` words)."""
    words = normalise_text(text).split()
    if len(words) < n:
        return {" ".join(words)}
    return {" ".join(words[i : i + n]) for i in range(len(words) - n + 1)}


def minhash(text: str) -> MinHash:
    """A MinHash signature of the text's shingles."""
    m = MinHash(num_perm=NUM_PERM, seed=1)
    for s in shingles(text):
        m.update(s.encode("utf-8"))
    return m


class NearDupIndex:
    """Texts seen so far; ``find`` names an earlier text whose estimated Jaccard similarity >= threshold.

    Exact duplicates (equal normalised text) are always found, whatever the threshold.

    Args:
        threshold: MinHash Jaccard similarity at or above which two texts are near-duplicates.
    """

    def __init__(self, threshold: float = 0.8) -> None:
        self.threshold = threshold
        self._lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self._exact: dict[str, str] = {}
        self._hashes: dict[str, MinHash] = {}

    def find(self, text: str) -> str | None:
        """The key of an indexed near-duplicate of ``text``, or None."""
        norm = normalise_text(text)
        if norm in self._exact:
            return self._exact[norm]
        m = minhash(text)
        for key in self._lsh.query(m):
            if m.jaccard(self._hashes[key]) >= self.threshold:  # LSH candidates can be false positives
                return key
        return None

    def add(self, key: str, text: str) -> None:
        """Index ``text`` under ``key`` (keys must be unique)."""
        norm = normalise_text(text)
        self._exact.setdefault(norm, key)
        if key not in self._hashes:
            m = minhash(text)
            self._hashes[key] = m
            self._lsh.insert(key, m)
