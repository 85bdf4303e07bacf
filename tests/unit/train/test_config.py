"""TrainConfig validation, example configs, and the errors raised before any model is loaded."""

from pathlib import Path

import pytest

from tests.conftest import REPO, chat, write_jsonl
from tunesmith.core.config import load_config
from tunesmith.core.errors import ConfigError, ModelError, TrainError
from tunesmith.train.config import TrainConfig
from tunesmith.train.run import run_training

CONFIGS = sorted((REPO / "configs" / "train").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_example_config_loads_and_names_its_command(path: Path):
    cfg = load_config(TrainConfig, path)
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == f"# tunesmith train configs/train/{path.name}"
    assert cfg.method in ("lora", "full", "qlora", "dpo")


def test_example_configs_cover_every_method():
    assert {load_config(TrainConfig, p).method for p in CONFIGS} == {"lora", "full", "qlora", "dpo"}
    assert (REPO / "configs" / "train" / "sentiment-lora.yaml") in CONFIGS


def test_all_invalid_keys_are_reported_at_once(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train_file: x.jsonl\nlearning_rat: 1e-4\nmethod: sft\nlora:\n  r: 0\nbatch_size: 0\n")
    with pytest.raises(ConfigError, match=r"4 invalid setting") as err:
        load_config(TrainConfig, bad)
    for key in ("learning_rat: unknown key", "method", "lora.r", "batch_size"):
        assert key in err.value.message


def test_missing_train_file_key_and_cross_field_rule():
    with pytest.raises(ConfigError, match=r"train_file: Field required"):
        load_config(TrainConfig, None, [])
    with pytest.raises(ConfigError, match=r"early_stopping_patience needs valid_file"):
        load_config(TrainConfig, None, ["train_file=a.jsonl", "early_stopping_patience=2"])


def test_set_override_beats_yaml(tmp_path):
    cfg = load_config(TrainConfig, REPO / "configs/train/lora.yaml", ["lora.r=4", "learning_rate=1e-3"])
    assert cfg.lora.r == 4 and cfg.learning_rate == 1e-3


def test_qlora_on_cpu_fails_fast_and_names_lora(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = write_jsonl(tmp_path / "t.jsonl", [chat("hi", "hello")])
    cfg = TrainConfig(train_file=data, method="qlora", model="no/such-model", output_dir=tmp_path / "run")
    with pytest.raises(TrainError, match=r"qlora.*needs a CUDA GPU") as err:
        run_training(cfg)  # the model name is bogus: proves nothing was loaded before the check
    assert "method=lora" in err.value.hint
    assert not (tmp_path / "run").exists()


def test_missing_files_and_resume_without_checkpoint_are_reported_together(tmp_path):
    cfg = TrainConfig(
        train_file=tmp_path / "nope.jsonl", valid_file=tmp_path / "nope2.jsonl", output_dir=tmp_path / "run"
    )
    with pytest.raises(TrainError, match=r"train_file: .*nope.jsonl does not exist") as err:
        run_training(cfg, resume=True)
    assert "valid_file" in err.value.message and "--resume: no checkpoint" in err.value.message


def test_hub_model_not_present_locally_is_a_clear_error(tmp_path):
    from tunesmith.models.registry import resolve_model

    with pytest.raises(ModelError, match=r"'someorg/not-here' is not available locally") as err:
        resolve_model("someorg/not-here")
    assert "never downloads" in err.value.hint


def test_zero_trainable_token_dataset_is_refused_with_example_numbers(tmp_path, tiny_model_dir):
    rows = [
        chat("q1", "a1"),
        {
            "messages": [
                {"role": "user", "content": "q2"},
                {"role": "assistant", "content": "a2", "weight": 0},
            ]
        },
        {"messages": [{"role": "user", "content": "only a question"}]},
    ]
    data = write_jsonl(tmp_path / "t.jsonl", rows)
    cfg = TrainConfig(train_file=data, model=str(tiny_model_dir), output_dir=tmp_path / "run")
    with pytest.raises(
        TrainError, match=r"2 of 3 example\(s\) have zero trainable tokens \(example number\(s\) 2, 3\)"
    ):
        run_training(cfg)
