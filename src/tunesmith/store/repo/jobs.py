"""Fine-tuning jobs with their events (each status change records one) and checkpoints."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tunesmith.store.db import Database
from tunesmith.store.repo.rows import NotFoundError, cursor_not_found, new_id, now
from tunesmith.store.tables import CheckpointRow, EventRow, FileRow, JobRow


def add_job(db: Database, **fields: Any) -> JobRow:
    """Insert a job (status ``validating_files``) and its first event.

    Raises:
        NotFoundError: its training or validation file was deleted meanwhile (checked in the same transaction
            as the insert, so a file cannot vanish between the check and the job).
    """
    job = JobRow(created_at=now(), status="validating_files", **fields)
    with db.session() as s:
        for param in ("training_file", "validation_file"):
            file_id = fields.get(param)
            if file_id is not None and s.get(FileRow, file_id) is None:
                raise NotFoundError(f"no file with id {file_id!r}", "upload it again", param=param)
        s.add(job)
        s.flush()  # the job row must exist before its event (foreign key)
        s.add(_event(job.id, f"Created fine-tuning job: {job.id}"))
    return job


def get_job(db: Database, job_id: str) -> JobRow:
    """The job ``job_id``; NotFoundError if absent."""
    with db.session() as s:
        job = s.scalars(select(JobRow).where(JobRow.id == job_id)).first()
    if job is None:
        raise NotFoundError(
            f"no fine-tuning job with id {job_id!r}",
            "list jobs: GET /v1/fine_tuning/jobs",
            param="fine_tuning_job_id",
        )
    return job


def list_jobs(
    db: Database,
    after: str | None = None,
    limit: int = 20,
    statuses: tuple[str, ...] | None = None,
    oldest_first: bool = False,
) -> list[JobRow]:
    """Jobs newest first (or oldest first), after the cursor job id, optionally filtered by status.

    Raises:
        NotFoundError: ``after`` names no job.
    """
    order = JobRow.seq.asc() if oldest_first else JobRow.seq.desc()
    q = select(JobRow).order_by(order).limit(limit)
    with db.session() as s:
        if after:
            cursor = s.scalars(select(JobRow.seq).where(JobRow.id == after)).first()
            if cursor is None:
                raise cursor_not_found(after)
            q = q.where(JobRow.seq > cursor if oldest_first else JobRow.seq < cursor)
        if statuses:
            q = q.where(JobRow.status.in_(statuses))
        return list(s.scalars(q))


def update_job(db: Database, job_id: str, message: str | None = None, level: str = "info", **fields: Any) -> JobRow:
    """Set fields on a job and, with ``message``, record a ``message`` event in the same transaction."""
    with db.session() as s:
        job = s.scalars(select(JobRow).where(JobRow.id == job_id)).one()
        for key, value in fields.items():
            setattr(job, key, value)
        if message:
            s.add(_event(job_id, message, level=level))
    return job


def set_job_status_if(
    db: Database,
    job_id: str,
    expected: tuple[str, ...],
    status: str,
    message: str,
    level: str = "info",
    **fields: Any,
) -> JobRow | None:
    """Move a job to ``status`` only if it is in one of ``expected`` (atomic check-and-set), else None.

    ``message`` is recorded as an event of ``level`` (info, warn or error).
    """
    with db.session() as s:
        job = s.scalars(select(JobRow).where(JobRow.id == job_id).with_for_update()).one()
        if job.status not in expected:
            return None
        job.status = status
        for key, value in fields.items():
            setattr(job, key, value)
        s.add(_event(job_id, message, level=level))
    return job


def find_job_by_model(db: Database, model_name: str) -> JobRow | None:
    """The job whose ``fine_tuned_model`` is ``model_name``, if any."""
    with db.session() as s:
        return s.scalars(select(JobRow).where(JobRow.fine_tuned_model == model_name)).first()


# ---------------------------------------------------------------- events


def _event(
    job_id: str, message: str, level: str = "info", type_: str = "message", data: dict[str, Any] | None = None
) -> EventRow:
    return EventRow(
        id=new_id("ftevent"),
        job_id=job_id,
        created_at=now(),
        level=level,
        type=type_,
        message=message,
        data=data,
    )


def add_event(
    db: Database,
    job_id: str,
    message: str,
    level: str = "info",
    type_: str = "message",
    data: dict[str, Any] | None = None,
) -> EventRow:
    """Record one job event."""
    row = _event(job_id, message, level, type_, data)
    with db.session() as s:
        s.add(row)
    return row


def add_metrics_events(db: Database, job_id: str, rows: list[dict[str, Any]], lines_seen: int) -> None:
    """Record ``metrics`` events for new metrics.jsonl rows and advance the job's line cursor."""
    with db.session() as s:
        for row in rows:
            s.add(
                _event(
                    job_id,
                    f"Step {row.get('step')}/{row.get('total_steps')}: training loss={row.get('train_loss')}",
                    type_="metrics",
                    data=row,
                )
            )
        job = s.scalars(select(JobRow).where(JobRow.id == job_id)).one()
        job.metrics_lines = lines_seen


def list_events(db: Database, job_id: str, after: str | None = None, limit: int = 20) -> list[EventRow]:
    """A job's events, newest first, older than the ``after`` event id.

    Raises:
        NotFoundError: ``after`` names no event of this job.
    """
    q = select(EventRow).where(EventRow.job_id == job_id).order_by(EventRow.seq.desc()).limit(limit)
    with db.session() as s:
        if after:
            cursor = s.scalars(select(EventRow.seq).where(EventRow.id == after, EventRow.job_id == job_id)).first()
            if cursor is None:
                raise cursor_not_found(after)
            q = q.where(EventRow.seq < cursor)
        return list(s.scalars(q))


# ---------------------------------------------------------------- checkpoints


def upsert_checkpoint(
    db: Database, job_id: str, step: int, model_name: str, path: str, metrics: dict[str, Any]
) -> CheckpointRow:
    """Record a checkpoint of ``job_id`` at ``step`` (updating its metrics when already recorded)."""
    with db.session() as s:
        row = s.scalars(select(CheckpointRow).where(CheckpointRow.model_name == model_name)).first()
        if row is None:
            row = CheckpointRow(
                id=new_id("ftckpt", sep="_"),  # OpenAI's checkpoint ids: ftckpt_<...>
                job_id=job_id,
                created_at=now(),
                step_number=step,
                model_name=model_name,
                path=path,
                metrics=metrics,
            )
            s.add(row)
        else:
            row.metrics, row.path = metrics, path
    return row


def list_checkpoints(db: Database, job_id: str) -> list[CheckpointRow]:
    """A job's checkpoints, newest (highest step) first (a job has a handful: the API pages them)."""
    q = select(CheckpointRow).where(CheckpointRow.job_id == job_id).order_by(CheckpointRow.step_number.desc())
    with db.session() as s:
        return list(s.scalars(q))


def find_checkpoint(db: Database, model_name: str) -> CheckpointRow | None:
    """The checkpoint named ``model_name``, if any."""
    with db.session() as s:
        return s.scalars(select(CheckpointRow).where(CheckpointRow.model_name == model_name)).first()


def delete_checkpoints(db: Database, job_id: str, keep_paths: set[str] | None = None) -> int:
    """Drop a job's checkpoint rows (all, or those whose path is not in ``keep_paths``); returns how many."""
    with db.session() as s:
        rows = list(s.scalars(select(CheckpointRow).where(CheckpointRow.job_id == job_id)))
        gone = [r for r in rows if keep_paths is None or r.path not in keep_paths]
        for row in gone:
            s.delete(row)
    return len(gone)
