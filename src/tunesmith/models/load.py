"""Load a causal LM and its tokenizer from a resolved local directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.core.errors import ModelError
from tunesmith.models.bundled import BUNDLED_NAME
from tunesmith.models.registry import resolve_model

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
