"""API schemas, in families: ``XCreate`` (request bodies) and ``XPublic`` (responses), shaped as OpenAI's."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Auto = Literal["auto"]
JobStatus = Literal["validating_files", "queued", "running", "succeeded", "failed", "cancelled", "paused"]


class ErrorDetail(BaseModel):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {...}}``."""

    error: ErrorDetail


# ---------------------------------------------------------------- files


class FilePublic(BaseModel):
    """An uploaded file."""

    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    status: Literal["uploaded", "processed", "error"] = "processed"
    status_details: str | None = None
    expires_at: int | None = None


class FileList(BaseModel):
    """A page of files."""

    object: Literal["list"] = "list"
    data: list[FilePublic]
    has_more: bool = False
    first_id: str | None = None
    last_id: str | None = None


class Deleted(BaseModel):
    """A deletion receipt (files and models)."""

    id: str
    object: str
    deleted: bool


# ---------------------------------------------------------------- jobs


class Hyperparameters(BaseModel):
    """OpenAI hyperparameters: each a number or "auto"."""

    model_config = ConfigDict(extra="forbid")
    n_epochs: int | Auto | None = Field(default=None, description="Passes over the training data.")
    batch_size: int | Auto | None = Field(default=None, description="Examples per step.")
    learning_rate_multiplier: float | Auto | None = Field(
        default=None, description="Times the base LR (2e-4)."
    )
    beta: float | Auto | None = Field(default=None, description="DPO only: KL penalty strength.")


class MethodSection(BaseModel):
    """``method.supervised`` / ``method.dpo``."""

    model_config = ConfigDict(extra="forbid")
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)


class Method(BaseModel):
    """OpenAI's ``method`` object."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["supervised", "dpo"] = "supervised"
    supervised: MethodSection | None = None
    dpo: MethodSection | None = None


class JobCreate(BaseModel):
    """POST /v1/fine_tuning/jobs."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="Base model to fine-tune.")
    training_file: str = Field(description="Id of an uploaded file with purpose fine-tune.")
    validation_file: str | None = Field(default=None, description="Id of an uploaded validation file.")
    suffix: str | None = Field(
        default=None, max_length=64, description="Up to 64 characters added to the fine-tuned model name."
    )
    seed: int | None = Field(default=None, description="Training seed (random when omitted).")
    metadata: dict[str, str] | None = Field(default=None, description="Up to 16 string key/value pairs.")
    hyperparameters: Hyperparameters | None = Field(
        default=None, description="Deprecated by OpenAI in favour of method; still accepted."
    )
    method: Method | None = Field(
        default=None, description="supervised (default) or dpo, with hyperparameters."
    )
    integrations: list[dict[str, Any]] | None = Field(default=None, description="Accepted and ignored.")
    training_config: dict[str, Any] | None = Field(
        default=None,
        description="tunesmith extension: extra TrainConfig keys (max_steps, save_steps, "
        "max_seq_length, lora, ...), e.g. via the SDK's extra_body.",
    )


class JobError(BaseModel):
    """Why a job failed."""

    code: str
    message: str
    param: str | None = None


class JobPublic(BaseModel):
    """A fine-tuning job (``fine_tuning.job``)."""

    id: str
    object: Literal["fine_tuning.job"] = "fine_tuning.job"
    created_at: int
    error: JobError | None = None
    fine_tuned_model: str | None = None
    finished_at: int | None = None
    hyperparameters: Hyperparameters
    model: str
    organization_id: str = "org-tunesmith"
    result_files: list[str] = Field(default_factory=list)
    seed: int
    status: JobStatus
    trained_tokens: int | None = None
    training_file: str
    validation_file: str | None = None
    estimated_finish: int | None = None
    integrations: list[dict[str, Any]] | None = None
    metadata: dict[str, str] | None = None
    method: Method | None = None
    suffix: str | None = None


class JobList(BaseModel):
    """A page of jobs."""

    object: Literal["list"] = "list"
    data: list[JobPublic]
    has_more: bool


class EventPublic(BaseModel):
    """A job event (``fine_tuning.job.event``)."""

    id: str
    object: Literal["fine_tuning.job.event"] = "fine_tuning.job.event"
    created_at: int
    level: Literal["info", "warn", "error"]
    message: str
    data: dict[str, Any] | None = None
    type: Literal["message", "metrics"] = "message"


class EventList(BaseModel):
    """A page of events, newest first."""

    object: Literal["list"] = "list"
    data: list[EventPublic]
    has_more: bool


class CheckpointMetrics(BaseModel):
    """Metrics at a checkpoint's step."""

    step: float | None = None
    train_loss: float | None = None
    train_mean_token_accuracy: float | None = None
    valid_loss: float | None = None
    valid_mean_token_accuracy: float | None = None
    full_valid_loss: float | None = None
    full_valid_mean_token_accuracy: float | None = None


class CheckpointPublic(BaseModel):
    """A checkpoint (``fine_tuning.job.checkpoint``); its model name works in chat completions."""

    id: str
    object: Literal["fine_tuning.job.checkpoint"] = "fine_tuning.job.checkpoint"
    created_at: int
    fine_tuned_model_checkpoint: str
    fine_tuning_job_id: str
    metrics: CheckpointMetrics
    step_number: int


class CheckpointList(BaseModel):
    """A page of checkpoints, newest first."""

    object: Literal["list"] = "list"
    data: list[CheckpointPublic]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None


# ---------------------------------------------------------------- models and aliases


class ModelPublic(BaseModel):
    """A model usable in chat completions."""

    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    """Every model."""

    object: Literal["list"] = "list"
    data: list[ModelPublic]


class AliasCreate(BaseModel):
    """POST /v1/aliases: point ``name`` at ``model`` (a model, fine-tuned model or checkpoint name)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$", description="The stable name."
    )
    model: str = Field(description="Target model, fine-tuned model or checkpoint.")


class AliasChangePublic(BaseModel):
    """One recorded alias change."""

    action: str
    from_target: str | None
    to_target: str
    actor: str
    created_at: int


class AliasPublic(BaseModel):
    """An alias, its target and its history (oldest first)."""

    object: Literal["alias"] = "alias"
    name: str
    model: str
    updated_at: int
    history: list[AliasChangePublic] = Field(default_factory=list)
