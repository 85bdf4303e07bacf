"""What a `tunesmith train` run directory serves: its base model and adapter, or its merged model.

Evaluation candidates (``run:runs/x``) and local teachers (``teacher.base_url: local``) read run directories
the same way, through :func:`resolve_run`, and load them for inference with :func:`load_for_inference`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tunesmith.core.errors import ModelError
from tunesmith.models.load import inference_dtype, load_model_and_tokenizer


@dataclass
class ResolvedRun:
    """What a run directory holds: the base model, and the adapter to attach (None for merged models)."""

    model: str
    adapter: Path | None
    metrics_file: Path | None
    trained_tokens: float | None


def is_run_dir(path: str | Path) -> bool:
    """Whether ``path`` is a training run directory (``run.json``, ``adapter/`` or ``model/`` inside), as
    opposed to a model directory or a model name."""
    path = Path(path)
    names = ("run.json", "adapter", "model", "adapter_config.json")
    return path.is_dir() and any((path / name).exists() for name in names)


def resolve_run(path: Path) -> ResolvedRun:
    """Find the model of a training run directory (``adapter/`` + base model, or a merged ``model/``).

    Raises:
        ModelError: the directory is missing or holds neither.
    """
    path = Path(path)
    if not path.is_dir():
        raise ModelError(f"run directory {path} does not exist", "pass a directory written by `tunesmith train`")
    info = _read_json(path / "run.json")
    metrics = path / "metrics.jsonl"
    extra = (metrics if metrics.exists() else None, info.get("trained_tokens"))
    if (path / "model" / "config.json").exists():
        return ResolvedRun(str(path / "model"), None, *extra)
    adapter = path / "adapter" if (path / "adapter" / "adapter_config.json").exists() else None
    if adapter is None and (path / "adapter_config.json").exists():
        adapter = path
    if adapter is None:
        raise ModelError(
            f"{path} has neither adapter/ (with adapter_config.json) nor model/ (with config.json)",
            "point to the output_dir of `tunesmith train`, or export a merged model first",
        )
    base = info.get("model") or _config_model(path / "config.yaml")
    base = base or _read_json(adapter / "adapter_config.json").get("base_model_name_or_path")
    if not base:
        raise ModelError(
            f"{path}: cannot tell the base model of the adapter",
            "add `model:` to the run's config.yaml or run.json",
        )
    return ResolvedRun(str(base), adapter, *extra)


def load_for_inference(
    model: str, adapter: Path | None = None, device: str | None = None, dtype: str = "auto"
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` in eval mode, an adapter merged into the weights (same outputs, no per-layer LoRA
    cost at inference), in ``dtype`` (``auto``: :func:`~tunesmith.models.load.inference_dtype`).

    Raises:
        ModelError: the model or adapter cannot be loaded.
    """
    loaded, tok = load_model_and_tokenizer(model, inference_dtype(dtype, device), adapter=adapter, device=device)
    if adapter is not None:
        loaded = loaded.merge_and_unload()
    return loaded.eval(), tok


def weights_fingerprint(path: Path) -> str:
    """Name, size and mtime of the weight files of a run (``adapter/``, ``model/``) or a model directory:
    retraining into the same directory changes it, so answers cached for the old weights are not reused."""
    path = Path(path)
    files = sorted(
        [*path.glob("adapter/*.safetensors"), *path.glob("model/*.safetensors"), *path.glob("*.safetensors")]
    )
    return ";".join(f"{f.relative_to(path)}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in files)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})", "repair or remove the file") from exc
    return data if isinstance(data, dict) else {}


def _config_model(path: Path) -> str | None:
    if not path.exists():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return data.get("model") if isinstance(data, dict) else None
