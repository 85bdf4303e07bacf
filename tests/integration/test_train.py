"""Real SmolLM2-135M-Instruct: a short LoRA run learns, reloads, stops at EOS; export parity."""

import json

import pytest
import torch

from tests.conftest import chat, write_jsonl
from tunesmith.train.config import TrainConfig
from tunesmith.train.run import run_training

pytestmark = pytest.mark.integration

SYSTEM = 'Classify the sentiment. Reply with JSON only: {"sentiment": "positive" | "negative"}.'
POS = [
    "I loved it",
    "Wonderful film",
    "Great value",
    "Superb acting",
    "Really enjoyable",
    "Brilliant work",
    "So much fun",
    "A delight",
    "Fantastic service",
    "Best purchase ever",
]
NEG = [
    "I hated it",
    "Awful film",
    "Waste of money",
    "Terrible acting",
    "Really boring",
    "Broken on arrival",
    "So disappointing",
    "A disaster",
    "Rude service",
    "Worst purchase ever",
]


def examples():
    rows = [chat(t, '{"sentiment": "positive"}', SYSTEM) for t in POS]
    rows += [chat(t, '{"sentiment": "negative"}', SYSTEM) for t in NEG]
    return rows[0::2] + rows[1::2]  # interleave labels


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    d = tmp_path_factory.mktemp("real")
    rows = examples()
    write_jsonl(d / "train.jsonl", rows * 2)  # 40 short examples
    write_jsonl(d / "valid.jsonl", rows[:6])
    cfg = TrainConfig(
        train_file=d / "train.jsonl",
        valid_file=d / "valid.jsonl",
        output_dir=d / "run",
        epochs=1,
        batch_size=8,
        learning_rate=3e-4,
        warmup_ratio=0.0,
        logging_steps=1,
        eval_steps=5,
        lora={"r": 8, "alpha": 16},
    )
    return cfg, run_training(cfg)


def test_validation_loss_falls(run):
    cfg, result = run
    valid = [json.loads(x) for x in (cfg.output_dir / "metrics.jsonl").read_text().splitlines()]
    losses = [r["valid_loss"] for r in valid if "valid_loss" in r]
    assert len(losses) >= 1 and result.steps == 5
    first_train = next(r["train_loss"] for r in valid if "train_loss" in r)
    assert losses[-1] < first_train * 0.7


def test_adapter_reloads_generates_label_and_stops_at_eos(run):
    from tunesmith.models.load import load_model_and_tokenizer
    from tunesmith.models.template import prompt_ids

    cfg, result = run
    model, tok = load_model_and_tokenizer(adapter=result.adapter_dir, device="cpu")
    ids = torch.tensor(
        [prompt_ids(tok, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Wonderful film"}])]
    )
    out = model.generate(
        input_ids=ids,
        attention_mask=torch.ones_like(ids),
        max_new_tokens=40,
        do_sample=False,
        pad_token_id=tok.pad_token_id,
    )
    new = out[0, ids.shape[1] :].tolist()
    assert new[-1] in (tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>"))  # stopped, not max length
    assert len(new) < 40
    assert "sentiment" in tok.decode(new, skip_special_tokens=True)


def test_export_merged_model_matches_adapter_greedy(run, tmp_path):
    from tunesmith.train.export import export_run

    cfg, _ = run
    result = export_run(cfg.output_dir, tmp_path / "merged", parity_prompts=3, max_new_tokens=12)
    assert (tmp_path / "merged" / "model.safetensors").exists()
    assert (tmp_path / "merged" / "tokenizer.json").exists()
    assert result.parity_total == 3 and result.parity_matches == 3, result.mismatched_prompts
