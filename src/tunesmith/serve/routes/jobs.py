"""/v1/fine_tuning/jobs: create, list, retrieve, cancel, pause, resume, events, checkpoints."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Query

from tunesmith.core.errors import ModelError, ServeError
from tunesmith.serve.deps import ServerContext, get_ctx
from tunesmith.serve.mapping import build_train_config, check_overrides, resolve_method
from tunesmith.serve.names import canonical_base
from tunesmith.serve.schemas import (
    CheckpointList,
    CheckpointMetrics,
    CheckpointPublic,
    EventList,
    EventPublic,
    JobCreate,
    JobError,
    JobList,
    JobPublic,
    Method,
    page_of,
)
from tunesmith.store import repo

router = APIRouter(tags=["fine-tuning"])
MAX_PAGE = 100  # the largest `limit` of the jobs, events and checkpoints lists


def job_public(job: Any) -> JobPublic:
    """A JobRow as OpenAI's ``fine_tuning.job`` (``paused`` is tunesmith's extra status)."""
    method = Method.model_validate(job.method)
    return JobPublic(
        id=job.id,
        created_at=job.created_at,
        error=JobError(**job.error) if job.error else None,
        fine_tuned_model=None if job.model_deleted else job.fine_tuned_model,
        finished_at=job.finished_at,
        hyperparameters=getattr(method, method.type).hyperparameters,
        model=job.model,
        seed=job.seed,
        status=job.status,
        trained_tokens=job.trained_tokens,
        training_file=job.training_file,
        validation_file=job.validation_file,
        estimated_finish=job.estimated_finish if job.status == "running" else None,
        metadata=job.metadata_,
        method=method,
        suffix=job.suffix,
        result_files=job.result_files or [],
        integrations=job.integrations,
    )


class ConflictError(ServeError):
    """The job is not in a state that allows the action."""

    code = "invalid_job_state"
    status_code = 409


@router.post("/fine_tuning/jobs", response_model=JobPublic)
def create_job(body: JobCreate, ctx: ServerContext = Depends(get_ctx)) -> JobPublic:
    """Queue a fine-tuning job; its files are validated by the worker (status ``validating_files``)."""
    base = canonical_base(body.model, ctx.settings)
    if base is None:
        raise ModelError(
            f"model {body.model!r} cannot be fine-tuned here",
            f"use one of the server's base models: {', '.join(ctx.settings.base_models)}",
            param="model",
        )
    files = {}
    for param in ("training_file", "validation_file"):
        file_id = getattr(body, param)
        if file_id is not None:
            files[param] = row = repo.get_file(ctx.db, file_id)
            if row.purpose != "fine-tune":
                raise ServeError(
                    f"{param} {file_id} has purpose {row.purpose!r}, not 'fine-tune'",
                    "upload the file with purpose='fine-tune'",
                    param=param,
                )
    method = resolve_method(body)
    overrides = body.training_config or {}
    check_overrides(overrides)
    job_id = repo.new_id("ftjob")
    fields = dict(
        id=job_id,
        model=base,
        training_file=body.training_file,
        validation_file=body.validation_file,
        suffix=body.suffix,
        seed=body.seed if body.seed is not None else secrets.randbelow(2**31),
        method=method.model_dump(exclude_none=True),
        metadata_=body.metadata,
        train_overrides=overrides,
        integrations=[i.model_dump(exclude_none=True) for i in body.integrations] if body.integrations else None,
        work_dir=str((ctx.settings.data_dir / "jobs" / job_id).resolve()),
    )
    # Build the TrainConfig now so bad hyperparameters fail the request, not the job later.
    valid = files.get("validation_file")
    build_train_config(
        fields,
        Path(files["training_file"].path),
        Path(valid.path) if valid else None,
        Path(fields["work_dir"]) / "output",
        ctx.settings.train_defaults,
    )
    job = repo.add_job(ctx.db, **fields)  # the row first: no job directory without its job
    Path(fields["work_dir"]).mkdir(parents=True, exist_ok=True)
    ctx.worker.wake()
    return job_public(job)


@router.get("/fine_tuning/jobs", response_model=JobList)
def list_jobs(
    after: str | None = Query(None, description="Id of the last job of the previous page."),
    limit: int = Query(20, ge=1, le=MAX_PAGE),
    ctx: ServerContext = Depends(get_ctx),
) -> JobList:
    """Jobs, newest first; page with ``after`` (a job id)."""
    return page_of(JobList, repo.list_jobs(ctx.db, after, limit + 1), limit, job_public)


@router.get("/fine_tuning/jobs/{fine_tuning_job_id}", response_model=JobPublic)
def read_job(fine_tuning_job_id: str, ctx: ServerContext = Depends(get_ctx)) -> JobPublic:
    """One job."""
    return job_public(repo.get_job(ctx.db, fine_tuning_job_id))


def _transition(
    ctx: ServerContext, job_id: str, expected: tuple[str, ...], status: str, message: str, **fields: Any
) -> JobPublic:
    job = repo.get_job(ctx.db, job_id)
    moved = repo.set_job_status_if(ctx.db, job_id, expected, status, message, **fields)
    if moved is None:
        raise ConflictError(
            f"job {job_id} is {job.status}; only a job that is {' or '.join(expected)} can become {status}",
            "check the job's status with GET /v1/fine_tuning/jobs/{id}",
            param="fine_tuning_job_id",
        )
    ctx.worker.wake()
    return job_public(moved)


@router.post("/fine_tuning/jobs/{fine_tuning_job_id}/cancel", response_model=JobPublic)
def cancel_job(fine_tuning_job_id: str, ctx: ServerContext = Depends(get_ctx)) -> JobPublic:
    """Cancel a job; a running training process is stopped within seconds."""
    return _transition(
        ctx,
        fine_tuning_job_id,
        ("validating_files", "queued", "running", "paused"),
        "cancelled",
        "Job cancelled",
        finished_at=repo.now(),
        estimated_finish=None,
    )


@router.post("/fine_tuning/jobs/{fine_tuning_job_id}/pause", response_model=JobPublic)
def pause_job(fine_tuning_job_id: str, ctx: ServerContext = Depends(get_ctx)) -> JobPublic:
    """Pause a queued or running job: training stops; its checkpoints are kept for ``resume``.

    A job still validating its files cannot be paused (resuming it would skip the validation).
    """
    return _transition(
        ctx,
        fine_tuning_job_id,
        ("queued", "running"),
        "paused",
        "Job paused",
        estimated_finish=None,
    )


@router.post("/fine_tuning/jobs/{fine_tuning_job_id}/resume", response_model=JobPublic)
def resume_job(fine_tuning_job_id: str, ctx: ServerContext = Depends(get_ctx)) -> JobPublic:
    """Queue a paused job again; it continues from its last checkpoint."""
    return _transition(ctx, fine_tuning_job_id, ("paused",), "queued", "Job resumed; queued", resume=True)


@router.get("/fine_tuning/jobs/{fine_tuning_job_id}/events", response_model=EventList)
def list_events(
    fine_tuning_job_id: str,
    after: str | None = Query(None, description="Id of the last event of the previous page."),
    limit: int = Query(20, ge=1, le=MAX_PAGE),
    ctx: ServerContext = Depends(get_ctx),
) -> EventList:
    """Events, newest first: ``message`` (status changes) and ``metrics`` (step, losses, accuracy)."""
    repo.get_job(ctx.db, fine_tuning_job_id)
    rows = repo.list_events(ctx.db, fine_tuning_job_id, after, limit + 1)
    return page_of(EventList, rows, limit, event_public)


def event_public(e: Any) -> EventPublic:
    """An EventRow as OpenAI's ``fine_tuning.job.event``."""
    return EventPublic(id=e.id, created_at=e.created_at, level=e.level, message=e.message, data=e.data, type=e.type)


@router.get("/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints", response_model=CheckpointList)
def list_checkpoints(
    fine_tuning_job_id: str,
    after: str | None = Query(None, description="Id of the last checkpoint of the previous page."),
    limit: int = Query(10, ge=1, le=MAX_PAGE),
    ctx: ServerContext = Depends(get_ctx),
) -> CheckpointList:
    """Checkpoints still on disk, newest first; each ``fine_tuned_model_checkpoint`` works as a chat model."""
    repo.get_job(ctx.db, fine_tuning_job_id)
    rows = [c for c in repo.list_checkpoints(ctx.db, fine_tuning_job_id) if Path(c.path).is_dir()]
    if after is not None:
        ids = [c.id for c in rows]
        if after not in ids:
            raise repo.cursor_not_found(after)
        rows = rows[ids.index(after) + 1 :]
    return page_of(CheckpointList, rows, limit, checkpoint_public)


def checkpoint_public(row: Any) -> CheckpointPublic:
    """A CheckpointRow as OpenAI's ``fine_tuning.job.checkpoint``."""
    return CheckpointPublic(
        id=row.id,
        created_at=row.created_at,
        fine_tuned_model_checkpoint=row.model_name,
        fine_tuning_job_id=row.job_id,
        step_number=row.step_number,
        metrics=CheckpointMetrics(**{k: v for k, v in row.metrics.items() if k in CheckpointMetrics.model_fields}),
    )
