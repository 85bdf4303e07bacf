"""The near-duplicate index used to drop repeated variations and prompts."""

from __future__ import annotations

from tunesmith.augment.near_dup import NearDupIndex, normalise_text, shingles


def test_normalise_and_shingles():
    assert normalise_text("  Great, GREAT film!! ") == "great great film"
    assert shingles("a b") == {"a b"}
    assert shingles("one two three four") == {"one two three", "two three four"}


def test_exact_and_near_duplicates_are_found_and_distinct_texts_are_not():
    index = NearDupIndex(threshold=0.7)
    index.add("a", "The battery lasts all day and the screen is bright and sharp in sunlight.")
    assert index.find("the battery lasts all day, and the screen is bright and sharp in sunlight") == "a"
    assert index.find("The battery lasts all day and the screen is bright and sharp in") == "a"
    assert index.find("Delivery took three weeks and the box arrived crushed and wet.") is None
    assert index.find("sunlight in sharp and bright is screen the and day all lasts battery the") is None


def test_non_latin_texts_are_compared_by_their_words_not_collapsed_to_nothing():
    from tunesmith.augment.near_dup import NearDupIndex

    index = NearDupIndex()
    index.add("a", "Этот фильм был прекрасен от начала до конца")
    assert index.find("Мне совсем не понравилась эта книга про войну") is None
    assert index.find("этот фильм был прекрасен, от начала до конца!") == "a"
