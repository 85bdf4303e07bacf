"""Continuous batching behind the Batcher interface: base and adapter rows in one batch, same greedy answers."""

from __future__ import annotations

import pytest

from tunesmith.serve.batcher import ContinuousBatcher, GenRequest
from tunesmith.serve.inference import ModelHost, Sampling, Target, generate


@pytest.fixture(scope="module")
def adapters(tiny_model_dir, tmp_path_factory):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    paths = []
    for i in range(2):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        peft = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
        path = tmp_path_factory.mktemp(f"adapter{i}")
        peft.save_pretrained(path)
        paths.append(str(path))
    return paths


def prompt(host, base, text):
    from tunesmith.models.template import prompt_ids

    return prompt_ids(host.tokenizer(base), [{"role": "user", "content": text}])


def test_mixed_adapter_batch_equals_one_at_a_time_generate(tiny_model_dir, adapters):
    base = str(tiny_model_dir)
    targets = [Target("tiny", base), Target("a0", base, adapters[0]), Target("a1", base, adapters[1])]
    greedy = Sampling(max_tokens=6, temperature=0)
    ref_host = ModelHost(max_adapters=2, device="cpu")
    cases = [(t, prompt(ref_host, base, text)) for t in targets for text in ["hello", "a longer question here"]]
    alone = [generate(ref_host, t, [p], [greedy])[0][0].text for t, p in cases]
    batcher = ContinuousBatcher(ModelHost(max_adapters=2, device="cpu"), max_batch=8)
    try:
        futures = [batcher.submit(GenRequest(t, p, greedy)) for t, p in cases]
        together = [f.result(timeout=120)[0].text for f in futures]
        assert batcher.batches_run < 6 * len(cases)  # rows shared decode steps
    finally:
        batcher.close()
    assert together == alone
    assert len(set(alone)) > 2  # the adapters do change the answers


def test_max_tokens_per_request_and_n_choices(tiny_model_dir):
    base = str(tiny_model_dir)
    batcher = ContinuousBatcher(ModelHost(device="cpu"), max_batch=8)
    try:
        p = prompt(batcher.host, base, "count")
        budgets = [1, 4, 7]
        futures = [
            batcher.submit(GenRequest(Target("tiny", base), p, Sampling(max_tokens=b, n=2, seed=3))) for b in budgets
        ]
        outs = [f.result(timeout=120) for f in futures]
    finally:
        batcher.close()
    for budget, out in zip(budgets, outs, strict=True):
        assert len(out) == 2 and all(c.n_tokens <= budget for c in out)
        assert all(c.finish_reason == "length" or c.n_tokens < budget for c in out)


def test_a_streamed_request_sees_every_token(tiny_model_dir):
    base = str(tiny_model_dir)
    batcher = ContinuousBatcher(ModelHost(device="cpu"), max_batch=8)

    class Collect:
        def __init__(self):
            self.puts = []
            self.ended = False

        def put(self, value):
            self.puts.append(value.reshape(-1).tolist())

        def end(self):
            self.ended = True

    try:
        p = prompt(batcher.host, base, "stream this")
        s = Collect()
        [done] = batcher.submit(
            GenRequest(Target("tiny", base), p, Sampling(max_tokens=5, temperature=0), streamer=s)
        ).result(timeout=60)
    finally:
        batcher.close()
    assert s.puts[0] == p and len(s.puts) == 6 and s.ended  # the prompt, then one put per step
    assert done.n_tokens == 5


def test_prefixes_are_reused_per_adapter_and_forgotten_when_an_adapter_is_evicted(tiny_model_dir, adapters):
    from tunesmith.models.template import prompt_ids

    base = str(tiny_model_dir)
    targets = [Target("tiny", base), Target("a0", base, adapters[0]), Target("a1", base, adapters[1])]
    system = {"role": "system", "content": "Answer in one short and friendly sentence, and never use lists."}
    greedy = Sampling(max_tokens=5, temperature=0)
    ref_host = ModelHost(max_adapters=2, device="cpu")
    tok = ref_host.tokenizer(base)
    cases = [(t, prompt_ids(tok, [system, {"role": "user", "content": q}])) for q in ["hi", "why?"] for t in targets]
    alone = [generate(ref_host, t, [p], [greedy])[0][0].text for t, p in cases]
    batcher = ContinuousBatcher(ModelHost(max_adapters=1, device="cpu"), max_batch=8)
    try:
        one_by_one = [batcher.submit(GenRequest(t, p, greedy)).result(timeout=120)[0].text for t, p in cases]
        batcher.submit(GenRequest(targets[1], cases[0][1], greedy)).result(timeout=120)  # evicts a1's adapter
        engine = batcher.engines[base]
        loaded = set(batcher.host.adapters.values())
    finally:
        batcher.close()
    assert one_by_one == alone
    assert engine.reused_tokens > 0  # the second round took the system prompt from the cache
    assert {e.adapter for e in engine.prefixes.entries.values()} == {None, *loaded}  # a1's prefixes went with it


def test_bf16_weights_serve_base_and_adapter_rows_in_one_batch(tiny_model_dir, adapters):
    """`inference_dtype: bfloat16` (auto picks it where bf16 is native) serves base and adapter rows together.

    Unlike fp32, bf16 answers are not compared token for token with one-at-a-time `generate`: rounding to 8 bits
    of mantissa depends on the batch's shape, and the random tiny model's near-tied logits flip under it."""
    import torch

    base = str(tiny_model_dir)
    targets = [Target("tiny", base), Target("a0", base, adapters[0]), Target("a1", base, adapters[1])]
    greedy = Sampling(max_tokens=6, temperature=0)
    batcher = ContinuousBatcher(ModelHost(max_adapters=2, device="cpu", dtype="bfloat16"), max_batch=8)
    try:
        cases = [(t, prompt(batcher.host, base, text)) for t in targets for text in ["hello", "a longer question"]]
        futures = [batcher.submit(GenRequest(t, p, greedy)) for t, p in cases]
        answers = [f.result(timeout=120)[0] for f in futures]
        model, _ = batcher.host.bases[base]
        assert next(model.parameters()).dtype == torch.bfloat16
    finally:
        batcher.close()
    assert all(a.finish_reason in ("stop", "length") and 0 < a.n_tokens <= 6 for a in answers)
    assert len({a.text for a in answers}) > 2  # the adapters still change the answers
