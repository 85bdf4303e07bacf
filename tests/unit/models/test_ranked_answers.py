"""Greedy structured output over a few allowed documents: the engine scores every document and answers the most
likely one (checked against a plain forward per document on the tiny random Llama), and the schemas whose
documents can be listed are recognised."""

from __future__ import annotations

import pytest

from tunesmith.models.engine import Engine, EngineRequest, generate_all
from tunesmith.models.generate import LogprobRecorder
from tunesmith.models.structured import compile_schema, finite_answers

LABELS = {"type": "string", "enum": ["positive", "negative", "neutral", "mixed"]}
OBJECT = {
    "type": "object",
    "properties": {"label": LABELS, "sure": {"type": "boolean"}},
    "required": ["label", "sure"],
    "additionalProperties": False,
}
TEXTS = ["hi", "a much longer question about the weather today and tomorrow", "ok then", "why?"]


@pytest.fixture(scope="module")
def model_tok(tiny_model_dir):
    from tunesmith.models.load import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir), device="cpu")
    return model.eval(), tok


def prompts(tok, texts, system=None):
    from tunesmith.models.template import prompt_ids

    head = [{"role": "system", "content": system}] if system else []
    return [prompt_ids(tok, [*head, {"role": "user", "content": t}]) for t in texts]


def likelihood(model, prompt: list[int], answer: list[int]) -> float:
    """Sum of the answer tokens' log probabilities after the prompt, from one plain forward."""
    import torch

    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([prompt + answer])).logits[0].float()
    logp = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
    return float(logp.gather(1, torch.tensor(answer)[:, None]).sum())


def best_answer(model, tok, prompt: list[int], texts: list[str]) -> list[int]:
    ids = [tok.encode(t, add_special_tokens=False) + [tok.eos_token_id] for t in texts]
    return max(ids, key=lambda a: likelihood(model, prompt, a))


def test_documents_of_enums_consts_booleans_objects_and_unions_are_listed():
    assert finite_answers(compile_schema(LABELS)) == ['"positive"', '"negative"', '"neutral"', '"mixed"']
    objects = finite_answers(compile_schema(OBJECT))
    assert len(objects) == 8 and objects[0] == '{"label": "positive", "sure": true}'
    union = {"anyOf": [{"const": 1}, {"type": "null"}, {"enum": [1, 2]}]}
    assert finite_answers(compile_schema(union)) == ["1", "null", "2"]
    numbers_and_booleans = {"anyOf": [{"const": 1}, {"const": True}, {"const": 0}, {"const": False}]}
    assert finite_answers(compile_schema(numbers_and_booleans)) == ["1", "true", "0", "false"]  # True == 1 in Python


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object"},  # json_object mode
        {"type": "string"},
        {**OBJECT, "required": ["label"]},  # an optional property
        {key: value for key, value in OBJECT.items() if key != "additionalProperties"},  # open object
        {"type": "string", "enum": [str(i) for i in range(65)]},  # more than the limit
    ],
)
def test_open_or_large_schemas_are_decoded_token_by_token(schema):
    assert finite_answers(compile_schema(schema)) is None


@pytest.mark.parametrize("cache_mb", [0, 64])
def test_greedy_answer_is_the_most_likely_allowed_document(model_tok, cache_mb):
    model, tok = model_tok
    grammar = compile_schema(OBJECT)
    texts = finite_answers(grammar)
    ps = prompts(tok, TEXTS, system="Answer in JSON with a label and whether you are sure.")
    engine = Engine(lambda: model, tok, max_rows=4, prefix_cache_mb=cache_mb)
    out = generate_all(engine, [EngineRequest(p, 30, grammar=grammar) for p in ps])
    assert engine.ranked == len(ps)
    for p, gen in zip(ps, out, strict=True):
        assert gen.rows[0] == best_answer(model, tok, p, texts)


def test_ranked_answers_carry_the_models_log_probabilities(model_tok):
    model, tok = model_tok
    grammar = compile_schema(LABELS)
    prompt = prompts(tok, ["how was it?"])[0]
    recorder = LogprobRecorder(top_k=2)
    [gen] = generate_all(Engine(lambda: model, tok), [EngineRequest(prompt, 10, grammar=grammar, recorder=recorder)])
    row = gen.rows[0]
    assert [s.token_id for s in gen.logprobs[0]] == row
    assert sum(s.logprob for s in gen.logprobs[0]) == pytest.approx(likelihood(model, prompt, row), abs=1e-4)


def test_sampling_a_short_budget_or_stop_strings_decode_token_by_token(model_tok):
    model, tok = model_tok
    grammar = compile_schema(LABELS)
    prompt = prompts(tok, ["how was it?"])[0]
    engine = Engine(lambda: model, tok)
    reqs = [
        EngineRequest(prompt, 10, temperature=1.0, seed=3, grammar=grammar),
        EngineRequest(prompt, 2, grammar=grammar),  # no document fits in 2 tokens
        EngineRequest(prompt, 10, grammar=grammar, stop=("x",)),
    ]
    out = generate_all(engine, reqs)
    assert engine.ranked == 0
    assert len(out[1].rows[0]) == 2


def test_a_listed_document_the_grammar_writes_otherwise_turns_ranking_off_for_that_schema(model_tok):
    model, tok = model_tok
    grammar = compile_schema({"enum": [1.0, 2]})  # listed as "1.0"; llguidance writes the number as 1
    assert finite_answers(grammar) == ["1.0", "2"]
    engine = Engine(lambda: model, tok)
    [gen] = generate_all(engine, [EngineRequest(prompts(tok, ["pick"])[0], 5, grammar=grammar)])
    assert engine.ranked == 0 and engine.answer_ids[grammar] is None  # decoded token by token, not ranked over "2"
    assert tok.decode(gen.rows[0], skip_special_tokens=True) in ("1", "2", "1.0")


def test_long_contexts_are_scored_in_smaller_forwards():
    from tunesmith.models import ranked

    rows = [(req, [1], [1]) for req in (object(), object()) for _ in range(6)]
    contexts = {id(r): [0] * 3000 for r, _, _ in rows}
    chunks = ranked.row_chunks(rows, contexts)
    assert [len(c) for c in chunks] == [2] * 6  # 2 x 3000 tokens <= RANK_TOKENS < 3 x 3000
    short = ranked.row_chunks(rows, {k: [0] * 10 for k in contexts})
    assert [len(c) for c in short] == [12]
