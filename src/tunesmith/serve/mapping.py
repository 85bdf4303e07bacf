"""Map OpenAI fine-tuning requests onto tunesmith's TrainConfig, and name the resulting models.

Pure functions on plain data: the worker writes the TrainConfig they build as the run's config.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tunesmith.config import format_validation_errors
from tunesmith.errors import ConfigError
from tunesmith.serve.schemas import Hyperparameters, JobCreate, Method, MethodSection
from tunesmith.train.config import TrainConfig

BASE_LEARNING_RATE = 2e-4  # LoRA's usual peak LR; OpenAI's learning_rate_multiplier scales it
# TrainConfig keys the API may not set: they are paths on the server or fixed by the job itself.
RESERVED_KEYS = frozenset({"model", "train_file", "valid_file", "output_dir", "method", "seed", "report_to"})


def resolve_method(req: JobCreate) -> Method:
    """The job's ``method`` with hyperparameters merged from the deprecated top-level ``hyperparameters``.

    Unset values become "auto" (resolved to TrainConfig defaults when the config is built).
    """
    method = req.method or Method(type="supervised")
    section = getattr(method, method.type) or MethodSection()
    merged = section.hyperparameters.model_dump(exclude_none=True)
    if req.hyperparameters is not None:
        merged = {**req.hyperparameters.model_dump(exclude_none=True), **merged}
    if method.type != "dpo" and "beta" in merged:
        raise ConfigError(
            "hyperparameters.beta is only valid for method.type 'dpo'",
            "remove beta, or set method.type to dpo",
            param="method.supervised.hyperparameters.beta",
        )
    keys = ["n_epochs", "batch_size", "learning_rate_multiplier"] + (["beta"] if method.type == "dpo" else [])
    filled = Hyperparameters(**{k: merged.get(k, "auto") for k in keys})
    return Method(type=method.type, **{method.type: MethodSection(hyperparameters=filled)})


def build_train_config(
    job: dict[str, Any],
    train_file: Path,
    valid_file: Path | None,
    output_dir: Path,
    defaults: dict[str, Any] | None = None,
) -> TrainConfig:
    """A TrainConfig for a stored job.

    Args:
        job: ``model``, ``seed``, ``method`` (as from :func:`resolve_method`, dumped) and ``train_overrides``.
        train_file: the training file on disk.
        valid_file: the validation file on disk, if any.
        output_dir: where the run writes adapter/, checkpoints/, metrics.jsonl.
        defaults: server-wide TrainConfig keys (``ServeSettings.train_defaults``), below the job's own.

    Raises:
        ConfigError: an override names a reserved or unknown key, or a value is out of range.
    """
    overrides = {**(defaults or {}), **(job.get("train_overrides") or {})}
    check_overrides(overrides)
    method = job["method"]
    hp = method[method["type"]]["hyperparameters"]
    data: dict[str, Any] = {
        **overrides,
        "model": job["model"],
        "train_file": str(train_file),
        "valid_file": str(valid_file) if valid_file else None,
        "output_dir": str(output_dir),
        "method": "dpo" if method["type"] == "dpo" else "lora",
        "seed": job["seed"],
    }
    if hp.get("n_epochs", "auto") != "auto":
        data["epochs"] = hp["n_epochs"]
    if hp.get("batch_size", "auto") != "auto":
        data["batch_size"] = hp["batch_size"]
    if hp.get("learning_rate_multiplier", "auto") != "auto":
        data["learning_rate"] = BASE_LEARNING_RATE * float(hp["learning_rate_multiplier"])
    if method["type"] == "dpo" and hp.get("beta", "auto") != "auto":
        data["dpo"] = {**data.get("dpo", {}), "beta": hp["beta"]}
    try:
        return TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            "invalid fine-tuning settings:\n" + format_validation_errors(exc),
            "fix the hyperparameters / training_config keys listed",
            param="hyperparameters",
        ) from exc


def check_overrides(overrides: dict[str, Any]) -> None:
    """Refuse reserved or unknown TrainConfig keys in ``training_config`` (all listed at once)."""
    reserved = sorted(set(overrides) & RESERVED_KEYS)
    unknown = sorted(set(overrides) - set(TrainConfig.model_fields))
    problems = [f"{k} is set by the job itself" for k in reserved] + [
        f"{k} is not a TrainConfig key" for k in unknown
    ]
    if problems:
        raise ConfigError(
            "training_config: " + "; ".join(problems),
            "allowed keys: " + ", ".join(sorted(set(TrainConfig.model_fields) - RESERVED_KEYS)),
            param="training_config",
        )


def fine_tuned_model_name(base: str, suffix: str | None, job_id: str) -> str:
    """``ft:<base>:<suffix>:<job id>`` (a local-path base contributes its directory name)."""
    base_name = Path(base).name if ("/" in base or "\\" in base) else base
    return f"ft:{base_name.replace(':', '-')}:{suffix or ''}:{job_id}"


def checkpoint_model_name(fine_tuned_model: str, step: int) -> str:
    """OpenAI's checkpoint model name: ``<fine-tuned model>:ckpt-step-<step>``."""
    return f"{fine_tuned_model}:ckpt-step-{step}"


def job_id_from_model(name: str) -> str | None:
    """The job id inside an ``ft:`` model or checkpoint name, if it has that shape."""
    if not name.startswith("ft:"):
        return None
    parts = name.split(":")
    if len(parts) >= 4 and parts[3].startswith("ftjob-"):
        return parts[3]
    return None
