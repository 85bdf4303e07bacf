"""`run_training`: the training recipe, one step per line.

preflight -> load the method's data (and tokenizer) -> prepare the run directory -> build the trainer for the
method (SFT: lora, qlora, full; or DPO) -> train -> save the run. The run directory it writes is described in
:mod:`tunesmith.train.rundir`.
"""

from __future__ import annotations

import time
from typing import Any

from tunesmith.train.config import TrainConfig
from tunesmith.train.dpo import DpoMethod, load_dpo
from tunesmith.train.rundir import TrainResult, prepare_output_dir, save_final_weights, summarize_run
from tunesmith.train.setup import find_last_checkpoint, log_choices, preflight
from tunesmith.train.sft import SftMethod, load_sft


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
    start = time.perf_counter()
    method = load_method(cfg)
    prepare_output_dir(cfg, method.tokenizer, resume)
    trainer = method.build_trainer()
    log_choices(cfg, trainer.accelerator.unwrap_model(trainer.model))
    train(cfg, trainer, resume)
    summary = summarize_run(cfg, trainer, start, method.counts(trainer))
    save_final_weights(cfg, trainer, summary)
    return summary


def load_method(cfg: TrainConfig) -> SftMethod | DpoMethod:
    """The data and tokenizer of ``cfg.method``: preference pairs for dpo, tokenized chat for the SFT methods."""
    return load_dpo(cfg) if cfg.method == "dpo" else load_sft(cfg)


def train(cfg: TrainConfig, trainer: Any, resume: bool) -> None:
    """Run the Trainer; on resume, from the newest checkpoint."""
    trainer.train(resume_from_checkpoint=str(find_last_checkpoint(cfg)) if resume else None)
