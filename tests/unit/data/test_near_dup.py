"""The vectorised MinHash and LSH grouping of data/near_dup.py against plain reference computations."""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tunesmith.core.schema import ChatExample
from tunesmith.data.near_dup import (
    DuplicateIndex,
    MinHasher,
    NearDupIndex,
    _bucket_pairs,
    merge_pairs,
    normalize,
    shingle_hash,
    shingle_words,
    shingles,
)

DOCS = ["", "hello", "hello world", "a b c a b", "é ü 東京 tokyo 😀", "x y z w v u t s"]


def _shingles(doc: str) -> set[str]:
    words = doc.split() or [""]
    return {f"{a} {b}" for a, b in zip(words, words[1:], strict=False)} or {words[0]}


def test_signatures_equal_datasketch_fed_the_same_shingle_hash():
    datasketch = pytest.importorskip("datasketch")
    try:
        reference = datasketch.MinHash(num_perm=64, seed=1, hashfunc=shingle_hash, scheme="affine32")
    except TypeError:
        pytest.skip("datasketch < 2.0 has no affine32 scheme")
    signatures = MinHasher(64, seed=1).signatures(DOCS)
    assert signatures.shape == (len(DOCS), 64) and signatures.dtype == np.uint32
    for doc, row in zip(DOCS, signatures, strict=True):
        ref = datasketch.MinHash(num_perm=64, seed=1, hashfunc=shingle_hash, scheme="affine32")
        ref.update_batch([s.encode("utf-8") for s in _shingles(doc)])
        assert reference.permutations.tolist() == ref.permutations.tolist()
        assert ref.hashvalues.tolist() == row.tolist(), doc


@pytest.mark.parametrize("n", [2, 3, 4])
def test_ngram_signatures_equal_datasketch_fed_the_reference_shingles(n):
    datasketch = pytest.importorskip("datasketch")
    try:
        datasketch.MinHash(num_perm=32, seed=1, hashfunc=shingle_hash, scheme="affine32")
    except TypeError:
        pytest.skip("datasketch < 2.0 has no affine32 scheme")
    signatures = MinHasher(32, seed=1, ngram=n).signatures([shingle_words(d) for d in DOCS])
    for doc, row in zip(DOCS, signatures, strict=True):
        ref = datasketch.MinHash(num_perm=32, seed=1, hashfunc=shingle_hash, scheme="affine32")
        ref.update_batch([s.encode("utf-8") for s in shingles(doc, n)])
        assert ref.hashvalues.tolist() == row.tolist(), (n, doc)
    assert shingles("hello world", 2) == _shingles("hello world")


def test_a_document_signature_does_not_depend_on_its_batch():
    hasher = MinHasher(32)
    alone = np.stack([hasher.signatures([d])[0] for d in DOCS])
    assert (hasher.signatures(DOCS) == alone).all()
    assert (hasher.signatures(DOCS[::-1])[::-1] == alone).all()


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_shingle_words_is_normalize_in_one_pass(text):
    assert shingle_words(text) == normalize(text)


def _example(user: str, answer: str) -> ChatExample:
    return ChatExample.model_validate(
        {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]}
    )


def test_clear_near_duplicates_are_grouped_and_distinct_examples_are_not():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(5000)]
    bases = [[rng.choice(vocab) for _ in range(150)] for _ in range(30)]
    examples = [_example(" ".join(b[:50]), " ".join(b[50:])) for b in bases]  # 0..29 distinct
    edited = list(bases[3])
    edited[120] = "changed"  # one word of 150: Jaccard ~0.97
    examples.append(_example(" ".join(edited[:50]), " ".join(edited[50:])))  # 30 ~ 3
    examples.append(examples[7])  # 31 == 7
    examples.append(_example(" ".join(bases[9][:50]).upper(), " ".join(bases[9][50:])))  # 32 ~ 9 (case)
    index = DuplicateIndex()
    for ex in examples:
        index.add(ex)
    groups = index.groups()
    assert groups.exact == [[7, 31]]
    assert groups.near == [[3, 30], [9, 32]]
    assert groups.cluster_of[30] == 3 and groups.cluster_of[31] == 7 and groups.cluster_of[5] == 5


def _union_find(n: int, pairs: list[tuple[int, int]]) -> list[int]:
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in pairs:
        a, b = find(i), find(j)
        parent[max(a, b)] = min(a, b)
    return [find(i) for i in range(n)]


def test_merge_gives_every_item_its_sets_smallest_index():
    rng = np.random.default_rng(3)
    n = 300
    i, j = rng.integers(0, n, 200), rng.integers(0, n, 200)
    roots = merge_pairs(np.arange(n), i, j)
    assert roots.tolist() == _union_find(n, list(zip(i.tolist(), j.tolist(), strict=True)))


def test_bucket_pairs_are_all_pairs_of_small_buckets_and_leader_pairs_of_big_ones():
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 40, 400).astype(np.uint64)
    weight = rng.integers(1, 4, 400)
    expected = set()
    for key in set(keys.tolist()):
        members = np.flatnonzero(keys == key).tolist()
        if weight[members].sum() <= 32:
            expected |= {(a, b) for a in members for b in members if a < b}
        else:
            expected |= {(members[0], b) for b in members[1:]}
    i, j = _bucket_pairs(keys, weight)
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected and len(i) == len(expected)


def test_normalise_and_shingles():
    assert normalize("  Great, GREAT film!! ") == "great great film"
    assert shingles("a b", n=3) == {"a b"}
    assert shingles("one two three four", n=3) == {"one two three", "two three four"}


def test_exact_and_near_duplicate_texts_are_found_and_distinct_texts_are_not():
    index = NearDupIndex(threshold=0.7)
    index.add("a", "The battery lasts all day and the screen is bright and sharp in sunlight.")
    assert index.find("the battery lasts all day, and the screen is bright and sharp in sunlight") == "a"
    assert index.find("The battery lasts all day and the screen is bright and sharp in") == "a"
    assert index.find("Delivery took three weeks and the box arrived crushed and wet.") is None
    assert index.find("sunlight in sharp and bright is screen the and day all lasts battery the") is None


def test_non_latin_texts_are_compared_by_their_words_not_collapsed_to_nothing():
    index = NearDupIndex()
    index.add("a", "Этот фильм был прекрасен от начала до конца")
    assert index.find("Мне совсем не понравилась эта книга про войну") is None
    assert index.find("этот фильм был прекрасен, от начала до конца!") == "a"
