"""Map OpenAI fine-tuning requests onto tunesmith's TrainConfig, name the resulting models, and turn a run's
metrics and log into OpenAI's results file and error message.

Pure functions on plain data: the worker writes the TrainConfig they build as the run's config.yaml.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tunesmith.core.config import format_validation_errors
from tunesmith.core.errors import ConfigError
from tunesmith.serve.schemas import Hyperparameters, JobCreate, Method, MethodSection
from tunesmith.train.config import DpoSettings, TrainConfig

BASE_LEARNING_RATE = 2e-4  # LoRA's usual peak LR; OpenAI's learning_rate_multiplier scales it
# OpenAI's n_epochs "auto": 3 epochs, moved so that examples x epochs stays within [100, 25,000], 1..25 epochs.
TARGET_EPOCHS, MIN_TARGET_EXAMPLES, MAX_TARGET_EXAMPLES, MAX_AUTO_EPOCHS = 3, 100, 25_000, 25
# ft:<base>:<suffix>:<job id>[:ckpt-step-<n>]; the job id is the last part (or the one before ckpt-step-).
RESULTS_COLUMNS = ("step", "train_loss", "train_accuracy", "valid_loss", "valid_mean_token_accuracy")  # OpenAI's
PROGRESS_BAR = re.compile(r"\|\s*\d+/\d+\s*\[")  # tqdm: "train:  25%|##   | 1/4 [00:01<00:03, ...]"
TRACEBACK = "Traceback (most recent call last):"
MAX_ERROR_CHARS = 1000
MODEL_NAME_RE = re.compile(r"^ft:.*:(ftjob-[A-Za-z0-9]+)(?::ckpt-step-\d+)?$")
# TrainConfig keys the API may not set: they are paths on the server or fixed by the job itself.
RESERVED_KEYS = frozenset({"model", "train_file", "valid_file", "output_dir", "method", "seed", "report_to"})


def resolve_method(req: JobCreate) -> Method:
    """The job's ``method`` with hyperparameters merged from the deprecated top-level ``hyperparameters``.

    Unset values become "auto" (resolved by :func:`resolve_auto_hyperparameters` once the data is counted).
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
    if job.get("report_to"):
        data["report_to"] = list(job["report_to"])
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


def auto_epochs(n_examples: int) -> int:
    """OpenAI's default epochs for ``n_examples`` training examples."""
    if n_examples * TARGET_EPOCHS < MIN_TARGET_EXAMPLES:
        return min(MAX_AUTO_EPOCHS, MIN_TARGET_EXAMPLES // max(n_examples, 1))
    if n_examples * TARGET_EPOCHS > MAX_TARGET_EXAMPLES:
        return max(1, MAX_TARGET_EXAMPLES // n_examples)
    return TARGET_EPOCHS


def resolve_auto_hyperparameters(method: dict[str, Any], overrides: dict[str, Any], n_examples: int) -> dict[str, Any]:
    """``method`` (dumped) with every "auto" hyperparameter replaced by the value training will use.

    n_epochs: ``epochs`` from ``overrides`` (server defaults + training_config) when set there, else OpenAI's
    rule (:func:`auto_epochs`). batch_size: ``overrides``' batch_size, else TrainConfig's (8).
    learning_rate_multiplier: ``overrides``' learning_rate / BASE_LEARNING_RATE, else 1.0 (2e-4).
    beta (dpo): ``overrides``' dpo.beta, else DpoSettings' (0.1).
    """
    fields = TrainConfig.model_fields
    defaults = {
        "n_epochs": configured_epochs(overrides.get("epochs"), n_examples),
        "batch_size": overrides.get("batch_size", fields["batch_size"].default),
        "learning_rate_multiplier": overrides.get("learning_rate", fields["learning_rate"].default)
        / BASE_LEARNING_RATE,
        "beta": (overrides.get("dpo") or {}).get("beta", DpoSettings.model_fields["beta"].default),
    }
    section = method[method["type"]]
    hp = {k: defaults[k] if v == "auto" else v for k, v in section["hyperparameters"].items()}
    return {**method, method["type"]: {**section, "hyperparameters": hp}}


def configured_epochs(epochs: Any, n_examples: int) -> int | str:
    """n_epochs "auto" with training_config's ``epochs`` (shown while a fraction: n_epochs is an integer)."""
    if epochs is None:
        return auto_epochs(n_examples)
    return int(epochs) if isinstance(epochs, int | float) and float(epochs).is_integer() else "auto"


def check_overrides(overrides: dict[str, Any]) -> None:
    """Refuse reserved or unknown TrainConfig keys in ``training_config`` (all listed at once)."""
    reserved = sorted(set(overrides) & RESERVED_KEYS)
    unknown = sorted(set(overrides) - set(TrainConfig.model_fields))
    problems = [f"{k} is set by the job itself" for k in reserved] + [f"{k} is not a TrainConfig key" for k in unknown]
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
    """The job id inside an ``ft:`` model or checkpoint name, if it has that shape (whatever the suffix holds)."""
    match = MODEL_NAME_RE.match(name)
    return match.group(1) if match else None


def results_csv(rows: list[dict[str, Any]]) -> str:
    """OpenAI's results file: one line per step with its train and validation metrics (blank when absent)."""
    by_step: dict[int, dict[str, Any]] = {}
    names = {"train_mean_token_accuracy": "train_accuracy"}
    for row in rows:
        if "step" in row:
            merged = by_step.setdefault(int(row["step"]), {"step": int(row["step"])})
            merged.update({names.get(k, k): v for k, v in row.items() if names.get(k, k) in RESULTS_COLUMNS})
    out = io.StringIO()
    writer = csv.DictWriter(out, RESULTS_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(by_step[s] for s in sorted(by_step))
    return out.getvalue()


def failure_message(log_text: str) -> str:
    """Why a trainer failed, from its log: the CLI's ``error:``/``hint:`` lines, else the exception that ended
    the last traceback, else the last lines; progress-bar redraws are dropped."""
    lines = [ln.rstrip() for ln in log_text.splitlines()]  # splitlines also splits tqdm's \r redraws
    lines = [ln for ln in lines if ln.strip() and not PROGRESS_BAR.search(ln)]
    errors = [i for i, ln in enumerate(lines) if ln.startswith("error:")]
    if errors:  # the CLI printed a TunesmithError (wrapped by rich at the terminal width)
        picked = " ".join(ln.strip() for ln in lines[errors[-1] :]).removeprefix("error:").strip()
    elif TRACEBACK in lines:
        after = lines[len(lines) - 1 - lines[::-1].index(TRACEBACK) + 1 :]
        first = next((i for i, ln in enumerate(after) if not ln[0].isspace()), len(after))
        picked = "\n".join(after[first:]) or "\n".join(after[-1:])
    else:
        picked = "\n".join(lines[-3:]) or "(no log)"
    return picked if len(picked) <= MAX_ERROR_CHARS else picked[: MAX_ERROR_CHARS - 3] + "..."
