"""Collators: assistant-only targets survive batching; packed examples never attend to each other."""

import pytest
import torch

from tests.unit.models.test_template import CONVO, LLAMA3_LIKE
from tunesmith.core.schema import ChatExample
from tunesmith.models.load import CHATML_TEMPLATE
from tunesmith.models.template import IGNORE_INDEX, tokenize_example
from tunesmith.train.collate import PackingCollator, PaddingCollator, pack_rows

SHORT = ChatExample.model_validate(
    {
        "messages": [
            {"role": "user", "content": "Capital of France?"},
            {"role": "assistant", "content": "Paris"},
        ]
    }
)


def features(tok, *examples):
    return [{"input_ids": te.input_ids, "labels": te.labels} for te in (tokenize_example(tok, e) for e in examples)]


def targeted_text(tok, batch):
    """Decode the tokens that are targets (the next token at each position with a shift label)."""
    ids, tgt = batch["input_ids"], batch["shift_labels"]
    out = []
    for r in range(ids.shape[0]):
        out.append(tok.decode([int(t) for t in tgt[r] if t != IGNORE_INDEX]))
        nxt = [int(ids[r, c + 1]) for c in range(ids.shape[1] - 1) if tgt[r, c] != IGNORE_INDEX]
        assert nxt == [int(t) for t in tgt[r] if t != IGNORE_INDEX]  # targets are the next input tokens
    return " | ".join(out)


@pytest.mark.parametrize("template", [None, CHATML_TEMPLATE, LLAMA3_LIKE], ids=["smollm2-own", "chatml", "llama3"])
@pytest.mark.parametrize("collator_cls", [PackingCollator, PaddingCollator])
def test_only_trained_assistant_tokens_are_targets_after_collation(smol_tokenizer, template, collator_cls):
    tok = smol_tokenizer
    saved = tok.chat_template
    if template is not None:
        tok.chat_template = template
    try:
        batch = collator_cls(tok.pad_token_id)(features(tok, CONVO, SHORT))
        text = targeted_text(tok, batch)
    finally:
        tok.chat_template = saved
    assert "Hello there" in text and "Done" in text and "Paris" in text
    for prompt_text in ("Skipped", "Be brief", "Capital", "Last", "Again"):
        assert prompt_text not in text
    assert text.count(tok.eos_token) == 3  # every trained turn keeps its end-of-turn token
    n_trained = sum(te.n_trained for te in (tokenize_example(tok, CONVO), tokenize_example(tok, SHORT)))
    assert int((batch["shift_labels"] != IGNORE_INDEX).sum()) == n_trained


def test_pack_rows_respects_length_and_keeps_every_example():
    lengths = [50, 300, 120, 400, 80, 600, 10]
    rows = pack_rows(lengths, 512)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    for row in rows:
        assert len(row) == 1 or sum(lengths[i] for i in row) <= 512
    assert len(rows) < len(lengths)


def test_packing_collator_resets_positions_and_pads_only_to_longest_row(smol_tokenizer):
    feats = features(smol_tokenizer, SHORT, SHORT, CONVO)
    total = sum(len(f["input_ids"]) for f in feats)
    batch = PackingCollator(smol_tokenizer.pad_token_id, pack_length=10_000)(feats)
    assert batch["input_ids"].shape == (1, -(-total // 32) * 32)  # one row, padded to a multiple of 32
    starts = (batch["position_ids"][0, :total] == 0).nonzero().flatten().tolist()
    assert len(starts) == 3
    assert "attention_mask" not in batch
    assert int(batch["n_real_tokens"]) == total


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_packed_example_logits_equal_its_logits_alone(tiny_model_dir, smol_tokenizer, attn):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation=attn).eval()
    feats = features(smol_tokenizer, CONVO, SHORT)
    batch = PackingCollator(smol_tokenizer.pad_token_id, pack_length=10_000)(feats)
    n_first = len(feats[0]["input_ids"])
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        alone = model(input_ids=torch.tensor([feats[1]["input_ids"]]), use_cache=False).logits
        leaky = model(input_ids=batch["input_ids"], use_cache=False).logits  # plain causal: attends across
    end = n_first + len(feats[1]["input_ids"])
    assert torch.allclose(packed[0, n_first:end], alone[0], atol=1e-5)
    assert not torch.allclose(leaky[0, n_first:end], alone[0], atol=1e-3)  # the check above can fail


def test_bucketed_positions_keep_every_trained_position_and_round_the_count():
    from tunesmith.train.trainer import bucket_positions

    trained = torch.zeros(2, 40, dtype=torch.bool)
    trained[0, 5:12] = True
    trained[1, 30:33] = True
    keep = bucket_positions(trained, multiple=32)
    assert int(keep.sum()) == 32 and bool(keep[trained].all())
    assert int(bucket_positions(torch.ones(1, 5, dtype=torch.bool)).sum()) == 5  # never more than exist
