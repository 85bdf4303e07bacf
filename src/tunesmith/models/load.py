"""Load a causal LM and its tokenizer from a resolved local directory (and a torch-free tokenizer for counting)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.core.errors import ModelError, TunesmithError
from tunesmith.models.bundled import BUNDLED_NAME
from tunesmith.models.registry import resolve_model

DEFAULT_CONTEXT = 2048  # tokens, when neither config.json nor the tokenizer names a context window
# ChatML, used only when a tokenizer ships no chat template of its own (e.g. a bare test tokenizer).
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + (message['content'] or '') "
    "+ '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def load_tokenizer(name: str = BUNDLED_NAME) -> Any:
    """The model's tokenizer with a pad token and a chat template (ChatML if it has none).

    Left padding is *not* set here; generation code sets ``padding_side`` itself.
    """
    from transformers import AutoTokenizer

    path = resolve_model(name)
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot load the tokenizer of {name!r} from {path}: {exc}",
            "the directory needs tokenizer.json or tokenizer_config.json",
        ) from exc
    return prepare_tokenizer(tok)


def prepare_tokenizer(tok: Any) -> Any:
    """Give ``tok`` a pad token (its EOS) and a chat template (ChatML) when it lacks them."""
    if tok.chat_template is None:
        tok.chat_template = CHATML_TEMPLATE
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_fast_tokenizer(model: str) -> Any:
    """The model's tokenizer; a plain fast tokenizer is built without ``AutoTokenizer``.

    ``AutoTokenizer`` imports torch through ``transformers.configuration_utils`` (~300 MiB resident, most of
    ``data validate``'s memory), while ``TokenizersBackend`` (what ``AutoTokenizer`` returns for a
    ``tokenizer_config.json`` naming it or ``PreTrainedTokenizerFast``) does not. Other tokenizer classes go
    through :func:`load_tokenizer`.
    """
    path = Path(resolve_model(model))
    try:
        config = json.loads((path / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    if (path / "tokenizer.json").is_file() and config.get("tokenizer_class") in (
        "TokenizersBackend",
        "PreTrainedTokenizerFast",
    ):
        from transformers.tokenization_utils_tokenizers import TokenizersBackend

        return prepare_tokenizer(TokenizersBackend.from_pretrained(path))
    return load_tokenizer(model)


def model_context_length(model: str, tok: Any = None) -> int:
    """The model's context window: ``max_position_embeddings`` from its config.json, else the tokenizer's."""
    try:
        cfg = json.loads((resolve_model(model) / "config.json").read_text(encoding="utf-8"))
        if isinstance(cfg.get("max_position_embeddings"), int):
            return cfg["max_position_embeddings"]
    except (OSError, ValueError, TunesmithError):
        pass
    limit = getattr(tok, "model_max_length", None)
    return limit if isinstance(limit, int) and limit < 1_000_000 else DEFAULT_CONTEXT


def fast_bf16(device: str | None = None) -> bool:
    """Whether ``device`` (default: CUDA when available, else the CPU) runs bf16 matmuls natively: a CUDA GPU that
    supports bf16, or a CPU with AVX512-BF16 or AMX. Without them bf16 is emulated: on an AVX2-only CPU a
    64-token prefill measured 4.8x slower than fp32 (docs/generation.md)."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def inference_dtype(setting: str = "auto", device: str | None = None) -> str:
    """The weights' dtype for generation on ``device``: ``float32`` or ``bfloat16`` as set, ``auto`` = bf16 only
    where it is native (:func:`fast_bf16`), else fp32."""
    if setting != "auto":
        return setting
    return "bfloat16" if fast_bf16(device) else "float32"


def load_model_and_tokenizer(
    name: str = BUNDLED_NAME,
    dtype: str = "float32",
    adapter: str | Path | None = None,
    device: str | None = None,
) -> tuple[Any, Any]:
    """Load ``name`` (and optionally a PEFT adapter on top) for training or inference.

    Args:
        name: model name or local directory (see :func:`resolve_model`).
        dtype: ``float32``, ``bfloat16`` or ``float16`` weights.
        adapter: a PEFT adapter directory to attach.
        device: ``cpu``/``cuda``; default: CUDA when available.

    Returns:
        ``(model, tokenizer)``.

    Raises:
        ModelError: the model or adapter cannot be found or loaded.
    """
    import torch
    from transformers import AutoModelForCausalLM

    path = resolve_model(name)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as exc:
        raise ModelError(
            f"cannot load model {name!r} from {path}: {exc}",
            "check that the directory holds config.json and *.safetensors weights",
        ) from exc
    tok = load_tokenizer(name)
    if adapter is not None:
        from peft import PeftModel

        if not (Path(adapter) / "adapter_config.json").exists():
            raise ModelError(
                f"{adapter} has no adapter_config.json",
                "pass a run's adapter/ directory (written by `tunesmith train`)",
            )
        model = PeftModel.from_pretrained(model, str(adapter))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device), tok
