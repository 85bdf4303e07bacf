"""The run directory every training method writes, and the summary that ends it.

Run directory (the contract other stages read)::

    config.yaml      the resolved TrainConfig          tokenizer/    tokenizer + chat template used
    metrics.jsonl    one row per log / validation      checkpoints/  checkpoint-<step>/ (adapter + state)
    adapter/         PEFT adapter (lora, qlora, dpo)    model/        full checkpoint (method: full)
    run.json         summary, written last
"""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from tunesmith.core.atomic import atomic_dir, sha256_file, write_json_atomic
from tunesmith.core.config import save_config
from tunesmith.train.callbacks import final_metrics
from tunesmith.train.config import TrainConfig
from tunesmith.train.setup import attention_of, is_main_process, use_bf16, use_packing


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


@dataclass
class DataCounts:
    """What a method's data contributes to run.json: example counts and the tokens of one epoch."""

    train_examples: int
    valid_examples: int
    trained_tokens: int  # tokens with a loss in one pass over the training data
    total_tokens: int  # all tokens processed in one pass
    truncated_examples: int = 0


def prepare_output_dir(cfg: TrainConfig, tok: Any, resume: bool) -> None:
    """Write config.yaml and tokenizer/; a fresh (non-resumed) run starts a new metrics.jsonl.

    Runs before the callbacks are built: the metrics callback continues the elapsed time of the metrics.jsonl
    it finds, which a fresh run must not.
    """
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


def summarize_run(cfg: TrainConfig, trainer: Any, start: float, counts: DataCounts) -> TrainResult:
    """The run.json summary of a finished run (SFT or DPO).

    The final metrics are those of the saved weights: after an early-stopping restore, the restored step's.
    Token counts are those of one epoch scaled by the epochs run.
    """
    metrics, restored_step = final_metrics(trainer.callback_handler.callbacks)
    epochs = float(trainer.state.epoch or 0.0)
    return TrainResult(
        status="succeeded",
        model=cfg.model,
        method=cfg.method,
        output_dir=str(cfg.output_dir),
        adapter_dir=None,
        model_dir=None,
        train_examples=counts.train_examples,
        valid_examples=counts.valid_examples,
        trained_tokens=round(counts.trained_tokens * epochs),
        total_tokens=round(counts.total_tokens * epochs),
        steps=trainer.state.global_step,
        epochs=round(epochs, 4),
        seconds=round(time.perf_counter() - start, 2),
        peak_rss_mb=peak_rss_mb(),
        data_sha256=sha256_file(cfg.train_file),
        bf16=use_bf16(cfg),
        packing=use_packing(cfg) and cfg.method != "dpo",
        attention=attention_of(trainer.accelerator.unwrap_model(trainer.model)),
        truncated_examples=counts.truncated_examples,
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
