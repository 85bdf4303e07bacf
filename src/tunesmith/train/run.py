"""`run_training`: validate, tokenize once, build the model and the Trainer, train, write the run directory.

Run directory (the contract other stages read)::

    config.yaml      the resolved TrainConfig          tokenizer/    tokenizer + chat template used
    metrics.jsonl    one row per log / validation      checkpoints/  checkpoint-<step>/ (adapter + state)
    adapter/         PEFT adapter (lora, qlora, dpo)    model/        full checkpoint (method: full)
    run.json         summary, written last
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from tunesmith.atomic import atomic_dir, sha256_file, write_json_atomic
from tunesmith.config import save_config
from tunesmith.train.config import TrainConfig
from tunesmith.train.setup import (
    build_model,
    build_training_args,
    find_last_checkpoint,
    is_main_process,
    preflight,
    use_bf16,
    use_packing,
)


@dataclass
class TrainResult:
    """What `tunesmith train` reports; also written to ``run.json``."""

    status: str
    model: str
    method: str
    output_dir: str
    adapter_dir: str | None
    model_dir: str | None
    train_examples: int
    valid_examples: int
    trained_tokens: int
    total_tokens: int
    steps: int
    epochs: float
    seconds: float
    peak_rss_mb: float
    data_sha256: str
    bf16: bool
    packing: bool = False
    attention: str | None = None
    truncated_examples: int = 0
    final_metrics: dict[str, float] = field(default_factory=dict)
    restored_step: int | None = None  # early stopping put back this step's (best validated) weights


def run_training(cfg: TrainConfig, resume: bool = False) -> TrainResult:
    """Fine-tune ``cfg.model`` on ``cfg.train_file`` and write the run directory ``cfg.output_dir``.

    Args:
        cfg: the validated training config.
        resume: continue from the newest ``checkpoints/checkpoint-<step>`` (same data order, optimizer
            and scheduler state).

    Returns:
        The run summary (also in ``run.json``).

    Raises:
        TrainError: the method cannot run here (qlora without CUDA), no checkpoint to resume, or a dataset
            without trainable tokens.
        DatasetError / ModelError: unreadable data or model.
    """
    preflight(cfg, resume)
    if cfg.method == "dpo":
        from tunesmith.train.dpo import run_dpo

        return run_dpo(cfg, resume)
    from tunesmith.models.load import load_tokenizer
    from tunesmith.train.data import tokenize_file

    start = time.perf_counter()
    tok = load_tokenizer(cfg.model)
    train = tokenize_file(tok, cfg.train_file, cfg.max_seq_length)
    valid = tokenize_file(tok, cfg.valid_file, cfg.max_seq_length) if cfg.valid_file else None
    prepare_output_dir(cfg, tok, resume)
    longest = max(e.n_tokens for e in train.examples + (valid.examples if valid else []))
    model = build_model(cfg, longest)
    trainer = build_sft_trainer(cfg, model, tok, train, valid)
    log_choices(cfg, model)
    trainer.train(resume_from_checkpoint=str(find_last_checkpoint(cfg)) if resume else None)
    summary = summarize_run(
        cfg, trainer, start, (len(train.examples), len(valid.examples) if valid else 0),
        (train.trained_tokens, train.total_tokens), truncated_examples=train.truncated,
    )
    save_final_weights(cfg, trainer, summary)
    return summary


def build_sft_trainer(cfg: TrainConfig, model: Any, tok: Any, train: Any, valid: Any) -> Any:
    """The SftTrainer with tunesmith's collator (packed rows or length-grouped padding) and callbacks."""
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_callback import ProgressCallback as HfProgress

    from tunesmith.train.callbacks import build_callbacks
    from tunesmith.train.collate import PackingCollator, PaddingCollator
    from tunesmith.train.trainer import SftTrainer

    rows = [{"input_ids": e.input_ids, "labels": e.labels} for e in train.examples]
    valid_rows = [{"input_ids": e.input_ids, "labels": e.labels} for e in valid.examples] if valid else None
    collator = (
        PackingCollator(tok.pad_token_id, cfg.pack_length, cfg.pad_to_multiple_of)
        if use_packing(cfg)
        else PaddingCollator(tok.pad_token_id, cfg.pad_to_multiple_of)
    )
    callbacks = build_callbacks(cfg, validating=valid is not None)
    trainer = SftTrainer(
        model=model,
        args=build_training_args(cfg),
        train_dataset=rows,
        eval_dataset=valid_rows,
        data_collator=collator,
        callbacks=callbacks,
        max_batch_tokens=cfg.max_batch_tokens,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(HfProgress)
    return trainer


def log_choices(cfg: TrainConfig, model: Any) -> None:
    """Print what the ``auto`` settings chose on this hardware (run.json records the same)."""
    if is_main_process():
        batches = "packed rows" if use_packing(cfg) and cfg.method != "dpo" else "length-grouped padding"
        print(
            f"train: {batches} (packing: {cfg.packing}), attention {attention_of(model)}, "
            f"precision {'bf16' if use_bf16(cfg) else 'fp32'} (precision: {cfg.precision})"
        )


def attention_of(model: Any) -> str | None:
    """The attention kernel the (possibly PEFT-wrapped) model runs."""
    return getattr(getattr(model, "config", None), "_attn_implementation", None)


def prepare_output_dir(cfg: TrainConfig, tok: Any, resume: bool) -> None:
    """Write config.yaml and tokenizer/; a fresh (non-resumed) run starts a new metrics.jsonl."""
    if not is_main_process():
        return
    cfg.output_dir.mkdir(parents=True, exist_ok=True)
    save_config(cfg, cfg.output_dir / "config.yaml")
    with atomic_dir(cfg.output_dir / "tokenizer") as tmp:
        tok.save_pretrained(tmp)
    metrics = cfg.output_dir / "metrics.jsonl"
    if not resume and metrics.exists():
        metrics.unlink()
    (cfg.output_dir / "run.json").unlink(missing_ok=True)


def summarize_run(
    cfg: TrainConfig,
    trainer: Any,
    start: float,
    examples: tuple[int, int],
    tokens_per_epoch: tuple[int, int],
    truncated_examples: int = 0,
) -> TrainResult:
    """The run.json summary of a finished run (SFT or DPO).

    The final metrics are those of the saved weights: after an early-stopping restore, the restored step's.

    Args:
        examples: (train, validation) example counts.
        tokens_per_epoch: (trained, total) tokens of one pass over the training data; scaled by the epochs run.
    """
    from tunesmith.train.callbacks import final_metrics

    metrics, restored_step = final_metrics(trainer.callback_handler.callbacks)
    epochs = float(trainer.state.epoch or 0.0)
    return TrainResult(
        status="succeeded",
        model=cfg.model,
        method=cfg.method,
        output_dir=str(cfg.output_dir),
        adapter_dir=None,
        model_dir=None,
        train_examples=examples[0],
        valid_examples=examples[1],
        trained_tokens=round(tokens_per_epoch[0] * epochs),
        total_tokens=round(tokens_per_epoch[1] * epochs),
        steps=trainer.state.global_step,
        epochs=round(epochs, 4),
        seconds=round(time.perf_counter() - start, 2),
        peak_rss_mb=peak_rss_mb(),
        data_sha256=sha256_file(cfg.train_file),
        bf16=use_bf16(cfg),
        packing=use_packing(cfg) and cfg.method != "dpo",
        attention=attention_of(trainer.accelerator.unwrap_model(trainer.model)),
        truncated_examples=truncated_examples,
        final_metrics=metrics,
        restored_step=restored_step,
    )


def save_final_weights(cfg: TrainConfig, trainer: Any, summary: TrainResult) -> None:
    """Save adapter/ (or model/ for full) and then run.json, atomically, from the main process."""
    trainer.accelerator.wait_for_everyone()
    if not trainer.is_world_process_zero():
        return
    model = trainer.accelerator.unwrap_model(trainer.model)
    target = cfg.output_dir / ("model" if cfg.method == "full" else "adapter")
    with atomic_dir(target) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
    if cfg.method == "full":
        summary.model_dir = str(target)
    else:
        summary.adapter_dir = str(target)
    write_json_atomic(cfg.output_dir / "run.json", run_json(summary))


def run_json(summary: TrainResult) -> dict[str, Any]:
    """run.json content: the summary without empty weight-dir keys."""
    data = asdict(summary)
    for key in ("adapter_dir", "model_dir"):
        if data[key] is None:
            del data[key]
    return data


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def world_size() -> int:
    """Processes in this run (torchrun / accelerate set WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))
