"""OpenAI fine-tuning requests -> TrainConfig, model names, server settings, worker helpers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.core.errors import ConfigError
from tunesmith.serve.job_progress import estimate_finish, find_checkpoints, metrics_at, read_new_rows
from tunesmith.serve.mapping import (
    BASE_LEARNING_RATE,
    build_train_config,
    checkpoint_model_name,
    fine_tuned_model_name,
    job_id_from_model,
    resolve_method,
)
from tunesmith.serve.schemas import JobCreate
from tunesmith.serve.settings import ServeSettings, is_loopback
from tunesmith.train.config import TrainConfig


def job_of(req: JobCreate, **overrides) -> dict:
    return {
        "model": req.model,
        "seed": 3,
        "method": resolve_method(req).model_dump(exclude_none=True),
        "train_overrides": req.training_config or {},
        **overrides,
    }


def build(req: JobCreate, defaults=None) -> TrainConfig:
    return build_train_config(job_of(req), Path("t.jsonl"), None, Path("out"), defaults)


def test_supervised_hyperparameters_map_onto_train_config():
    req = JobCreate(
        model="m",
        training_file="f",
        method={
            "type": "supervised",
            "supervised": {"hyperparameters": {"n_epochs": 3, "batch_size": 4, "learning_rate_multiplier": 0.5}},
        },
    )
    cfg = build(req)
    assert (cfg.method, cfg.epochs, cfg.batch_size, cfg.seed) == ("lora", 3, 4, 3)
    assert cfg.learning_rate == pytest.approx(BASE_LEARNING_RATE * 0.5)
    assert cfg.output_dir == Path("out") and cfg.train_file == Path("t.jsonl")


def test_auto_and_missing_values_keep_train_config_defaults():
    cfg = build(JobCreate(model="m", training_file="f", hyperparameters={"n_epochs": "auto"}))
    defaults = TrainConfig(train_file="x")
    assert (cfg.epochs, cfg.batch_size, cfg.learning_rate) == (
        defaults.epochs,
        defaults.batch_size,
        defaults.learning_rate,
    )
    method = resolve_method(JobCreate(model="m", training_file="f"))
    assert method.type == "supervised" and method.supervised.hyperparameters.batch_size == "auto"


def test_legacy_top_level_hyperparameters_are_used_under_method():
    req = JobCreate(
        model="m",
        training_file="f",
        hyperparameters={"batch_size": 2},
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
    )
    hp = resolve_method(req).supervised.hyperparameters
    assert (hp.batch_size, hp.n_epochs) == (2, 2)


def test_dpo_maps_beta_and_beta_is_refused_for_supervised():
    req = JobCreate(model="m", training_file="f", method={"type": "dpo", "dpo": {"hyperparameters": {"beta": 0.3}}})
    cfg = build(req)
    assert cfg.method == "dpo" and cfg.dpo.beta == 0.3
    with pytest.raises(ConfigError, match="only valid for method.type 'dpo'"):
        resolve_method(JobCreate(model="m", training_file="f", hyperparameters={"beta": 0.3}))


def test_training_config_overrides_apply_after_server_defaults_and_reserved_keys_are_refused():
    req = JobCreate(model="m", training_file="f", training_config={"max_steps": 4, "lora": {"r": 4}})
    cfg = build(req, defaults={"max_steps": 100, "max_seq_length": 128})
    assert (cfg.max_steps, cfg.lora.r, cfg.max_seq_length) == (4, 4, 128)
    bad = JobCreate(model="m", training_file="f", training_config={"output_dir": "/etc", "bogus": 1})
    with pytest.raises(ConfigError, match="output_dir is set by the job itself; bogus is not a TrainConfig key"):
        build(bad)


def test_out_of_range_hyperparameters_name_the_key():
    req = JobCreate(model="m", training_file="f", hyperparameters={"batch_size": 0})
    with pytest.raises(ConfigError, match="batch_size"):
        build(req)


def test_model_names_follow_openai_and_parse_back():
    name = fine_tuned_model_name("smollm2-135m-instruct", "support", "ftjob-abc")
    assert name == "ft:smollm2-135m-instruct:support:ftjob-abc"
    assert fine_tuned_model_name("/models/my-llama", None, "ftjob-x") == "ft:my-llama::ftjob-x"
    ckpt = checkpoint_model_name(name, 20)
    assert ckpt.endswith(":ckpt-step-20") and job_id_from_model(ckpt) == "ftjob-abc"
    assert job_id_from_model("smollm2") is None


def test_settings_refuse_a_public_interface_without_keys():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and not is_loopback("0.0.0.0")
    with pytest.raises(ValueError, match="refusing to listen on 0.0.0.0 without API keys"):
        ServeSettings(host="0.0.0.0")
    assert ServeSettings(host="0.0.0.0", api_keys=["k"]).api_keys == ["k"]


def test_worker_reads_only_complete_metrics_lines_and_finds_complete_checkpoints(tmp_path):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text(json.dumps({"step": 1, "train_loss": 2.0}) + "\n" + '{"step": 2, "tra')
    rows, seen = read_new_rows(metrics, 0)
    assert rows == [{"step": 1, "train_loss": 2.0}] and seen == 1
    assert read_new_rows(metrics, 1) == ([], 1)
    for step, complete in ((2, True), (4, False)):
        d = tmp_path / "checkpoints" / f"checkpoint-{step}"
        d.mkdir(parents=True)
        (d / "adapter_config.json").write_text("{}")
        if complete:
            (d / "adapter_model.safetensors").write_bytes(b"x")
    assert [s for s, _ in find_checkpoints(tmp_path / "checkpoints")] == [2]
    assert metrics_at([{"step": 1, "train_loss": 2.0}, {"step": 3, "train_loss": 1.0}], 2)["train_loss"] == 2.0
    assert estimate_finish({"step": 2, "total_steps": 4, "elapsed_s": 10.0}) is not None
    assert estimate_finish({"step": 0, "total_steps": 4, "elapsed_s": 0}) is None


def test_auto_epochs_follow_openais_rule():
    from tunesmith.serve.mapping import auto_epochs

    cases = {1: 25, 3: 25, 10: 10, 20: 5, 33: 3, 34: 3, 5000: 3, 8333: 3, 8334: 2, 12_500: 2, 30_000: 1}
    assert {n: auto_epochs(n) for n in cases} == cases


def test_auto_hyperparameters_resolve_to_what_training_uses():
    from tunesmith.serve.mapping import resolve_auto_hyperparameters

    req = JobCreate(model="m", training_file="f", hyperparameters={"batch_size": 2})
    method = resolve_method(req).model_dump(exclude_none=True)
    resolved = resolve_auto_hyperparameters(method, {}, 25)
    hp = resolved["supervised"]["hyperparameters"]
    assert hp == {"n_epochs": 4, "batch_size": 2, "learning_rate_multiplier": 1.0}
    cfg = build_train_config({**job_of(req), "method": resolved}, Path("t"), None, Path("o"))
    assert (cfg.epochs, cfg.batch_size, cfg.learning_rate) == (4, 2, BASE_LEARNING_RATE)
    from_config = resolve_auto_hyperparameters(method, {"epochs": 1, "learning_rate": 4e-4}, 50)
    assert from_config["supervised"]["hyperparameters"]["n_epochs"] == 1
    assert from_config["supervised"]["hyperparameters"]["learning_rate_multiplier"] == 2.0
    dpo = resolve_method(JobCreate(model="m", training_file="f", method={"type": "dpo"}))
    assert resolve_auto_hyperparameters(dpo.model_dump(exclude_none=True), {}, 200)["dpo"]["hyperparameters"][
        "beta"
    ] == pytest.approx(0.1)


def test_job_ids_parse_from_any_suffix():
    assert job_id_from_model("ft:base:a:b:ftjob-abc") == "ftjob-abc"
    assert job_id_from_model("ft:base:a:b:ftjob-abc:ckpt-step-3") == "ftjob-abc"
    assert job_id_from_model("ft:base::ftjob-abc") == "ftjob-abc"
    assert job_id_from_model("ft:base:ftjob-abc:x") is None
    assert job_id_from_model("base:ftjob-abc") is None


def test_failure_message_picks_the_cli_error_or_the_exception_line():
    from tunesmith.serve.mapping import failure_message

    cli = (
        "\rtrain:   0%|          | 0/4 [00:00<?, ?step/s]\n"
        "error: train.jsonl line 17: assistant turn before any user turn; reorder\nthe messages\n"
        "hint: fix the file\n"
    )
    assert failure_message(cli) == (
        "train.jsonl line 17: assistant turn before any user turn; reorder the messages hint: fix the file"
    )
    chained = (
        "Traceback (most recent call last):\n  File \"a\", line 1\nKeyError: 'x'\n\nDuring handling...\n\n"
        'Traceback (most recent call last):\n  File "b", line 2\n    f()\nValueError: bad value\n  detail\n'
    )
    assert failure_message(chained) == "ValueError: bad value\n  detail"
    assert failure_message("") == "(no log)"
    assert failure_message("Killed\n") == "Killed"
    assert len(failure_message("x" * 5000)) == 1000
