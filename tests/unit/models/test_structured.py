"""Structured output on the tiny random Llama: llguidance's mask makes even random weights answer schema-valid
JSON, for base and adapter rows sharing one engine batch and on the static ``generate`` path."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tunesmith.models.engine import Engine, EngineRequest, generate_all
from tunesmith.models.generate import generate_rows, split_at_end
from tunesmith.models.structured import grammar_for

SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["yes", "no"]},
        "score": {"type": "integer", "minimum": 1, "maximum": 5},
        "note": {"type": "string", "maxLength": 6},
    },
    "required": ["label", "score", "note"],
    "additionalProperties": False,
}
GRAMMAR = grammar_for({"type": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA, "strict": True}})
TEXTS = ["hi", "rate this", "a much longer question about the weather", "ok"]


@pytest.fixture(scope="module")
def model_tok(tiny_model_dir, tmp_path_factory):
    """The tiny model with one random-init LoRA adapter (named "ft") loaded beside the base."""
    from peft import LoraConfig, PeftModel, get_peft_model

    from tunesmith.models.load import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir), device="cpu")
    adapter_dir = tmp_path_factory.mktemp("adapter")
    lora = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(adapter_dir)
    base, _ = load_model_and_tokenizer(str(tiny_model_dir), device="cpu")
    return PeftModel.from_pretrained(base, adapter_dir, adapter_name="ft").eval(), tok


def prompts(tok, texts):
    from tunesmith.models.template import prompt_ids

    return [prompt_ids(tok, [{"role": "user", "content": t}]) for t in texts]


def answer(tok, row, end_ids) -> dict:
    tokens, ended = split_at_end(row, end_ids)
    assert ended, tok.decode(tokens)  # the grammar ends the row once the JSON is complete
    value = json.loads(tok.decode(tokens, skip_special_tokens=True))
    jsonschema.validate(value, SCHEMA)
    return value


def test_base_and_adapter_rows_in_one_batch_all_answer_schema_valid_json(model_tok):
    model, tok = model_tok
    engine = Engine(lambda: model, tok, max_rows=8)
    reqs = [
        EngineRequest(p, 60, adapter=adapter, grammar=GRAMMAR) for p in prompts(tok, TEXTS) for adapter in (None, "ft")
    ]
    reqs.append(EngineRequest(prompts(tok, ["sample"])[0], 60, temperature=1.0, rows=3, seed=1, grammar=GRAMMAR))
    free = EngineRequest(prompts(tok, ["free text"])[0], 5)  # no grammar beside the constrained rows
    out = generate_all(engine, [*reqs, free])
    for gen in out[:-1]:
        for row in gen.rows:
            answer(tok, row, engine.end_ids)
    assert len(out[-1].rows[0]) == 5
    base_rows, ft_rows = out[0:8:2], out[1:8:2]
    assert [g.rows for g in base_rows] != [g.rows for g in ft_rows]  # the adapter really changed the answers


def test_static_generate_path_answers_schema_valid_json(model_tok):
    model, tok = model_tok
    with model.disable_adapter():
        gen = generate_rows(model, tok, prompts(tok, TEXTS[:2]), 60, grammar=GRAMMAR)
    for row in gen.rows:
        answer(tok, row, Engine(lambda: model, tok).end_ids)
