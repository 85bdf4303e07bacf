"""API schemas, in families: ``XCreate`` (request bodies) and ``XPublic`` (responses), shaped as OpenAI's."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

PageT = TypeVar("PageT", bound=BaseModel)
Auto = Literal["auto"]
# An alias name is never a path: no '/', and no leading '.' (so not '.' or '..').
ALIAS_NAME_PATTERN = r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$"
MAX_ALIAS_NAME = 128
MAX_SEED = 2**31 - 1  # the jobs.seed column is a 32-bit INTEGER on PostgreSQL
MAX_METADATA_PAIRS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512  # OpenAI's limits
JobStatus = Literal["validating_files", "queued", "running", "succeeded", "failed", "cancelled", "paused"]


def find_lone_surrogate(value: Any, path: str = "") -> str | None:
    """The path of the first string in ``value`` holding a lone UTF-16 surrogate (``"\\udc80"``), if any.

    JSON may escape such code points, but they are not text: no tokenizer or database can encode them.
    """
    if isinstance(value, str):
        return path or "body" if any("\ud800" <= c <= "\udfff" for c in value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = find_lone_surrogate(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None


class ErrorDetail(BaseModel):
    """OpenAI's error object."""

    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """Every error response: ``{"error": {...}}``."""

    error: ErrorDetail


def error_body(message: str, type_: str, param: str | None, code: str | None) -> dict[str, Any]:
    """OpenAI's ``{"error": {...}}`` body."""
    return ErrorBody(error=ErrorDetail(message=message, type=type_, param=param, code=code)).model_dump()


def page_of(list_cls: type[PageT], rows: list[Any], limit: int, to_public: Callable[[Any], Any]) -> PageT:
    """A list page from a query that asked for ``limit + 1`` rows: the first ``limit`` as public objects,
    ``has_more`` when the extra row came back, and ``first_id``/``last_id`` where the list has them."""
    data = [to_public(r) for r in rows[:limit]]
    fields: dict[str, Any] = {"data": data, "has_more": len(rows) > limit}
    if "first_id" in list_cls.model_fields:
        fields.update(first_id=data[0].id if data else None, last_id=data[-1].id if data else None)
    return list_cls(**fields)


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
    """OpenAI hyperparameters: each a number or "auto"; a job shows the resolved numbers once its files are
    validated (status ``queued``)."""

    model_config = ConfigDict(extra="forbid")
    n_epochs: int | Auto | None = Field(
        default=None,
        description="Passes over the training data. auto: training_config's epochs if set, else OpenAI's rule "
        "(3, moved so that examples x epochs stays within 100..25,000; 1..25 epochs).",
    )
    batch_size: int | Auto | None = Field(
        default=None,
        description="Examples per step. auto: training_config's (or the server's) batch_size, else 8.",
    )
    learning_rate_multiplier: float | Auto | None = Field(
        default=None,
        description="Times the base LR (2e-4). auto: training_config's learning_rate / 2e-4, else 1.0.",
    )
    beta: float | Auto | None = Field(
        default=None, description="DPO only: KL penalty strength. auto: training_config's dpo.beta, else 0.1."
    )


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


class WandbIntegration(BaseModel):
    """OpenAI's ``integrations[].wandb``: where the run's metrics go in Weights & Biases."""

    model_config = ConfigDict(extra="forbid")
    project: str = Field(min_length=1, max_length=128, description="W&B project (WANDB_PROJECT).")
    name: str | None = Field(default=None, max_length=128, description="Run name (default: the job id).")
    entity: str | None = Field(default=None, max_length=128, description="Team or user (WANDB_ENTITY).")
    tags: list[str] | None = Field(default=None, max_length=50, description="Run tags.")


class Integration(BaseModel):
    """One entry of a job's ``integrations`` (OpenAI supports W&B only, and so does tunesmith)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["wandb"] = Field(description="The integration kind.")
    wandb: WandbIntegration


class JobCreate(BaseModel):
    """POST /v1/fine_tuning/jobs."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(description="Base model to fine-tune.")
    training_file: str = Field(description="Id of an uploaded file with purpose fine-tune.")
    validation_file: str | None = Field(default=None, description="Id of an uploaded validation file.")
    suffix: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Up to 64 letters, digits, '-', '_' or '.' added to the fine-tuned model name.",
    )
    seed: int | None = Field(
        default=None, ge=0, le=MAX_SEED, description="Training seed, 0..2^31-1 (random when omitted)."
    )
    metadata: dict[str, str] | None = Field(
        default=None, description="Up to 16 pairs; keys up to 64 characters, values up to 512."
    )
    hyperparameters: Hyperparameters | None = Field(
        default=None, description="Deprecated by OpenAI in favour of method; still accepted."
    )
    method: Method | None = Field(default=None, description="supervised (default) or dpo, with hyperparameters.")
    integrations: list[Integration] | None = Field(
        default=None,
        max_length=10,
        description="W&B: the run reports to it when the server has wandb installed (else a warning event).",
    )
    training_config: dict[str, Any] | None = Field(
        default=None,
        description="tunesmith extension: extra TrainConfig keys (max_steps, save_steps, "
        "max_seq_length, lora, ...), e.g. via the SDK's extra_body.",
    )

    @field_validator("metadata")
    @classmethod
    def _check_metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is None:
            return value
        if len(value) > MAX_METADATA_PAIRS:
            raise ValueError(f"at most {MAX_METADATA_PAIRS} key/value pairs (got {len(value)})")
        for key, item in value.items():
            if len(key) > MAX_METADATA_KEY:
                raise ValueError(f"key {key[:20]!r}... is longer than {MAX_METADATA_KEY} characters")
            if len(item) > MAX_METADATA_VALUE:
                raise ValueError(f"the value of {key!r} is longer than {MAX_METADATA_VALUE} characters")
        return value


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
    integrations: list[Integration] | None = None
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
        min_length=1,
        max_length=MAX_ALIAS_NAME,
        pattern=ALIAS_NAME_PATTERN,
        description="The stable name: letters, digits, '.', '_' or '-', not starting with '.'.",
    )
    model: str = Field(description="Target model, fine-tuned model or checkpoint.")


class AliasChangePublic(BaseModel):
    """One recorded alias change."""

    action: str
    from_target: str | None
    to_target: str
    actor: str
    created_at: int


class RecipeSummary(BaseModel):
    """What a recipe alias applies, for /v1/aliases and the dashboard."""

    name: str = Field(description="The recipe's rung name (e.g. `structured`).")
    model: str = Field(description="The base model, or the `tunesmith train` run directory it answers with.")
    description: str = Field(description="One line: system prompt, shots, schema, retrieval, max_tokens.")


class AliasPublic(BaseModel):
    """An alias, its target and its history (oldest first)."""

    object: Literal["alias"] = "alias"
    name: str
    model: str
    updated_at: int
    history: list[AliasChangePublic] = Field(default_factory=list)
    recipe: RecipeSummary | None = Field(default=None, description="What the recipe applies (recipe aliases).")
