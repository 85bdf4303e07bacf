"""The continuous-batching engine on the tiny random Llama: same greedy tokens as ``generate``, rows that join
and leave the running batch at every step, per-request budgets, cancellation."""

from __future__ import annotations

import os
import threading

import pytest

from tunesmith.models.engine import Engine, EngineRequest, generate_all
from tunesmith.models.generate import generate_ids


@pytest.fixture(scope="module")
def model_tok(tiny_model_dir):
    from tunesmith.models.load import load_model_and_tokenizer

    model, tok = load_model_and_tokenizer(str(tiny_model_dir), device="cpu")
    return model.eval(), tok


def prompts(tok, texts):
    from tunesmith.models.template import prompt_ids

    return [prompt_ids(tok, [{"role": "user", "content": t}]) for t in texts]


TEXTS = ["hi", "a much longer question about the weather today and tomorrow", "ok then", "why?"]


def test_greedy_tokens_equal_plain_generate_one_at_a_time(model_tok):
    model, tok = model_tok
    ids = prompts(tok, TEXTS)
    alone = [generate_ids(model, tok, [p], 8)[0] for p in ids]
    # max_rows=2: later prompts join as earlier ones leave, at different cache widths
    together = generate_all(Engine(lambda: model, tok, max_rows=2), [EngineRequest(p, 8) for p in ids])
    assert [g.rows[0] for g in together] == [a[: len(g.rows[0])] for a, g in zip(alone, together, strict=True)]
    assert all(len(g.rows[0]) == 8 or g.rows[0][-1] in Engine(lambda: model, tok).end_ids for g in together)


def test_a_request_arriving_mid_batch_finishes_before_the_long_one(model_tok):
    model, tok = model_tok
    long_p, short_p = prompts(tok, ["tell me a long story", "short"])
    engine, order = Engine(lambda: model, tok, max_rows=4), []
    long_req = EngineRequest(long_p, 30, on_done=lambda g: order.append("long"))
    engine.add(long_req)
    for _ in range(3):
        engine.step()
    short_req = EngineRequest(short_p, 2, on_done=lambda g: order.append("short"))
    engine.add(short_req)  # joins the running batch at the next step
    steps_to_finish = 0
    while "short" not in order:
        engine.step()
        steps_to_finish += 1
    assert steps_to_finish == 1 and long_req in engine.running  # 1 token from prefill, 1 from the shared step
    while engine.running:
        engine.step()
    assert order == ["short", "long"] and len(long_req.out[0]) == 30


def test_each_request_keeps_its_own_token_budget(model_tok):
    model, tok = model_tok
    ids = prompts(tok, TEXTS[:3])
    out = generate_all(Engine(lambda: model, tok), [EngineRequest(p, n) for p, n in zip(ids, [1, 5, 9], strict=True)])
    assert [len(g.rows[0]) for g in out] == [1, 5, 9]  # the random model never says end-of-turn this early


def test_a_cancelled_request_frees_its_slot_at_the_next_step(model_tok):
    model, tok = model_tok
    a, b = prompts(tok, ["first", "second"])
    engine, cancel = Engine(lambda: model, tok, max_rows=1), threading.Event()
    first = EngineRequest(a, 100, cancel=cancel)
    engine.add(first)
    engine.step()
    second = EngineRequest(b, 3)
    assert not engine.has_room(second)
    cancel.set()
    assert engine.step() == [first] and engine.rows == 0 and engine.has_room(second)
    assert len(first.out[0]) == 2  # prefill + one step, not the 100 asked for


def test_seeded_sampling_is_reproducible_whatever_runs_beside_it(model_tok):
    model, tok = model_tok
    p, other = prompts(tok, ["roll the dice", "something else entirely"])

    def sample(with_other: bool) -> list[int]:
        reqs = [EngineRequest(p, 6, temperature=1.0, top_p=0.9, seed=7, rows=2)]
        reqs += [EngineRequest(other, 6, temperature=1.0)] if with_other else []
        return generate_all(Engine(lambda: model, tok), reqs)[0].rows

    assert sample(False) == sample(True)


def test_local_eval_generator_answers_as_generate_with_each_examples_own_latency(model_tok):
    from tunesmith.evaluate.generate import LocalGenerator
    from tunesmith.models.generate import end_token_ids, split_at_end

    model, tok = model_tok
    rows = LocalGenerator(model, tok, max_new_tokens=6)([[{"role": "user", "content": t}] for t in TEXTS])
    end_ids = end_token_ids(model, tok)
    for row, p in zip(rows, prompts(tok, TEXTS), strict=True):
        expected = split_at_end(generate_ids(model, tok, [p], 6)[0], end_ids)[0]
        assert row["output"] == tok.decode(expected, skip_special_tokens=True).strip()
        assert row["completion_tokens"] == len(expected) and row["latency_s"] > 0


SYSTEM = "You answer questions about the weather in one short sentence, politely, without any lists or markdown."


def chat_prompts(tok, texts, system=SYSTEM):
    from tunesmith.models.template import prompt_ids

    return [prompt_ids(tok, [{"role": "system", "content": system}, {"role": "user", "content": t}]) for t in texts]


def test_a_shared_system_prompt_is_prefilled_once_and_answers_stay_equal_to_generate(model_tok):
    model, tok = model_tok
    ids = chat_prompts(tok, TEXTS)
    alone = [generate_ids(model, tok, [p], 6)[0] for p in ids]
    engine = Engine(lambda: model, tok, max_rows=4)
    together = generate_all(engine, [EngineRequest(p, 6) for p in ids])  # admitted together: prefix first
    later = generate_all(engine, [EngineRequest(p, 6) for p in ids[:2]])  # then from the cache
    for g, a in zip([*together, *later], [*alone, *alone[:2]], strict=True):
        assert g.rows[0] == a[: len(g.rows[0])]
    shared = len(os.path.commonprefix(ids))
    assert engine.reused_tokens >= (len(ids) + 2) * shared - shared  # every prompt but the first reused it
    assert engine.prefilled_tokens < sum(map(len, ids))


def test_rows_with_prefix_holes_leave_and_the_batch_stays_compact(model_tok):
    model, tok = model_tok
    engine = Engine(lambda: model, tok, max_rows=8)
    generate_all(engine, [EngineRequest(p, 1) for p in chat_prompts(tok, ["seed the cache"])])
    long_p = chat_prompts(tok, ["a rather long question " * 6], system="another system prompt entirely")[0]
    short = [EngineRequest(p, 2) for p in chat_prompts(tok, ["hi", "what now?"])]  # cached system prompt
    engine.add_many([EngineRequest(long_p, 5), *short])  # one forward: cached prefixes beside a plain prompt
    while engine.running:
        engine.step()
        assert engine.mask is None or bool((engine.mask.sum(0) > 0).all())  # no column is padding in every row
    assert [len(r.out[0]) for r in short] == [2, 2]


def test_prefix_reuse_can_be_turned_off(model_tok):
    model, tok = model_tok
    engine = Engine(lambda: model, tok, prefix_cache_mb=0)
    generate_all(engine, [EngineRequest(p, 2) for p in chat_prompts(tok, TEXTS)])
    assert engine.reused_tokens == 0 and not engine.prefixes.entries


def test_engines_can_share_one_prefix_cache(model_tok):
    from tunesmith.models.prefill import PrefixCache

    model, tok = model_tok
    ids = chat_prompts(tok, TEXTS)
    shared = PrefixCache(max_bytes=2**24)
    generate_all(Engine(lambda: model, tok, prefixes=shared), [EngineRequest(ids[0], 2)])
    second = Engine(lambda: model, tok, prefixes=shared)
    [g] = generate_all(second, [EngineRequest(ids[1], 4)])
    assert second.reused_tokens > 0 and g.rows[0] == generate_ids(model, tok, [ids[1]], 4)[0][: len(g.rows[0])]
