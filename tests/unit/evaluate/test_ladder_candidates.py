"""The ladder's new rungs on the tiny random Llama: structured (inferred schema), RAG, and recipes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.conftest import ASSETS, chat, write_jsonl
from tunesmith.core.errors import ConfigError
from tunesmith.evaluate.config import EvalConfig, parse_candidate
from tunesmith.evaluate.infer_schema import infer_schema, unwrap_answer
from tunesmith.evaluate.recipe import FewShotRecipe, Recipe, RecipePrompter, load_recipe, save_recipe
from tunesmith.evaluate.run import run_evaluation

TEST = ASSETS / "eval" / "sentiment-test.jsonl"
TRAIN = ASSETS / "eval" / "sentiment-train.jsonl"


def test_infer_schema_json_fields_types_and_enums():
    answers = [
        json.dumps({"label": lab, "score": s, "ok": ok, "note": note})
        for lab, s, ok, note in [
            ("a", 1, True, None),
            ("b", 2.5, False, "x"),
            ("a", 3, True, "y"),
            ("b", 4, True, None),
        ]
    ]
    schema = infer_schema(answers)
    assert schema["required"] == ["label", "score", "ok", "note"] and schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["label"] == {"type": "string", "enum": ["a", "b"]}
    assert props["score"] == {"type": "number"} and props["ok"] == {"type": "boolean"}
    assert props["note"] == {"anyOf": [{"type": "string", "enum": ["x", "y"]}, {"type": "null"}]}
    jsonschema.validate({"label": "a", "score": 2, "ok": False, "note": None}, schema)


def test_infer_schema_plain_labels_and_free_text():
    assert infer_schema(["positive", "negative", "positive", "neutral"] * 3) == {
        "type": "string",
        "enum": ["negative", "neutral", "positive"],
    }
    assert infer_schema([f"a long free text answer number {i}" for i in range(10)]) is None
    assert unwrap_answer('"positive"', reference_is_json=False) == "positive"
    assert unwrap_answer('{"a": 1}', reference_is_json=True) == '{"a": 1}'


def test_parse_structured_and_rag_candidates():
    s = parse_candidate("structured")
    assert s.json_schema == "infer" and s.label == "structured"
    r = parse_candidate("rag:docs=kb.jsonl,k=2,method=hybrid")
    assert r.rag.docs == Path("kb.jsonl") and r.rag.k == 2 and r.rag.method == "hybrid" and r.label == "rag"
    assert parse_candidate("run:runs/x,json_schema=infer").label == "run:x+structured"
    with pytest.raises(ConfigError, match="needs `rag"):
        parse_candidate("rag")


def test_structured_without_training_answers_is_refused(tmp_path, tiny_model_dir):
    with pytest.raises(ValueError, match="json_schema: infer` needs `train_file"):
        EvalConfig(test_file=TEST, candidates=[parse_candidate("structured")], output_dir=tmp_path)
    free = write_jsonl(tmp_path / "free.jsonl", [chat(f"q{i}", f"a long answer about {i} things") for i in range(9)])
    cfg = EvalConfig(
        test_file=TEST,
        train_file=free,
        candidates=[parse_candidate(f"structured:model={tiny_model_dir}")],
        output_dir=tmp_path / "out",
    )
    with pytest.raises(ConfigError, match="free text, so no JSON Schema can be inferred"):
        run_evaluation(cfg)


@pytest.fixture(scope="module")
def ladder_report(tiny_model_dir, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("ladder")
    docs = write_jsonl(
        tmp / "docs.jsonl",
        [
            {"id": "movies", "text": "A film review says the love story is a great film with wondrous acting."},
            {"id": "devices", "text": "The scroll wheel of the device is finicky and users return it."},
        ],
    )
    test = write_jsonl(
        tmp / "test.jsonl",
        [
            {**chat("Is the love story film great?", '{"sentiment": "positive"}'), "metadata": {"source": "movies"}},
            {**chat("Is the scroll wheel finicky?", '{"sentiment": "negative"}'), "metadata": {"source": "devices"}},
        ],
    )
    cfg = EvalConfig(
        test_file=test,
        train_file=TRAIN,
        output_dir=tmp / "out",
        candidates=[
            parse_candidate(f"structured:model={tiny_model_dir}"),
            parse_candidate(f"rag:docs={docs},k=1,model={tiny_model_dir}"),
        ],
        max_new_tokens=12,
        bootstrap_samples=100,
    )
    run_evaluation(cfg)
    return json.loads((tmp / "out" / "report.json").read_text())


def test_structured_candidate_answers_valid_json_under_the_inferred_schema(ladder_report):
    cand = ladder_report["candidates"][0]
    schema = cand["json_schema"]
    assert schema["properties"]["sentiment"]["enum"] == ["negative", "neutral", "positive"]
    for ex in cand["examples"]:  # a random model, constrained: every answer is schema-valid
        jsonschema.validate(json.loads(ex["output"]), schema)
    assert cand["metrics"]["json_valid"]["value"] == 1.0


def test_rag_candidate_puts_passages_in_the_prompt_and_reports_hit_rate(ladder_report):
    rag = ladder_report["candidates"][1]
    assert rag["retrieval_hit_rate"] == 1.0 and rag["json_schema"] is None
    zero = ladder_report["candidates"][0]
    assert rag["cost"]["prompt_tokens_mean"] > zero["cost"]["prompt_tokens_mean"]


def test_recipe_round_trip_and_prompts(tmp_path):
    recipe = Recipe(
        name="few",
        system_prompt="Be brief.",
        few_shot=FewShotRecipe(examples=TRAIN.resolve(), k=2, seed=3),
        json_schema={"type": "object"},
    )
    save_recipe(recipe, tmp_path / "r.yaml")
    again = load_recipe(tmp_path / "r.yaml")
    assert again == recipe and again.response_format["json_schema"]["strict"] is True
    msgs = RecipePrompter(again).prepare([[{"role": "system", "content": "S"}, {"role": "user", "content": "q"}]])[0]
    assert msgs[0] == {"role": "system", "content": "Be brief."} and msgs[-1] == {"role": "user", "content": "q"}
    assert [m["role"] for m in msgs[1:-1]] == ["user", "assistant"] * 2
    with pytest.raises(ConfigError, match="does not exist"):
        load_recipe(tmp_path / "missing.yaml")
