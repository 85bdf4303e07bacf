"""run_training on the tiny random Llama: run dir contract, resume, full, dpo, 2-process DDP."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import REPO, chat, write_jsonl
from tunesmith.train.config import TrainConfig
from tunesmith.train.run import run_training
from tunesmith.train.setup import varlen_attention_available


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("data")
    rows = [chat(f"What is {i} plus one?", f"{i + 1}", system="Answer with a number.") for i in range(48)]
    write_jsonl(d / "train.jsonl", rows[:40])
    write_jsonl(d / "valid.jsonl", rows[40:])
    return d


def config(tiny_model_dir, data, out, **kw) -> TrainConfig:
    base = dict(
        model=str(tiny_model_dir),
        train_file=data / "train.jsonl",
        valid_file=data / "valid.jsonl",
        output_dir=out,
        batch_size=4,
        learning_rate=5e-3,
        warmup_ratio=0.0,
        logging_steps=2,
        eval_steps=4,
    )
    return TrainConfig(**{**base, **kw})


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_lora_run_writes_the_run_directory_contract(tiny_model_dir, data, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    cfg = config(tiny_model_dir, data, tmp_path / "run", max_steps=8, save_steps=4)
    result = run_training(cfg)
    out = cfg.output_dir
    for name in (
        "config.yaml",
        "tokenizer/tokenizer.json",
        "adapter/adapter_config.json",
        "adapter/adapter_model.safetensors",
        "checkpoints/checkpoint-4/adapter_model.safetensors",
        "checkpoints/checkpoint-8/optimizer.pt",
        "checkpoints/checkpoint-8/trainer_state.json",
    ):
        assert (out / name).exists(), name
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "succeeded" and run["steps"] == 8 == result.steps and run["method"] == "lora"
    varlen = varlen_attention_available()  # packing: auto packs only with a varlen kernel (never on CPU)
    assert cfg.packing == "auto" and run["packing"] is varlen and run["restored_step"] is None
    assert run["attention"] == ("flash_attention_2" if varlen else "sdpa" if torch.cuda.is_available() else "eager")
    assert run["train_examples"] == 40 and run["valid_examples"] == 8 and run["adapter_dir"] == str(out / "adapter")
    assert 0 < run["trained_tokens"] < run["total_tokens"] and run["peak_rss_mb"] > 0 and len(run["data_sha256"]) == 64
    metrics = rows(out / "metrics.jsonl")
    train_rows = [r for r in metrics if "train_loss" in r]
    valid_rows = [r for r in metrics if "valid_loss" in r]
    assert [r["step"] for r in train_rows] == [1, 2, 4, 6, 8]
    assert [r["step"] for r in valid_rows] == [4, 8]
    assert all({"epoch", "total_steps", "elapsed_s"} <= r.keys() and r["total_steps"] == 8 for r in metrics)
    assert all(0 <= r["train_mean_token_accuracy"] <= 1 and r["tokens_per_s"] > 0 for r in train_rows)
    assert train_rows[-1]["train_loss"] < train_rows[0]["train_loss"]  # lr 5e-3 on a tiny model: it learns
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    for adapter in (out / "adapter", out / "checkpoints" / "checkpoint-4"):
        model = PeftModel.from_pretrained(base, str(adapter))
        assert model(input_ids=torch.tensor([[1, 2, 3]])).logits.shape[-1] == base.config.vocab_size
        base = model.unload()


def test_resume_continues_exactly(tiny_model_dir, data, tmp_path):
    straight = config(tiny_model_dir, data, tmp_path / "a", max_steps=6, save_steps=3)
    run_training(straight)
    resumed = config(tiny_model_dir, data, tmp_path / "b", max_steps=6, save_steps=3)
    run_training(resumed)
    # Simulate a crash after step 3: drop everything written after checkpoint-3, then resume.
    shutil.rmtree(resumed.output_dir / "checkpoints" / "checkpoint-6")
    shutil.rmtree(resumed.output_dir / "adapter")
    (resumed.output_dir / "run.json").unlink()
    kept = [r for r in rows(resumed.output_dir / "metrics.jsonl") if r["step"] <= 3]
    write_jsonl(resumed.output_dir / "metrics.jsonl", kept)
    result = run_training(resumed, resume=True)
    assert result.steps == 6
    a = load_file(straight.output_dir / "adapter" / "adapter_model.safetensors")
    b = load_file(resumed.output_dir / "adapter" / "adapter_model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key
    la, lb = rows(straight.output_dir / "metrics.jsonl"), rows(resumed.output_dir / "metrics.jsonl")
    assert [r["step"] for r in la] == [r["step"] for r in lb]
    assert la[-1]["valid_loss"] == pytest.approx(lb[-1]["valid_loss"], rel=1e-4)


def test_default_checkpoints_are_one_per_epoch_and_resume_from_one(tiny_model_dir, data, tmp_path):
    def epoch_config(out):  # no save_steps, no max_steps: the defaults (batch 8: 5 steps per epoch)
        return config(tiny_model_dir, data, out, batch_size=8, epochs=3, eval_steps=None, save_total_limit=2)

    straight = epoch_config(tmp_path / "a")
    run_training(straight)
    assert sorted(p.name for p in (straight.output_dir / "checkpoints").iterdir()) == [
        "checkpoint-10",
        "checkpoint-15",
    ]  # one per epoch end, the newest save_total_limit kept
    resumed = epoch_config(tmp_path / "b")
    run_training(resumed)
    # Simulate a crash during epoch 3: only the epoch-2 checkpoint survives, then resume from it.
    shutil.rmtree(resumed.output_dir / "checkpoints" / "checkpoint-15")
    shutil.rmtree(resumed.output_dir / "adapter")
    kept = [r for r in rows(resumed.output_dir / "metrics.jsonl") if r["step"] <= 10]
    write_jsonl(resumed.output_dir / "metrics.jsonl", kept)
    assert run_training(resumed, resume=True).steps == 15
    a = load_file(straight.output_dir / "adapter" / "adapter_model.safetensors")
    b = load_file(resumed.output_dir / "adapter" / "adapter_model.safetensors")
    for key in a:
        assert torch.allclose(a[key], b[key], atol=1e-5), key


def test_early_stopping_saves_the_best_validated_weights_with_their_metrics(tiny_model_dir, tmp_path):
    # Training on "yes" answers makes the "no" answers of the validation set less likely at every step.
    train = write_jsonl(tmp_path / "t.jsonl", [chat(f"Is {i} even?", "yes yes yes yes") for i in range(24)])
    valid = write_jsonl(tmp_path / "v.jsonl", [chat(f"Is {i} even?", "no no no no") for i in range(8)])
    cfg = config(
        tiny_model_dir,
        tmp_path,
        tmp_path / "es",
        train_file=train,
        valid_file=valid,
        eval_steps=2,
        save_steps=2,
        early_stopping_patience=1,
        max_steps=12,
    )
    result = run_training(cfg)
    valid_rows = {r["step"]: r for r in rows(cfg.output_dir / "metrics.jsonl") if "valid_loss" in r}
    assert list(valid_rows) == [2, 4] and valid_rows[4]["valid_loss"] > valid_rows[2]["valid_loss"]
    run = json.loads((cfg.output_dir / "run.json").read_text())
    assert run["restored_step"] == 2 == result.restored_step and run["steps"] == 4
    assert run["final_metrics"]["valid_loss"] == valid_rows[2]["valid_loss"]  # not the last validation's
    saved = load_file(cfg.output_dir / "adapter" / "adapter_model.safetensors")
    best = load_file(cfg.output_dir / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors")
    assert saved.keys() == best.keys() and all(torch.equal(saved[k], best[k]) for k in saved)


def test_time_budget_stops_after_the_step_that_passes_it_and_saves_the_adapter(tiny_model_dir, data, tmp_path):
    cfg = config(tiny_model_dir, data, tmp_path / "tb", epochs=3, max_minutes=1e-6, valid_file=None, eval_steps=None)
    run_training(cfg)
    run = json.loads((cfg.output_dir / "run.json").read_text())
    assert run["status"] == "succeeded" and run["steps"] == 1  # 3 epochs of 10 steps were asked for
    assert (cfg.output_dir / "adapter" / "adapter_model.safetensors").exists()


def test_full_finetune_writes_a_loadable_model(tiny_model_dir, data, tmp_path):
    from transformers import AutoModelForCausalLM

    cfg = config(tiny_model_dir, data, tmp_path / "full", method="full", max_steps=2, packing=False, learning_rate=1e-3)
    result = run_training(cfg)
    assert result.model_dir == str(cfg.output_dir / "model") and result.adapter_dir is None
    model = AutoModelForCausalLM.from_pretrained(result.model_dir)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert not torch.equal(model.model.layers[0].mlp.up_proj.weight, base.model.layers[0].mlp.up_proj.weight)


def test_dpo_trains_an_adapter_on_preference_data(tiny_model_dir, tmp_path):
    pref = [
        {
            "input": {"messages": [{"role": "user", "content": f"Say {i}"}]},
            "preferred_output": [{"role": "assistant", "content": str(i)}],
            "non_preferred_output": [{"role": "assistant", "content": "no"}],
        }
        for i in range(8)
    ]
    path = write_jsonl(tmp_path / "pref.jsonl", pref)
    valid = write_jsonl(tmp_path / "pref-valid.jsonl", pref[:4])
    cfg = TrainConfig(
        model=str(tiny_model_dir),
        train_file=path,
        valid_file=valid,
        output_dir=tmp_path / "dpo",
        method="dpo",
        batch_size=4,
        epochs=1,
        logging_steps=1,
    )
    result = run_training(cfg)
    assert (cfg.output_dir / "adapter" / "adapter_config.json").exists() and result.steps == 2
    metrics = rows(cfg.output_dir / "metrics.jsonl")
    assert [r["step"] for r in metrics if "train_loss" in r] == [1, 2]
    # no eval_steps: validation still runs once, at the end of the (only) epoch
    assert [r["step"] for r in metrics if "valid_loss" in r] == [2]
    assert result.final_metrics["valid_loss"] == pytest.approx(0.693, abs=0.1)
    assert result.final_metrics["train_loss"] == pytest.approx(0.693, abs=0.05)  # DPO starts at log(2)
    assert 0 < result.trained_tokens < result.total_tokens  # both answers trained; prompts processed twice


def test_two_process_gloo_run_matches_single_process(tiny_model_dir, data, tmp_path):
    import yaml

    common = dict(
        model=str(tiny_model_dir),
        train_file=str(data / "train.jsonl"),
        max_steps=6,
        learning_rate=5e-3,
        warmup_ratio=0.0,
        logging_steps=6,
        precision="fp32",
        lora={"dropout": 0.0},
    )
    single = config(
        tiny_model_dir,
        data,
        tmp_path / "single",
        valid_file=None,
        batch_size=8,
        max_steps=6,
        logging_steps=6,
        precision="fp32",
        lora={"dropout": 0.0},
    )
    run_training(single)
    cfg_path = tmp_path / "ddp.yaml"
    cfg_path.write_text(yaml.safe_dump({**common, "output_dir": str(tmp_path / "ddp"), "batch_size": 4}))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            "29533",
            "-m",
            "tunesmith",
            "train",
            str(cfg_path),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp_run = json.loads((tmp_path / "ddp" / "run.json").read_text())
    assert ddp_run["steps"] == 6 and ddp_run["status"] == "succeeded"
    first_single, last_single = (rows(single.output_dir / "metrics.jsonl")[i]["train_loss"] for i in (0, -1))
    ddp_rows = rows(tmp_path / "ddp" / "metrics.jsonl")
    assert len(ddp_rows) == 2  # only rank 0 writes
    assert last_single < first_single
    assert ddp_rows[-1]["train_loss"] == pytest.approx(last_single, rel=0.05)
