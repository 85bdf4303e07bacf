"""``/v1/batches`` schemas, shaped as OpenAI's Batch API: request lines, the batch object, output lines."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]
BATCH_ENDPOINTS = ("/v1/chat/completions",)


class BatchCreate(BaseModel):
    """POST /v1/batches."""

    model_config = ConfigDict(extra="forbid")
    input_file_id: str = Field(description="An uploaded file with purpose 'batch': one request per line.")
    endpoint: Literal["/v1/chat/completions"] = Field(description="The endpoint every line calls.")
    completion_window: Literal["24h"] = Field(description="Only '24h', as OpenAI.")
    metadata: dict[str, str] | None = Field(default=None, max_length=16, description="Up to 16 pairs.")


class BatchRequestLine(BaseModel):
    """One line of a batch input file."""

    model_config = ConfigDict(extra="forbid")
    custom_id: str = Field(min_length=1, max_length=512)
    method: Literal["POST"]
    url: str
    body: dict[str, Any]


class BatchLineError(BaseModel):
    """A validation problem of the input file, with its line number."""

    code: str
    message: str
    param: str | None = None
    line: int | None = None


class BatchErrors(BaseModel):
    """``errors`` of a batch that failed validation."""

    object: Literal["list"] = "list"
    data: list[BatchLineError]


class RequestCounts(BaseModel):
    """How many requests the batch has, and how many finished well or badly."""

    total: int = 0
    completed: int = 0
    failed: int = 0


class BatchPublic(BaseModel):
    """A batch (``batch``)."""

    id: str
    object: Literal["batch"] = "batch"
    endpoint: str
    errors: BatchErrors | None = None
    input_file_id: str
    completion_window: str
    status: BatchStatus
    output_file_id: str | None = None
    error_file_id: str | None = None
    created_at: int
    in_progress_at: int | None = None
    expires_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None
    request_counts: RequestCounts
    metadata: dict[str, str] | None = None


class BatchList(BaseModel):
    """A page of batches, newest first."""

    object: Literal["list"] = "list"
    data: list[BatchPublic]
    has_more: bool
    first_id: str | None = None
    last_id: str | None = None
