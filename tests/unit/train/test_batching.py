"""Batch shaping: width rounding, split batches and gradient accumulation give the unsplit gradient."""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import chat, write_jsonl
from tunesmith.models.template import IGNORE_INDEX
from tunesmith.train.collate import PaddingCollator
from tunesmith.train.config import TrainConfig
from tunesmith.train.run import run_training


def test_padding_collator_rounds_the_width_up_and_masks_the_filler():
    feats = [{"input_ids": [5] * 7, "labels": [-100] * 3 + [5] * 4}, {"input_ids": [6] * 3, "labels": [6] * 3}]
    batch = PaddingCollator(pad_token_id=0, pad_to_multiple_of=16)(feats)
    assert batch["input_ids"].shape == (2, 16)
    assert batch["attention_mask"].sum(1).tolist() == [7, 3]
    assert (batch["shift_labels"][:, 7:] == IGNORE_INDEX).all()
    assert int(batch["n_real_tokens"]) == 10
    assert PaddingCollator(pad_token_id=0)(feats)["input_ids"].shape == (2, 7)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("batching")
    # uneven lengths, so rows of one batch carry different numbers of trained tokens
    rows = [chat(f"Add one to {i}" + " please" * (i % 5), f"{i + 1}" * (1 + i % 3)) for i in range(16)]
    return write_jsonl(d / "train.jsonl", rows)


def adapter_after(tiny_model_dir, data, out, **kw) -> dict[str, torch.Tensor]:
    base = dict(
        model=str(tiny_model_dir),
        train_file=data,
        output_dir=out,
        batch_size=8,
        max_steps=2,
        learning_rate=5e-3,
        warmup_ratio=0.0,
        precision="fp32",
        seed=3,
    )
    result = run_training(TrainConfig(**{**base, **kw}))
    return load_file(Path(result.adapter_dir) / "adapter_model.safetensors")


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5, msg=key)


def test_split_batches_and_gradient_accumulation_match_the_whole_batch(tiny_model_dir, data, tmp_path):
    whole = adapter_after(tiny_model_dir, data, tmp_path / "whole")
    split = adapter_after(tiny_model_dir, data, tmp_path / "split", max_batch_tokens=64)
    accumulated = adapter_after(
        tiny_model_dir, data, tmp_path / "ga", batch_size=4, gradient_accumulation_steps=2, packing=False
    )
    assert_same_weights(whole, split)
    # every trained token weighs the same across micro-batches (not each micro-batch's mean)
    grouped = adapter_after(tiny_model_dir, data, tmp_path / "grouped", packing=False)
    assert_same_weights(grouped, accumulated)
    initial = adapter_after(tiny_model_dir, data, tmp_path / "zero", max_steps=1, learning_rate=1e-12)
    assert any(not torch.allclose(whole[k], initial[k]) for k in whole)  # training moved the adapter


def test_attention_auto_is_eager_for_short_rows_on_cpu_and_sdpa_otherwise(tmp_path):
    from tunesmith.train.setup import EAGER_MAX_TOKENS, attention_impl

    cfg = TrainConfig(train_file=tmp_path / "t.jsonl")
    expected_short = "sdpa" if torch.cuda.is_available() else "eager"
    assert attention_impl(cfg, EAGER_MAX_TOKENS) == expected_short
    assert attention_impl(cfg, EAGER_MAX_TOKENS + 1) == "sdpa"
    assert attention_impl(cfg.model_copy(update={"attention": "sdpa"}), 10) == "sdpa"
    assert attention_impl(cfg.model_copy(update={"attention": "eager"}), 4096) == "eager"


def test_packing_auto_packs_only_with_a_varlen_attention_kernel(tmp_path, monkeypatch):
    from tunesmith.train import setup

    cfg = TrainConfig(train_file=tmp_path / "t.jsonl")
    assert cfg.packing == "auto"
    monkeypatch.setattr(setup, "varlen_attention_available", lambda: False)  # CPU, or CUDA without flash-attn
    assert not setup.use_packing(cfg) and setup.use_packing(cfg.model_copy(update={"packing": True}))
    assert setup.build_training_args(cfg).train_sampling_strategy == "group_by_length"
    monkeypatch.setattr(setup, "varlen_attention_available", lambda: True)
    assert setup.use_packing(cfg) and setup.attention_impl(cfg, 64) == "flash_attention_2"
    assert not setup.use_packing(cfg.model_copy(update={"packing": False}))
    assert TrainConfig(train_file=tmp_path / "t.jsonl", packing="false").packing is False  # --set packing=false
