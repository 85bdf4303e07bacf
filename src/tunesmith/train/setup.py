"""Checks and builders used by run_training: preflight, the ``auto`` choices (precision, packing, attention),
model + adapter, TrainingArguments."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from tunesmith.core.errors import TrainError
from tunesmith.models.load import fast_bf16, load_model_and_tokenizer
from tunesmith.models.registry import resolve_model
from tunesmith.train.config import TrainConfig


def preflight(cfg: TrainConfig, resume: bool) -> None:
    """Every check that needs no model, all reported at once, before anything heavy is loaded.

    Raises:
        TrainError: qlora without CUDA/bitsandbytes, missing data files, or ``resume`` with no checkpoint.
    """
    import torch

    problems: list[str] = []
    hints: list[str] = []
    if cfg.method == "qlora" and not torch.cuda.is_available():
        problems.append("method 'qlora' needs a CUDA GPU (4-bit bitsandbytes kernels) and none is available")
        hints.append("use `--set method=lora` (same adapter, 16-bit base weights) on this machine")
    elif cfg.method == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        problems.append("method 'qlora' needs the bitsandbytes package, which is not installed")
        hints.append("`pip install bitsandbytes`, or use `--set method=lora`")
    for key in ("train_file", "valid_file"):
        path = getattr(cfg, key)
        if path is not None and not Path(path).exists():
            problems.append(f"{key}: {path} does not exist")
            hints.append(f"fix the path in {key}")
    if resume and find_last_checkpoint(cfg) is None:
        problems.append(f"--resume: no checkpoint in {cfg.output_dir / 'checkpoints'}")
        hints.append(
            "checkpoints are written at each epoch end (or every save_steps): resume a run that got that far, "
            "or run without --resume"
        )
    if problems:
        raise TrainError(
            "cannot start training:\n" + "\n".join(f"  {p}" for p in problems),
            "; ".join(hints),
            param="method" if cfg.method == "qlora" else None,
        )


def find_last_checkpoint(cfg: TrainConfig) -> Path | None:
    """The newest ``checkpoints/checkpoint-<step>`` of the run, if any."""
    root = cfg.output_dir / "checkpoints"
    if not root.is_dir():
        return None
    found = [
        p for p in root.glob("checkpoint-*") if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").exists()
    ]
    return max(found, key=lambda p: int(p.name.split("-")[-1]), default=None)


def use_bf16(cfg: TrainConfig) -> bool:
    """Whether to train under bf16 autocast: ``bf16``, or ``auto`` on hardware with fast bf16."""
    if cfg.precision != "auto":
        return cfg.precision == "bf16"
    return fast_bf16()


def is_main_process() -> bool:
    """True in single-process runs and on rank 0 of a distributed run."""
    return os.environ.get("RANK", "0") == "0"


def varlen_attention_available() -> bool:
    """Whether a variable-length (packed-row) attention kernel can run: flash-attention 2 on CUDA."""
    import torch
    from transformers.utils import is_flash_attn_2_available

    return torch.cuda.is_available() and is_flash_attn_2_available()


def use_packing(cfg: TrainConfig) -> bool:
    """Whether batches are packed rows (see ``TrainConfig.packing``): ``auto`` packs only with varlen kernels.

    Without them packed rows cost O(L^2) attention over a block-diagonal mask: on CPU packing trained at
    ~290 tokens/s vs ~500 for length-grouped padding (SmolLM2-135M, docs/training.md).
    """
    if cfg.packing != "auto":
        return bool(cfg.packing)
    return varlen_attention_available()


def log_choices(cfg: TrainConfig, model: Any) -> None:
    """Print what the ``auto`` settings chose on this hardware (run.json records the same)."""
    if is_main_process():
        batches = "packed rows" if use_packing(cfg) and cfg.method != "dpo" else "length-grouped padding"
        print(
            f"train: {batches} (packing: {cfg.packing}), attention {attention_of(model)}, "
            f"precision {'bf16' if use_bf16(cfg) else 'fp32'} (precision: {cfg.precision})"
        )


def attention_of(model: Any) -> str | None:
    """The attention kernel the (possibly PEFT-wrapped) model runs."""
    return getattr(getattr(model, "config", None), "_attn_implementation", None)


EAGER_MAX_TOKENS = 256  # rows up to this long train faster with eager attention on CPU


def attention_impl(cfg: TrainConfig, longest_row: int) -> str:
    """The attention kernel for rows of at most ``longest_row`` tokens (see ``TrainConfig.attention``).

    Eager attention keeps the (rows, heads, L, L) probabilities for backward, which is small for short rows;
    PyTorch's CPU flash-attention backward is slow at these sizes (23% of a step vs ~4% for its forward).
    """
    import torch

    if cfg.attention != "auto":
        return cfg.attention
    if use_packing(cfg) and varlen_attention_available():
        return "flash_attention_2"  # packed rows: the varlen kernel, no block-diagonal mask
    if torch.cuda.is_available() or longest_row > EAGER_MAX_TOKENS:
        return "sdpa"
    return "eager"


def build_model(cfg: TrainConfig, longest_example: int) -> Any:
    """The base model, wrapped in a PEFT LoRA adapter unless ``method`` is ``full``.

    Args:
        longest_example: tokens of the longest (truncated) example; with the packing rows, it bounds the
            longest row a batch can hold, which picks the attention kernel.
    """
    import torch

    if cfg.method == "qlora":
        return build_qlora_model(cfg)
    torch.manual_seed(cfg.seed)
    model, _ = load_model_and_tokenizer(cfg.model, dtype=base_dtype(cfg), device="cpu")
    model.config.use_cache = False
    longest_row = max(longest_example, cfg.pack_length) if use_packing(cfg) else longest_example
    model.set_attn_implementation(attention_impl(cfg, longest_row))
    if cfg.method == "full":
        return model
    from peft import get_peft_model

    return get_peft_model(model, lora_config(cfg))


def base_dtype(cfg: TrainConfig) -> str:
    """Dtype of the base weights: bf16 for adapter methods under bf16, else fp32.

    A frozen base needs no fp32 master copy: bf16 weights halve its memory and spare autocast a bf16 copy of
    every weight per forward (saved again for backward). Measured on SmolLM2-135M, batch 8 x ~80 tokens:
    peak RSS -500 MB and +18% tokens/s. The adapter weights stay fp32 (peft keeps adapters in fp32) and
    still train under autocast; full fine-tuning keeps fp32 weights for its optimizer.
    """
    return "bfloat16" if cfg.method in ("lora", "dpo") and use_bf16(cfg) else "float32"


def lora_config(cfg: TrainConfig) -> Any:
    """peft LoraConfig from ``cfg.lora``."""
    from peft import LoraConfig

    s = cfg.lora
    return LoraConfig(
        r=s.r,
        lora_alpha=s.alpha,
        lora_dropout=s.dropout,
        target_modules=s.target_modules,
        use_rslora=s.use_rslora,
        use_dora=s.use_dora,
        bias="none",
        task_type="CAUSAL_LM",
    )


def build_qlora_model(cfg: TrainConfig) -> Any:
    """4-bit NF4 base weights (bitsandbytes, CUDA) with a LoRA adapter on top."""
    import torch
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    quant = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )
    model = AutoModelForCausalLM.from_pretrained(
        resolve_model(cfg.model), quantization_config=quant, dtype=torch.bfloat16
    )
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    return get_peft_model(model, lora_config(cfg))


def build_training_args(cfg: TrainConfig, **extra: Any) -> Any:
    """transformers TrainingArguments from the config (``extra`` for trainer-specific subclasses)."""
    import torch
    from transformers import TrainingArguments

    has_valid = cfg.valid_file is not None
    cls = extra.pop("args_cls", TrainingArguments)
    on_cpu = not torch.cuda.is_available()
    return cls(
        output_dir=str(cfg.output_dir / "checkpoints"),
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        bf16=use_bf16(cfg),
        use_cpu=on_cpu,
        activation_checkpointing=cfg.gradient_checkpointing,  # transformers 5 name of gradient_checkpointing
        activation_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        logging_first_step=True,
        eval_strategy=("steps" if cfg.eval_steps else "no") if has_valid else "no",
        eval_steps=cfg.eval_steps,
        save_strategy="steps" if cfg.save_steps else "epoch",  # epoch: OpenAI's one checkpoint per epoch
        save_steps=cfg.save_steps or 500,
        save_total_limit=cfg.save_total_limit,
        report_to=list(cfg.report_to),
        remove_unused_columns=False,
        # length groups for padded batches; packed rows, and TRL's DPO rows (no input_ids to measure), shuffle
        train_sampling_strategy="group_by_length" if cfg.method != "dpo" and not use_packing(cfg) else "random",
        disable_tqdm=True,
        ddp_backend="gloo" if on_cpu and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        dataloader_num_workers=0,
        **extra,
    )
