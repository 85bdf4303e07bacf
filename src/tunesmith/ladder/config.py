"""DecideConfig: what `tunesmith decide` runs (the data, the rungs' settings, the training budget, the test)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tunesmith.evaluate.retrieval import DEFAULT_TEMPLATE
from tunesmith.models.bundled import BUNDLED_NAME


class RagOptions(BaseModel):
    """The RAG rung (run when `docs` is given)."""

    model_config = ConfigDict(extra="forbid")
    chunk_size: int = Field(default=200, ge=20, description="Words per chunk.")
    chunk_overlap: int = Field(default=40, ge=0, description="Words shared by neighbouring chunks.")
    k: int = Field(default=3, ge=1, le=20, description="Passages placed in the prompt.")
    method: Literal["bm25", "embeddings", "hybrid"] = Field(default="bm25", description="How passages are found.")
    template: str = Field(default=DEFAULT_TEMPLATE, description="User message with {context} and {question}.")


class TeacherOptions(BaseModel):
    """An optional strong model behind an OpenAI-compatible endpoint, measured as one more rung."""

    model_config = ConfigDict(extra="forbid")
    base_url: str = Field(description="OpenAI-compatible base URL (…/v1).")
    model: str = Field(description="The model name at that endpoint.")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="Env var holding the API key.")
    price_model: str | None = Field(default=None, description="Price-table key (default: the model).")


class DecideConfig(BaseModel):
    """Everything `tunesmith decide` needs. YAML keys are these field names; `--set a.b=v` overrides them."""

    model_config = ConfigDict(extra="forbid")
    train_file: Path | None = Field(default=None, description="Training split (chat JSONL).")
    val_file: Path | None = Field(default=None, description="Validation split (early stopping of the fine-tune).")
    test_file: Path | None = Field(default=None, description="Held-out test split every rung is measured on.")
    data_file: Path | None = Field(
        default=None, description="One file to split 80/10/10 (leak-free) instead of train/val/test files."
    )
    docs: Path | None = Field(default=None, description="Documents for the RAG rung (folder or JSONL).")
    output_dir: Path = Field(default=Path("runs/decide"), description="report.json/html, recipes/, train/, eval/.")
    model: str = Field(default=BUNDLED_NAME, description="The base model every local rung uses.")
    json_schema: str = Field(
        default="infer",
        description="Structured rungs: `infer` (from the training answers), a JSON Schema file, or `none` to skip.",
    )
    few_shot_k: int = Field(default=4, ge=1, le=64, description="Examples shown by the few-shot rung.")
    few_shot_selection: Literal["fixed", "nearest"] = Field(
        default="nearest", description="`nearest` (most similar training questions) or `fixed`."
    )
    rag: RagOptions = Field(default_factory=RagOptions, description="The RAG rung's settings.")
    train_config: Path | None = Field(
        default=None, description="A TrainConfig YAML for the fine-tune (default: LoRA with tunesmith's defaults)."
    )
    train_overrides: list[str] = Field(default_factory=list, description="`key=value` overrides of that config.")
    budget_minutes: float | None = Field(default=None, gt=0, description="Training time budget (minutes).")
    max_steps: int | None = Field(default=None, ge=1, description="Training step budget.")
    finetune: bool = Field(default=True, description="Train and measure the fine-tune rungs.")
    teacher: TeacherOptions | None = Field(default=None, description="A strong model to measure as a rung too.")
    margin: float = Field(
        default=0.02, ge=0, description="How far below the best (in the primary metric) still counts as as good."
    )
    metrics: list[str] | Literal["auto"] = Field(
        default="auto",
        description="`auto` (from the answers) or a list; the recommendation ranks on the task's natural metric "
        "if listed, else the first that can rank (e.g. [exact_match, token_f1] for short factual answers).",
    )
    max_new_tokens: int = Field(default=32, ge=1, description="Answer length limit.")
    batch_size: int = Field(default=16, ge=1, description="Local generation batch size.")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto", description="Weights of the local rungs (auto: bfloat16 only where native, else float32)."
    )
    limit: int | None = Field(default=None, ge=1, description="Measure only the first N test examples.")
    seed: int = Field(default=0, description="Seed for splits, shots, training and the bootstrap.")
    bootstrap_samples: int = Field(default=1000, ge=100, description="Bootstrap resamples.")
    prices: Path | None = Field(default=None, description="Price table YAML (default: the shipped one).")

    @model_validator(mode="after")
    def _check(self) -> DecideConfig:
        if self.data_file is None and (self.train_file is None or self.test_file is None):
            raise ValueError("give train_file and test_file (--train, --test), or data_file (--data) to split")
        if self.data_file is not None and (self.train_file or self.test_file):
            raise ValueError("give either data_file or train_file/test_file, not both")
        return self
