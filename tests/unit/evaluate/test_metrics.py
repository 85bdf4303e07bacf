"""Every metric on known inputs gives the known value."""

from __future__ import annotations

import json
import math

import pytest

from tunesmith.evaluate import metrics as M


def test_exact_match_normalizes_case_and_space():
    assert M.exact_match("  Paris ", "paris") == 1.0
    assert M.exact_match("Paris.", "paris") == 0.0


def test_token_f1_known_value():
    # pred words: the cat sat ; ref: the cat ran -> common 2, P = 2/3, R = 2/3
    assert M.token_f1("the cat sat", "the cat ran") == pytest.approx(2 / 3)
    assert M.token_f1("", "") == 1.0
    assert M.token_f1("dog", "cat") == 0.0


def test_word_overlap_and_length_ratio():
    assert M.word_overlap("a b c d", "a b x y") == pytest.approx(0.5)
    assert M.length_ratio("one two three four", "one two") == pytest.approx(2.0)


def test_rouge_l_known_value():
    # LCS("a b c d e", "a c e f") = a c e = 3 ; P = 3/5, R = 3/4 -> F = 2PR/(P+R)
    p, r = 3 / 5, 3 / 4
    assert M.rouge_l("a b c d e", "a c e f") == pytest.approx(2 * p * r / (p + r))
    assert M.rouge_l("x", "y") == 0.0


def test_parse_json_finds_fenced_and_embedded_objects():
    assert M.parse_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert M.parse_json('Sure! {"a": 2} hope it helps') == {"a": 2}
    assert M.parse_json("not json") is None


def test_json_valid_and_field_accuracy():
    ref = '{"name": "Ada", "year": 1815, "city": "London"}'
    assert M.json_valid('{"name": "Ada"}') == 1.0
    assert M.json_valid("name: Ada") == 0.0
    assert M.field_accuracy('{"name": "ada", "year": 1815, "city": "Paris"}', ref) == pytest.approx(2 / 3)
    assert M.field_accuracy("oops", ref) == 0.0


def test_extract_label_from_json_or_text():
    assert M.extract_label('{"sentiment": "Positive"}') == "positive"
    assert M.extract_label("Negative.") == "negative"


def test_macro_f1_and_confusion_matrix():
    refs = ["pos", "pos", "neg", "neg"]
    preds = ["pos", "neg", "neg", "meh"]
    # pos: tp1 fp0 fn1 -> 2/3 ; neg: tp1 fp1 fn1 -> 1/2
    assert M.macro_f1(preds, refs) == pytest.approx((2 / 3 + 1 / 2) / 2)
    cm = M.confusion_matrix(preds, refs)
    assert cm["labels"] == ["neg", "pos"]
    assert cm["columns"] == ["neg", "pos", "(other)"]
    assert cm["matrix"] == [[1, 0, 1], [1, 1, 0]]


def test_score_example_label_accuracy_on_json_answers():
    scores = M.score_example(
        '{"sentiment": "negative"}', '{"sentiment": "negative"}', ["accuracy", "json_valid", "exact_match"]
    )
    assert scores == {"accuracy": 1.0, "json_valid": 1.0, "exact_match": 1.0}


def test_detect_task_and_auto_metrics():
    labels = ['{"sentiment": "positive"}', '{"sentiment": "negative"}'] * 3
    assert M.detect_task(labels) == "label"
    assert "json_valid" in M.choose_metrics("label", labels)
    records = [json.dumps({"name": "a", "age": i}) for i in range(6)]
    assert M.detect_task(records) == "json"
    prose = [f"The answer number {i} is a long sentence with many words" for i in range(6)]
    assert M.detect_task(prose) == "text"
    assert M.choose_metrics("text", prose)[:2] == ["token_f1", "rouge_l"]
    assert M.choose_metrics("text", prose, ["rouge_l"]) == ["rouge_l"]


def test_semantic_similarity_orders_paraphrase_above_unrelated():
    from tunesmith.evaluate.embeddings import semantic_similarity

    close, far = semantic_similarity(
        ["the cat sat on the mat", "the cat sat on the mat"],
        ["a cat was sitting on a rug", "stock prices fell sharply"],
    )
    assert 0 <= far < close <= 1
    assert not math.isnan(close)
