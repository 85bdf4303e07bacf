"""Test items, prompt building (few-shot fixed / nearest, system prompt) and run-directory resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import chat, write_jsonl
from tunesmith.core.errors import DatasetError, ModelError
from tunesmith.evaluate.candidates import recipe_for
from tunesmith.evaluate.config import parse_candidate
from tunesmith.evaluate.items import TestItem, fixed_shots, load_items, nearest_shots
from tunesmith.evaluate.recipe import RecipePrompter
from tunesmith.models.runs import resolve_run


def build_prompts(spec, items, train, seed, train_file=None):
    """The prompts a candidate sends, through its recipe (as run_evaluation builds them)."""
    recipe = recipe_for(spec, None, train_file, seed, 1)
    return RecipePrompter(recipe, shots=train).prepare([it.messages for it in items])


def _item(i: int, q: str, a: str) -> TestItem:
    return TestItem(i, [{"role": "system", "content": "S"}, {"role": "user", "content": q}], a, q)


def test_load_items_splits_reference_and_reports_bad_examples(tmp_path):
    good = write_jsonl(tmp_path / "t.jsonl", [chat("q1", "a1", system="S"), chat("q2", "a2")])
    items = load_items(good)
    assert [(it.question, it.reference) for it in items] == [("q1", "a1"), ("q2", "a2")]
    assert items[0].messages == [{"role": "system", "content": "S"}, {"role": "user", "content": "q1"}]
    bad = write_jsonl(tmp_path / "b.jsonl", [{"messages": [{"role": "user", "content": "no answer"}]}])
    with pytest.raises(DatasetError, match="example 1 does not end with an assistant answer"):
        load_items(bad)


def test_few_shot_prompt_puts_shots_after_the_system_prompt():
    train = [_item(i, f"train q{i}", f"train a{i}") for i in range(10)]
    items = [_item(0, "test q", "test a")]
    prompts = build_prompts(parse_candidate("few-shot:k=3"), items, train, seed=0, train_file=Path("t.jsonl"))
    msgs = prompts[0]
    assert msgs[0] == {"role": "system", "content": "S"} and msgs[-1] == {"role": "user", "content": "test q"}
    assert [m["role"] for m in msgs[1:-1]] == ["user", "assistant"] * 3
    assert fixed_shots(train, 3, seed=0) == fixed_shots(train, 3, seed=0)


def test_nearest_shots_pick_similar_training_inputs():
    train = [
        _item(0, "the pizza was delicious and hot", "pos"),
        _item(1, "stock markets fell sharply", "x"),
        _item(2, "the football match ended in a draw", "y"),
    ]
    shots = nearest_shots(train, [_item(0, "a tasty pizza with melted cheese", "?")], k=2)
    assert shots[0][-1].reference == "pos"  # the most similar comes last, next to the query


def test_system_candidate_replaces_the_system_prompt():
    prompts = build_prompts(parse_candidate("system:prompt=Be brief."), [_item(0, "q", "a")], None, 0)
    assert prompts[0] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "q"}]


def test_resolve_run_adapter_merged_and_errors(tmp_path, tiny_model_dir):
    (tmp_path / "a" / "adapter").mkdir(parents=True)
    (tmp_path / "a" / "adapter" / "adapter_config.json").write_text("{}")
    (tmp_path / "a" / "config.yaml").write_text(f"model: {tiny_model_dir}\n")
    (tmp_path / "a" / "run.json").write_text(json.dumps({"trained_tokens": 123}))
    run = resolve_run(tmp_path / "a")
    assert run.model == str(tiny_model_dir) and run.adapter == tmp_path / "a" / "adapter"
    assert run.trained_tokens == 123
    (tmp_path / "m" / "model").mkdir(parents=True)
    (tmp_path / "m" / "model" / "config.json").write_text("{}")
    merged = resolve_run(tmp_path / "m")
    assert merged.adapter is None and merged.model.endswith("model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="has neither adapter/"):
        resolve_run(tmp_path / "empty")
    with pytest.raises(ModelError, match="does not exist"):
        resolve_run(tmp_path / "missing")
