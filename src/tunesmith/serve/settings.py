"""ServeSettings: every knob of `tunesmith serve`, typed and documented."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tunesmith.models.bundled import BUNDLED_NAME


class ServeSettings(BaseModel):
    """Settings of the OpenAI-compatible server (flags of `tunesmith serve`)."""

    model_config = ConfigDict(extra="forbid")
    host: str = Field(default="127.0.0.1", description="Interface to listen on; non-loopback needs API keys.")
    port: int = Field(default=8000, ge=0, le=65535, description="TCP port.")
    data_dir: Path = Field(
        default=Path("tunesmith-data"), description="Files, jobs, adapters and the SQLite database live here."
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL (e.g. postgresql+psycopg://...); default: SQLite in data_dir.",
    )
    api_keys: list[str] = Field(
        default_factory=list,
        description="Accepted `Authorization: Bearer` keys; empty means no auth (loopback only).",
    )
    base_models: list[str] = Field(
        default_factory=lambda: [BUNDLED_NAME],
        description="Base models listed by /v1/models and accepted for jobs and chat (names or local HF dirs).",
    )
    max_upload_bytes: int = Field(default=512 * 1024 * 1024, ge=1, description="Largest accepted upload.")
    max_adapters: int = Field(default=4, ge=1, description="Adapters kept loaded on the shared base model (LRU).")
    max_batch_size: int = Field(
        default=32,
        ge=1,
        description="Chat requests generated together at most (rows of the running batch; 32 measured 1.4x the "
        "tokens per CPU-second of 8 at 32 clients on 2 cores, docs/generation.md).",
    )
    batch_window_ms: float = Field(
        default=10.0,
        ge=0,
        description="How long the batcher waits for more requests for the same model before generating.",
    )
    engine: Literal["continuous", "static", "vllm"] = Field(
        default="continuous",
        description="Chat generation: continuous (requests join and leave the running batch at every decode "
        "step, base and adapter rows share it), static (a batch of one model and equal sampling settings runs "
        "until its longest answer) or vllm (vLLM's engine with LoRA on, the first base model only; needs the vllm "
        "package and a GPU it supports; untested in this project). See docs/generation.md.",
    )
    inference_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description="Weights' dtype for generation; auto: bfloat16 where it is native (a CUDA GPU with bf16, a CPU "
        "with AVX512-BF16 or AMX), else float32 (emulated bf16 prefills measured 4.8x slower; docs/generation.md).",
    )
    inference_threads: int = Field(
        default=0,
        ge=0,
        description="torch intra-op threads for generation; 0 (auto): one per core but one, which is left to the "
        "HTTP server and tokenizer (on 2 shared cores 2 threads measured up to 10x slower than 1; docs/generation.md).",
    )
    prefix_cache_mb: int = Field(
        default=256,
        ge=0,
        description="Memory for cached prompt prefixes per base model (continuous engine): a prompt that starts "
        "like an earlier one (a shared system prompt, a few-shot block) reuses its keys and values; 0: off.",
    )
    max_concurrent_jobs: int = Field(default=1, ge=1, description="Training processes run at the same time.")
    poll_interval_s: float = Field(default=0.5, gt=0, description="How often the worker checks jobs and metrics.")
    train_defaults: dict[str, Any] = Field(
        default_factory=dict,
        description="TrainConfig keys applied to every job (e.g. max_seq_length), before the job's own settings.",
    )
    device: str | None = Field(default=None, description="Inference device (cpu/cuda); default: CUDA if present.")

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, data_dir: Path) -> Path:
        # Paths stored in the database must not depend on the working directory: trainers run in job folders.
        return data_dir.expanduser().resolve()

    @model_validator(mode="after")
    def _check_exposure(self) -> ServeSettings:
        if not self.api_keys and not is_loopback(self.host):
            raise ValueError(
                f"refusing to listen on {self.host} without API keys; pass --api-key KEY (or set "
                "TUNESMITH_API_KEYS) or listen on 127.0.0.1"
            )
        return self

    def resolved_database_url(self) -> str:
        """``database_url`` or SQLite in ``data_dir``."""
        from tunesmith.store.db import default_database_url

        return self.database_url or default_database_url(self.data_dir)


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts local connections."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def keys_from_env() -> list[str]:
    """API keys from ``TUNESMITH_API_KEYS`` (comma-separated)."""
    return [k.strip() for k in os.environ.get("TUNESMITH_API_KEYS", "").split(",") if k.strip()]
