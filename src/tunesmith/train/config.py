"""TrainConfig: every training knob, typed and documented; validated before any model is loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tunesmith.models.bundled import BUNDLED_NAME


class LoraSettings(BaseModel):
    """LoRA adapter settings (used by ``lora``, ``qlora`` and ``dpo``)."""

    model_config = ConfigDict(extra="forbid")
    r: int = Field(default=16, ge=1, description="Rank of the low-rank update.")
    alpha: int = Field(
        default=32,
        ge=1,
        description="LoRA scaling numerator (scale = alpha / r, or alpha / sqrt(r) with rsLoRA).",
    )
    dropout: float = Field(
        default=0.0,
        ge=0.0,
        lt=1.0,
        description="Dropout on the LoRA input. Default 0: on CPU its random masks cost ~27% of a step "
        "(measured, SmolLM2-135M, batch 8x80); raise it for large, noisy datasets.",
    )
    target_modules: list[str] | Literal["all-linear"] = Field(
        default="all-linear",
        description="Module names to adapt, or 'all-linear' (every linear layer but lm_head).",
    )
    use_rslora: bool = Field(default=False, description="Rank-stabilised LoRA scaling (alpha / sqrt(r)).")
    use_dora: bool = Field(default=False, description="Weight-decomposed LoRA (DoRA).")


class DpoSettings(BaseModel):
    """Direct preference optimisation settings (``method: dpo``)."""

    model_config = ConfigDict(extra="forbid")
    beta: float = Field(default=0.1, gt=0.0, description="KL penalty strength of the DPO loss.")


class TrainConfig(BaseModel):
    """Everything `tunesmith train` needs. YAML keys are these field names; `--set a.b=v` overrides them."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(default=BUNDLED_NAME, description="Base model: the bundled default, or a local HF model dir.")
    train_file: Path = Field(
        description="Training data (OpenAI chat JSONL or any format `tunesmith data` reads; preference JSONL for dpo)."
    )
    valid_file: Path | None = Field(default=None, description="Validation data; enables valid_loss and early stopping.")
    output_dir: Path = Field(
        default=Path("runs/train"),
        description="Run directory for adapter/, checkpoints/, metrics.jsonl, config.yaml, run.json.",
    )
    method: Literal["lora", "full", "qlora", "dpo"] = Field(
        default="lora",
        description="lora (default), full fine-tuning, qlora (4-bit, needs CUDA), or dpo "
        "(preference data, trains a LoRA adapter).",
    )
    epochs: float = Field(default=1.0, gt=0, description="Passes over the training data.")
    max_steps: int = Field(default=-1, description="Stop after this many optimizer steps (-1: run all epochs).")
    max_minutes: float | None = Field(
        default=None,
        gt=0,
        description="Time budget: stop after the optimizer step that passes it (the adapter is saved as "
        "for a normal end; None: no limit).",
    )
    batch_size: int = Field(
        default=8, ge=1, description="Examples per optimizer step (per device, before gradient accumulation)."
    )
    gradient_accumulation_steps: int = Field(default=1, ge=1, description="Micro-batches per optimizer step.")
    learning_rate: float = Field(default=2e-4, gt=0, description="Peak learning rate.")
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = Field(
        default="cosine", description="Learning-rate schedule after warmup."
    )
    warmup_ratio: float = Field(default=0.03, ge=0, lt=1, description="Fraction of steps spent warming up.")
    weight_decay: float = Field(default=0.0, ge=0, description="AdamW weight decay.")
    max_grad_norm: float = Field(default=1.0, gt=0, description="Gradient clipping norm.")
    max_seq_length: int = Field(default=1024, ge=16, description="Longer examples are truncated (and reported).")
    pad_to_multiple_of: int = Field(
        default=16,
        ge=1,
        description="Round each batch's width up to a multiple of this. Few distinct shapes keep CPU "
        "kernel caches small: with every width distinct, peak memory grew ~1 GB over a run (measured, "
        "SmolLM2-135M on CPU; 1 = no rounding).",
    )
    max_batch_tokens: int | None = Field(
        default=None,
        ge=16,
        description="Memory cap: a batch whose padded size (rows x width) exceeds this many tokens is run "
        "as several smaller forward/backward passes in the same optimizer step (same gradient, less "
        "activation memory at the longest batches). null: never split.",
    )
    packing: bool | Literal["auto"] = Field(
        default="auto",
        description="true: pack short examples into rows with position ids reset per example (no "
        "cross-example attention); false: length-grouped dynamic padding. auto: packing only where a "
        "variable-length attention kernel exists (CUDA with flash-attention 2, which auto attention then "
        "uses); elsewhere, CPU included, padding: packed rows there pay O(L^2) attention over a "
        "block-diagonal mask (290 vs 500 tokens/s measured on CPU). run.json records the choice.",
    )
    pack_length: int = Field(
        default=512,
        ge=16,
        description="Packed row length in tokens: a batch's examples "
        "are packed into rows of at most this many tokens (attention costs grow with "
        "row length squared, so moderate rows are fastest).",
    )
    precision: Literal["auto", "bf16", "fp32"] = Field(
        default="auto", description="auto: bf16 autocast where the hardware supports it, else fp32."
    )
    attention: Literal["auto", "sdpa", "eager"] = Field(
        default="auto",
        description="Attention kernel. auto: eager on CPU when every row is at most 256 tokens (PyTorch's "
        "CPU flash-attention backward was 23% of a step; eager trained 30% faster, measured on "
        "SmolLM2-135M), flash-attention 2 for packed rows where it is installed (CUDA), sdpa otherwise.",
    )
    gradient_checkpointing: bool = Field(default=False, description="Trade compute for activation memory.")
    seed: int = Field(default=0, description="Seed for data order, initialisation and dropout.")
    eval_steps: int | None = Field(default=None, ge=1, description="Validate every N steps (and at each epoch end).")
    save_steps: int | None = Field(
        default=None,
        ge=1,
        description="Checkpoint every N steps (for --resume). null: a checkpoint at the end of each epoch, "
        "as OpenAI fine-tuning makes one per epoch (save_total_limit keeps the newest).",
    )
    save_total_limit: int | None = Field(
        default=3, ge=1, description="Keep at most this many checkpoints (the newest; null: all)."
    )
    early_stopping_patience: int | None = Field(
        default=None,
        ge=1,
        description="Stop after N validations without a lower valid_loss (needs valid_file). The saved weights "
        "and run.json's final metrics are then the best validation's (restored_step in run.json).",
    )
    logging_steps: int = Field(default=10, ge=1, description="Write train metrics every N steps.")
    report_to: list[Literal["tensorboard", "mlflow", "wandb"]] = Field(
        default_factory=list, description="Extra experiment trackers, passed through to transformers."
    )
    lora: LoraSettings = Field(default_factory=LoraSettings, description="LoRA settings.")
    dpo: DpoSettings = Field(default_factory=DpoSettings, description="DPO settings.")

    @model_validator(mode="after")
    def _check_cross_fields(self) -> TrainConfig:
        if self.early_stopping_patience is not None and self.valid_file is None:
            raise ValueError("early_stopping_patience needs valid_file (early stopping watches valid_loss)")
        return self
