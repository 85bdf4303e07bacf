"""The batching queue and shared-base adapters on the tiny random Llama."""

from __future__ import annotations

import pytest

from tunesmith.serve.batcher import Batcher, GenRequest
from tunesmith.serve.inference import ModelHost, Sampling, Target


@pytest.fixture(scope="module")
def batcher(tiny_model_dir):
    b = Batcher(ModelHost(max_adapters=1, device="cpu"), max_batch=8, window_ms=50)
    yield b
    b.close()


def prompts(batcher, base, texts):
    from tunesmith.models.template import prompt_ids

    tok = batcher.call(lambda host: host.tokenizer(base)).result(timeout=60)
    return [prompt_ids(tok, [{"role": "user", "content": t}]) for t in texts]


def test_concurrent_greedy_requests_batch_together_and_match_one_by_one(batcher, tiny_model_dir):
    base = str(tiny_model_dir)
    target = Target("tiny", base)
    ids = prompts(batcher, base, ["hi", "a much longer question about the weather today", "ok then"])
    greedy = Sampling(max_tokens=6, temperature=0)
    alone = [batcher.submit(GenRequest(target, p, greedy)).result(timeout=60)[0].text for p in ids]
    before = batcher.batches_run
    futures = [batcher.submit(GenRequest(target, p, greedy)) for p in ids]
    together = [f.result(timeout=60)[0].text for f in futures]
    assert together == alone  # left padding does not change greedy outputs
    assert batcher.batches_run - before < len(ids)  # at least two requests shared a forward pass


def test_token_budget_n_and_usage(batcher, tiny_model_dir):
    [p] = prompts(batcher, str(tiny_model_dir), ["count"])
    out = batcher.submit(
        GenRequest(Target("tiny", str(tiny_model_dir)), p, Sampling(max_tokens=3, n=2, seed=1))
    ).result(timeout=60)
    assert len(out) == 2 and all(c.n_tokens <= 3 for c in out)
    assert all(c.finish_reason in ("stop", "length") for c in out)


def test_adapters_share_one_base_and_the_lru_evicts(batcher, tiny_model_dir, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths = []
    for i in range(2):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        peft = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"], init_lora_weights=False))
        peft.save_pretrained(tmp_path / f"a{i}")
        paths.append(str(tmp_path / f"a{i}"))
    base = str(tiny_model_dir)
    [p] = prompts(batcher, base, ["hello"])
    for path in paths:
        out = batcher.submit(GenRequest(Target("ft", base, path), p, Sampling(max_tokens=2, temperature=0)))
        assert out.result(timeout=60)[0].n_tokens >= 1
    host = batcher.host
    assert len(host.bases) == 1 and list(k[1] for k in host.adapters) == [paths[1]]  # a0 evicted
    assert len(host.bases[base][0].peft_config) == 1
    # Deleting the last adapter (DELETE /v1/models) leaves a working plain base model behind.
    greedy = Sampling(max_tokens=2, temperature=0)
    base_alone = batcher.submit(GenRequest(Target("tiny", base), p, greedy)).result(timeout=60)[0].text
    batcher.call(lambda h: h.unload(paths[1])).result(timeout=60)
    assert not host.adapters and not hasattr(host.bases[base][0], "peft_config")
    again = batcher.submit(GenRequest(Target("tiny", base), p, greedy)).result(timeout=60)[0].text
    assert again == base_alone


def test_greedy_with_n_choices_repeats_the_one_greedy_answer(batcher, tiny_model_dir):
    [p] = prompts(batcher, str(tiny_model_dir), ["pick one"])
    target = Target("tiny", str(tiny_model_dir))
    out = batcher.submit(GenRequest(target, p, Sampling(max_tokens=3, n=3, temperature=0))).result(timeout=60)
    assert len(out) == 3 and len({c.text for c in out}) == 1


def test_torch_threads_leave_one_usable_core_unless_set():
    import os

    from tunesmith.serve.engines import inference_threads, usable_cores

    assert 1 <= usable_cores() <= (os.cpu_count() or 1)
    assert inference_threads(0) == max(1, usable_cores() - 1)
    assert inference_threads(3) == 3
