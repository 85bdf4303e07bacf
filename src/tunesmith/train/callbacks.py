"""Trainer callbacks: metrics.jsonl rows, a progress bar with loss / tokens/s / ETA, validation at each epoch
end, and early stopping on valid_loss."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import PrinterCallback
from transformers.trainer_callback import ProgressCallback as HfProgressCallback

from tunesmith.core.jsonl import read_jsonl

# Trainer's log keys -> the run directory's metric names (OpenAI's fine-tuning metric names).
METRIC_NAMES = {
    "loss": "train_loss",
    "mean_token_accuracy": "train_mean_token_accuracy",
    "eval_loss": "valid_loss",
    "eval_mean_token_accuracy": "valid_mean_token_accuracy",
    "learning_rate": "learning_rate",
    "grad_norm": "grad_norm",
    # DPO (TRL) metrics
    "rewards/accuracies": "train_rewards_accuracy",
    "eval_rewards/accuracies": "valid_rewards_accuracy",
    "rewards/margins": "train_rewards_margin",
}


def last_elapsed(path: Path) -> float:
    """The ``elapsed_s`` of the last row of an existing metrics.jsonl (0 if none), to continue on resume."""
    rows = read_jsonl(path, skip_bad=True)
    return float(rows[-1].get("elapsed_s", 0.0)) if rows else 0.0


class MetricsCallback(TrainerCallback):
    """Append one JSON row to ``metrics.jsonl`` at every logging step and every validation (main process)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = last_elapsed(path)
        self.start = time.perf_counter()
        self.step_time = 0.0  # seconds inside training steps since the last train log (eval excluded)
        self._t0: float | None = None
        self.last_row: dict[str, Any] = {}
        self.final: dict[str, float] = {}
        self.final_by_step: dict[int, dict[str, float]] = {}  # ``final`` as it stood after each step's rows

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._t0 = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self._t0 is not None:
            self.step_time += time.perf_counter() - self._t0

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" not in logs and "eval_loss" not in logs:
            return
        row: dict[str, Any] = {
            "step": state.global_step,
            "epoch": round(state.epoch or 0.0, 4),
            "total_steps": state.max_steps,
            "elapsed_s": round(self.offset + time.perf_counter() - self.start, 2),
        }
        for key, name in METRIC_NAMES.items():
            if key in logs:
                row[name] = float(logs[key])
        if "real_tokens" in logs and self.step_time > 0:
            row["tokens_per_s"] = round(logs["real_tokens"] / self.step_time, 1)
            self.step_time = 0.0
        self.last_row = row
        self.final.update({k: v for k, v in row.items() if k.startswith(("train_", "valid_"))})
        self.final_by_step[state.global_step] = dict(self.final)
        if state.is_world_process_zero:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
                f.flush()


class ProgressCallback(TrainerCallback):
    """A tqdm bar over optimizer steps showing the latest loss, tokens/s and the ETA (main process)."""

    def __init__(self, metrics: MetricsCallback) -> None:
        self.metrics = metrics
        self.bar: Any = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=state.max_steps,
                initial=state.global_step,
                desc="train",
                unit="step",
                dynamic_ncols=True,
            )

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        row = self.metrics.last_row
        if self.bar is not None and row:
            shown = {
                "loss": row.get("train_loss"),
                "valid": row.get("valid_loss"),
                "tok/s": row.get("tokens_per_s"),
            }
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items() if v is not None}, refresh=True)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class EpochEndEvalCallback(TrainerCallback):
    """Validate at the end of every epoch too (``eval_steps`` only covers steps), unless just validated."""

    def __init__(self) -> None:
        self.last_eval_step = -1

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if control.should_evaluate:
            self.last_eval_step = state.global_step
        return control

    def on_epoch_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if state.global_step != self.last_eval_step:
            control.should_evaluate = True
        return control


class TimeBudgetCallback(TrainerCallback):
    """Stop training once ``minutes`` of wall-clock training have passed (checked after each step)."""

    def __init__(self, minutes: float) -> None:
        self.seconds = minutes * 60
        self.start = 0.0
        self.stopped_step: int | None = None

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.start = time.perf_counter()

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if time.perf_counter() - self.start >= self.seconds and not control.should_training_stop:
            control.should_training_stop = True
            self.stopped_step = state.global_step
        return control


class EarlyStoppingCallback(TrainerCallback):
    """Stop when ``patience`` validations in a row bring no lower valid_loss; end with the best weights.

    At each new best validation the trainable parameters (the adapter, for LoRA: a few MB) are copied. When
    training ends on any other weights (a worse validation, or steps trained after the best one and never
    validated) they are restored, so ``adapter/`` holds the best validated model, as
    ``load_best_model_at_end`` does in transformers, without requiring a checkpoint at every validation.
    ``restored_step`` then names the step whose weights were put back.
    """

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best = float("inf")
        self.best_step: int | None = None
        self.restored_step: int | None = None
        self.bad = 0
        self._best_params: dict[str, Any] = {}

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **kwargs: Any
    ) -> Any:
        loss = (metrics or {}).get("eval_loss")
        if loss is None:
            return control
        if loss < self.best:
            self.best, self.bad, self.best_step = loss, 0, state.global_step
            model = kwargs.get("model")
            if model is not None:
                self._best_params = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
        else:
            self.bad += 1
            if self.bad >= self.patience:
                control.should_training_stop = True
        return control

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        """Put back the weights of the best validation unless the run ended on exactly those weights."""
        model = kwargs.get("model")
        if self.best_step in (None, state.global_step) or not self._best_params or model is None:
            return control
        import torch

        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in self._best_params:
                    param.copy_(self._best_params[name])
        self.restored_step = self.best_step
        if state.is_world_process_zero:
            why = "a later validation was worse" if self.bad else "later steps were never validated"
            print(
                f"early stopping: restored the weights of step {self.best_step} (valid_loss {self.best:.4f}, "
                f"the best validation; {why})"
            )
        return control


def build_callbacks(cfg: Any, validating: bool) -> list[Any]:
    """The callbacks every training method uses: metrics rows, the progress bar, validation at each epoch,
    early stopping and the time budget, as the TrainConfig asks."""
    metrics = MetricsCallback(cfg.output_dir / "metrics.jsonl")
    callbacks: list[Any] = [metrics, ProgressCallback(metrics)]
    if validating:
        callbacks.append(EpochEndEvalCallback())
    if cfg.early_stopping_patience:
        callbacks.append(EarlyStoppingCallback(cfg.early_stopping_patience))
    if cfg.max_minutes:
        callbacks.append(TimeBudgetCallback(cfg.max_minutes))
    return callbacks


def remove_hf_printers(trainer: Any) -> None:
    """Drop transformers' own log printer and progress bar (MetricsCallback and ProgressCallback replace them)."""
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(HfProgressCallback)


def final_metrics(callbacks: list[Any]) -> tuple[dict[str, float], int | None]:
    """The run's final train/valid metrics and, when early stopping restored earlier weights, their step.

    After a restore the final metrics are those of the restored step's validation (and the last train
    metrics logged up to it), so run.json describes the weights that were saved.
    """
    metrics = next(cb for cb in callbacks if isinstance(cb, MetricsCallback))
    early = next((cb for cb in callbacks if isinstance(cb, EarlyStoppingCallback)), None)
    step = early.restored_step if early is not None else None
    if step is None:
        return dict(metrics.final), None
    return dict(metrics.final_by_step.get(step, metrics.final)), step  # the step's validation logged a row
