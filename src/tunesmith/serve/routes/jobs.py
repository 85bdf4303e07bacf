"""/v1/fine_tuning/jobs: create, list, retrieve, cancel, pause, resume, events, checkpoints."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends

from tunesmith.errors import ModelError, ServeError
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
)
from tunesmith.store import repo

router = APIRouter(tags=["fine-tuning"])


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
        work_dir=str((ctx.settings.data_dir / "jobs" / job_id).resolve()),
    )
    # Build the TrainConfig now so bad hyperparameters fail the request, not the job later.
    build_train_config(
        fields,
        Path(files["training_file"].path),
        None,
        Path(fields["work_dir"]) / "output",
        ctx.settings.train_defaults,
    )
    Path(fields["work_dir"]).mkdir(parents=True, exist_ok=True)
    job = repo.add_job(ctx.db, **fields)
    ctx.worker.wake()
    return job_public(job)


@router.get("/fine_tuning/jobs", response_model=JobList)
def list_jobs(after: str | None = None, limit: int = 20, ctx: ServerContext = Depends(get_ctx)) -> JobList:
    """Jobs, newest first; page with ``after`` (a job id)."""
    rows = repo.list_jobs(ctx.db, after, limit + 1)
    return JobList(data=[job_public(j) for j in rows[:limit]], has_more=len(rows) > limit)


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
    fine_tuning_job_id: str, after: str | None = None, limit: int = 20, ctx: ServerContext = Depends(get_ctx)
) -> EventList:
    """Events, newest first: ``message`` (status changes) and ``metrics`` (step, losses, accuracy)."""
    repo.get_job(ctx.db, fine_tuning_job_id)
    rows = repo.list_events(ctx.db, fine_tuning_job_id, after, limit + 1)
    data = [
        EventPublic(
            id=e.id, created_at=e.created_at, level=e.level, message=e.message, data=e.data, type=e.type
        )
        for e in rows[:limit]
    ]
    return EventList(data=data, has_more=len(rows) > limit)


@router.get("/fine_tuning/jobs/{fine_tuning_job_id}/checkpoints", response_model=CheckpointList)
def list_checkpoints(
    fine_tuning_job_id: str, after: str | None = None, limit: int = 10, ctx: ServerContext = Depends(get_ctx)
) -> CheckpointList:
    """Checkpoints, newest first; each ``fine_tuned_model_checkpoint`` works as a chat model."""
    repo.get_job(ctx.db, fine_tuning_job_id)
    rows = repo.list_checkpoints(ctx.db, fine_tuning_job_id, after, limit + 1)
    data = [
        CheckpointPublic(
            id=c.id,
            created_at=c.created_at,
            fine_tuned_model_checkpoint=c.model_name,
            fine_tuning_job_id=c.job_id,
            step_number=c.step_number,
            metrics=CheckpointMetrics(
                **{k: v for k, v in c.metrics.items() if k in CheckpointMetrics.model_fields}
            ),
        )
        for c in rows[:limit]
    ]
    return CheckpointList(
        data=data,
        has_more=len(rows) > limit,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )
