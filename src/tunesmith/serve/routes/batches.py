"""/v1/batches: create, list, retrieve, cancel — OpenAI's Batch API over the server's own generation queue."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request

from tunesmith.core.errors import ServeError
from tunesmith.serve.batch_schemas import BatchCreate, BatchErrors, BatchList, BatchPublic, RequestCounts
from tunesmith.serve.deps import ServerContext, get_ctx
from tunesmith.serve.schemas import page_of
from tunesmith.store import repo

router = APIRouter(tags=["batches"])
WINDOW_S = {"24h": 24 * 3600}


class BatchStateError(ServeError):
    """The batch is not in a state that allows the action."""

    code = "invalid_batch_state"
    status_code = 409


def batch_public(row: Any) -> BatchPublic:
    """A BatchRow as OpenAI's ``batch`` object."""
    return BatchPublic(
        id=row.id,
        endpoint=row.endpoint,
        errors=BatchErrors(data=row.errors) if row.errors else None,
        input_file_id=row.input_file_id,
        completion_window=row.completion_window,
        status=row.status,
        output_file_id=row.output_file_id,
        error_file_id=row.error_file_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        request_counts=RequestCounts(**(row.request_counts or {})),
        metadata=row.metadata_,
        **(row.times or {}),
    )


def wake_runner(request: Request) -> None:
    """Have the batch runner look now."""
    runner = getattr(request.app.state, "batch_runner", None)
    if runner is not None:
        runner.wake()


@router.post("/batches", response_model=BatchPublic)
def create_batch(body: BatchCreate, request: Request, ctx: ServerContext = Depends(get_ctx)) -> BatchPublic:
    """Queue a batch; its input file (purpose ``batch``) is validated in the background (``validating``)."""
    file = repo.get_file(ctx.db, body.input_file_id)
    if file.purpose != "batch":
        raise ServeError(
            f"input file {file.id} has purpose {file.purpose!r}, not 'batch'",
            "upload the requests with purpose='batch'",
            param="input_file_id",
        )
    now = repo.now()
    row = repo.add_batch(
        ctx.db,
        endpoint=body.endpoint,
        input_file_id=body.input_file_id,
        completion_window=body.completion_window,
        expires_at=now + WINDOW_S[body.completion_window],
        metadata_=body.metadata,
        request_counts={"total": 0, "completed": 0, "failed": 0},
        times={},
    )
    wake_runner(request)
    return batch_public(row)


@router.get("/batches", response_model=BatchList)
def list_batches(
    after: str | None = None, limit: int = Query(default=20, ge=1, le=100), ctx: ServerContext = Depends(get_ctx)
) -> BatchList:
    """Batches, newest first; page with ``after`` (a batch id)."""
    return page_of(BatchList, repo.list_batches(ctx.db, after, limit + 1), limit, batch_public)


@router.get("/batches/{batch_id}", response_model=BatchPublic)
def read_batch(batch_id: str, ctx: ServerContext = Depends(get_ctx)) -> BatchPublic:
    """One batch."""
    return batch_public(repo.get_batch(ctx.db, batch_id))


@router.post("/batches/{batch_id}/cancel", response_model=BatchPublic)
def cancel_batch(batch_id: str, request: Request, ctx: ServerContext = Depends(get_ctx)) -> BatchPublic:
    """Cancel a batch: ``cancelling`` now, ``cancelled`` once in-flight requests end (answers so far are kept)."""
    row = repo.get_batch(ctx.db, batch_id)
    moved = repo.update_batch(
        ctx.db, batch_id, ("validating", "in_progress"), status="cancelling", times={"cancelling_at": repo.now()}
    )
    if moved is None:
        raise BatchStateError(
            f"batch {batch_id} is {row.status}; only a validating or in-progress batch can be cancelled",
            "check its status with GET /v1/batches/{id}",
            param="batch_id",
        )
    wake_runner(request)
    return batch_public(moved)
