"""Resolve a model name or path to a local Hugging Face model directory. Nothing is downloaded."""

from __future__ import annotations

import os
from pathlib import Path

from tunesmith.core.errors import ModelError
from tunesmith.models.bundled import BUNDLED_ALIASES, BUNDLED_NAME, cache_root, convert_bundled


def resolve_model(name: str = BUNDLED_NAME) -> Path:
    """Return the local directory holding ``name``'s config, weights and tokenizer.

    Args:
        name: ``smollm2-135m-instruct`` (the bundled default), a local model directory, or a hub id whose
            files are already in the local Hugging Face cache.

    Raises:
        ModelError: the model is not available locally (nothing is downloaded at run time).
    """
    if name in BUNDLED_ALIASES:
        target = cache_root() / BUNDLED_NAME
        if (target / "config.json").exists():
            return target
        return convert_bundled(target)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise ModelError(
                f"{path} is a directory but has no config.json",
                "point to a Hugging Face model directory (config.json + weights + tokenizer files)",
            )
        return path
    cached = _find_in_hf_cache(name)
    if cached is not None:
        return cached
    raise ModelError(
        f"model {name!r} is not available locally",
        "tunesmith never downloads models at run time. Use the bundled default "
        f"'{BUNDLED_NAME}', or download the model once on a machine with hub access "
        "(`huggingface-cli download ORG/NAME --local-dir DIR`), copy DIR here and pass its path.",
        param="model",
    )


def _find_in_hf_cache(repo_id: str) -> Path | None:
    """A hub id's newest snapshot in the local HF cache (``$HF_HOME/hub``), if its config is there."""
    if "/" not in repo_id:
        return None
    hf_home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    snapshots = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    found = sorted((p for p in snapshots.iterdir() if (p / "config.json").exists()), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None
