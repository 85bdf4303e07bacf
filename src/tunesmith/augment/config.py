"""Typed settings for the teacher endpoint, augmentation and distillation (every knob documented).

The one source of their defaults: `tunesmith data augment|distill` flags read theirs from here, and a YAML
config (configs/augment/, configs/distill/) with `--set key=value` fills the same models.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tunesmith.core.errors import ConfigError

# Distillation asks for the teacher's most likely answer: the one a student should learn.
DISTILL_TEMPERATURE = 0.0
# teacher.base_url naming this machine's generation engine instead of an HTTP endpoint
LOCAL = "local"


class TeacherSettings(BaseModel):
    """How to reach an OpenAI-compatible teacher model and how hard to try."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(
        description="Teacher model name as the endpoint knows it (e.g. gpt-4o-mini, ft:...); with base_url "
        "`local`: a model name or directory, or a `tunesmith train` run directory (its fine-tune)."
    )
    base_url: str | None = Field(
        default=None,
        description="Endpoint base URL (…/v1); None = api.openai.com; `local` = answer on this machine with "
        "tunesmith's generation engine (no server, no API key).",
    )
    api_key_env: str = Field(
        default="OPENAI_API_KEY", description="Environment variable holding the API key (not read for `local`)."
    )
    concurrency: int = Field(
        default=4, ge=1, le=256, description="Requests in flight at once (`local`: rows decoded together)."
    )
    timeout_s: float = Field(default=60.0, gt=0, description="Per-request timeout in seconds.")
    max_retries: int = Field(default=5, ge=0, le=20, description="Retries on 429/5xx/connection errors.")
    backoff_s: float = Field(default=1.0, ge=0, description="First retry delay; doubles on each retry.")
    max_backoff_s: float = Field(default=60.0, ge=0, description="Cap on one retry delay (Retry-After too).")
    temperature: float = Field(
        default=0.7,
        ge=0,
        le=2,
        description=f"Sampling temperature of the teacher (distill: {DISTILL_TEMPERATURE} unless set).",
    )
    max_tokens: int = Field(default=512, ge=1, description="Completion token limit per request.")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description="`local` only: the weights' dtype (auto: bfloat16 where it is native, else float32).",
    )
    cache: Path | None = Field(
        default=None,
        description="Append-only JSONL request cache (resume without paying twice); default: beside the output file.",
    )
    prices: Path | None = Field(default=None, description="Price table YAML for cost estimates (default: bundled).")


class AugmentConfig(BaseModel):
    """`tunesmith data augment`: paraphrase user turns through a teacher, keep (or restyle) the answers."""

    model_config = ConfigDict(extra="forbid")
    input: Path = Field(
        description="Source dataset in any format `data validate` reads (OpenAI, Alpaca, ShareGPT, CSV, logs)."
    )
    output: Path | None = Field(
        default=None,
        description="Where to write originals + accepted variations (JSONL); default: INPUT.augmented.jsonl.",
    )
    teacher: TeacherSettings
    variations: int = Field(default=3, ge=1, le=20, description="Paraphrases requested per user turn.")
    rewrite_answers: bool = Field(default=False, description="Also restyle each assistant answer via the teacher.")
    include_originals: bool = Field(default=True, description="Copy the source examples into the output too.")
    near_dup_threshold: float = Field(
        default=0.8, gt=0, le=1, description="MinHash Jaccard above which a variation is a near-duplicate."
    )

    @model_validator(mode="after")
    def _default_output(self) -> AugmentConfig:
        if self.output is None:
            self.output = self.input.with_name(self.input.stem + ".augmented.jsonl")
        return self


class DistillConfig(BaseModel):
    """`tunesmith data distill`: a teacher answers user prompts; optional judge and JSON-schema filters."""

    model_config = ConfigDict(extra="forbid")
    prompts: Path = Field(
        description="Prompts: .txt (one per line), .jsonl ({'prompt'} or {'messages'}), or a dataset in any "
        "format `data validate` reads (cut after its last user turn)."
    )
    output: Path | None = Field(
        default=None,
        description="Where to write the distilled training set (JSONL); default: PROMPTS.distilled.jsonl.",
    )
    teacher: TeacherSettings
    system: str | None = Field(
        default=None,
        description="System prompt sent to the teacher and kept in the examples (overrides one in the prompts file).",
    )
    judge: TeacherSettings | None = Field(
        default=None,
        description="Judge model scoring each answer 1-10; keys it does not set are the teacher's (same endpoint).",
    )
    min_score: float = Field(default=7.0, ge=1, le=10, description="Keep answers the judge scores >= this.")
    json_schema: Path | None = Field(default=None, description="JSON Schema every answer must satisfy.")
    near_dup_threshold: float = Field(
        default=0.8, gt=0, le=1, description="MinHash Jaccard above which a prompt is a near-duplicate."
    )

    @model_validator(mode="before")
    @classmethod
    def _teacher_defaults(cls, data: Any) -> Any:
        """Keys given as a mapping (YAML, flags): the teacher answers at DISTILL_TEMPERATURE unless set, and
        the judge takes every key it does not set from the teacher."""
        if not isinstance(data, dict) or not isinstance(data.get("teacher"), dict):
            return data
        teacher = {"temperature": DISTILL_TEMPERATURE, **data["teacher"]}
        judge = data.get("judge")
        return {**data, "teacher": teacher, "judge": {**teacher, **judge} if isinstance(judge, dict) else judge}

    @model_validator(mode="after")
    def _resolve_paths(self) -> DistillConfig:
        if self.output is None:
            self.output = self.prompts.with_name(self.prompts.stem + ".distilled.jsonl")
        if self.json_schema is not None and not self.json_schema.exists():
            raise ConfigError(
                f"json_schema (--json-schema) {self.json_schema}: no such file", "pass a JSON Schema file"
            )
        return self


def is_local(teacher: TeacherSettings) -> bool:
    """Whether ``teacher`` runs on this machine's generation engine (``base_url: local``)."""
    return teacher.base_url == LOCAL


def cache_path(teacher: TeacherSettings, output: Path) -> Path:
    """The request cache for a run: the configured one, or ``OUTPUT.cache.jsonl`` beside the output."""
    return teacher.cache or output.with_name(output.name + ".cache.jsonl")


def rejects_path(output: Path) -> Path:
    """Where rejected variations/answers are written, with their reasons."""
    return output.with_name(output.stem + ".rejects.jsonl")
