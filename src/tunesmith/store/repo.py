"""Repository functions: every read and write the server, worker and CLI do, each in one transaction.

Rows come back detached but fully loaded, so callers (routes, worker) read attributes without SQLAlchemy.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import func, select

from tunesmith.errors import ServeError
from tunesmith.store.db import Database
from tunesmith.store.tables import AliasChangeRow, AliasRow, CheckpointRow, EventRow, FileRow, JobRow

ACTIVE_STATUSES = ("validating_files", "queued", "running")


class NotFoundError(ServeError):
    """A file, job, model or alias id does not exist."""

    code = "not_found"
    status_code = 404


def new_id(prefix: str) -> str:
    """``<prefix>-<24 hex chars>`` (OpenAI-like ids: file-..., ftjob-...)."""
    return f"{prefix}-{secrets.token_hex(12)}"


def now() -> int:
    """Unix time in whole seconds, as OpenAI's ``created_at``."""
    return int(time.time())


# ---------------------------------------------------------------- files


def add_file(db: Database, **fields: Any) -> FileRow:
    """Insert a file row (``id`` is generated when not given)."""
    row = FileRow(id=fields.pop("id", None) or new_id("file"), created_at=now(), **fields)
    with db.session() as s:
        s.add(row)
    return row


def get_file(db: Database, file_id: str) -> FileRow:
    """The file ``file_id``; NotFoundError if absent."""
    with db.session() as s:
        row = s.get(FileRow, file_id)
    if row is None:
        raise NotFoundError(f"no file with id {file_id!r}", "list files with GET /v1/files", param="file_id")
    return row


def list_files(db: Database, purpose: str | None = None, limit: int = 10000) -> list[FileRow]:
    """Files, newest first, optionally of one purpose."""
    q = select(FileRow).order_by(FileRow.created_at.desc(), FileRow.id).limit(limit)
    if purpose:
        q = q.where(FileRow.purpose == purpose)
    with db.session() as s:
        return list(s.scalars(q))


def delete_file(db: Database, file_id: str) -> FileRow:
    """Delete the row of ``file_id`` and return it (the caller removes the bytes)."""
    with db.session() as s:
        row = s.get(FileRow, file_id)
        if row is None:
            raise NotFoundError(
                f"no file with id {file_id!r}", "list files with GET /v1/files", param="file_id"
            )
        s.delete(row)
    return row


# ---------------------------------------------------------------- jobs


def add_job(db: Database, **fields: Any) -> JobRow:
    """Insert a job (status ``validating_files``) and its first event."""
    job = JobRow(created_at=now(), status="validating_files", **fields)
    with db.session() as s:
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
    """Jobs newest first (or oldest first), after the cursor job id, optionally filtered by status."""
    order = JobRow.seq.asc() if oldest_first else JobRow.seq.desc()
    q = select(JobRow).order_by(order).limit(limit)
    with db.session() as s:
        if after:
            cursor = s.scalars(select(JobRow.seq).where(JobRow.id == after)).first()
            if cursor is not None:
                q = q.where(JobRow.seq > cursor if oldest_first else JobRow.seq < cursor)
        if statuses:
            q = q.where(JobRow.status.in_(statuses))
        return list(s.scalars(q))


def update_job(
    db: Database, job_id: str, message: str | None = None, level: str = "info", **fields: Any
) -> JobRow:
    """Set fields on a job and, with ``message``, record a ``message`` event in the same transaction."""
    with db.session() as s:
        job = s.scalars(select(JobRow).where(JobRow.id == job_id)).one()
        for key, value in fields.items():
            setattr(job, key, value)
        if message:
            s.add(_event(job_id, message, level=level))
    return job


def set_job_status_if(
    db: Database, job_id: str, expected: tuple[str, ...], status: str, message: str, **fields: Any
) -> JobRow | None:
    """Move a job to ``status`` only if it is in one of ``expected`` (atomic check-and-set), else None."""
    with db.session() as s:
        job = s.scalars(select(JobRow).where(JobRow.id == job_id).with_for_update()).one()
        if job.status not in expected:
            return None
        job.status = status
        for key, value in fields.items():
            setattr(job, key, value)
        s.add(_event(job_id, message))
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
    """A job's events, newest first, older than the ``after`` event id."""
    q = select(EventRow).where(EventRow.job_id == job_id).order_by(EventRow.seq.desc()).limit(limit)
    with db.session() as s:
        if after:
            cursor = s.scalars(select(EventRow.seq).where(EventRow.id == after)).first()
            if cursor is not None:
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
                id=new_id("ftckpt"),
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


def list_checkpoints(
    db: Database, job_id: str, after: str | None = None, limit: int = 10
) -> list[CheckpointRow]:
    """A job's checkpoints, newest (highest step) first."""
    q = (
        select(CheckpointRow)
        .where(CheckpointRow.job_id == job_id)
        .order_by(CheckpointRow.step_number.desc())
        .limit(limit)
    )
    with db.session() as s:
        if after:
            cursor = s.scalars(select(CheckpointRow.step_number).where(CheckpointRow.id == after)).first()
            if cursor is not None:
                q = q.where(CheckpointRow.step_number < cursor)
        return list(s.scalars(q))


def find_checkpoint(db: Database, model_name: str) -> CheckpointRow | None:
    """The checkpoint named ``model_name``, if any."""
    with db.session() as s:
        return s.scalars(select(CheckpointRow).where(CheckpointRow.model_name == model_name)).first()


def delete_checkpoints(db: Database, job_id: str) -> int:
    """Drop every checkpoint row of a job; returns how many."""
    with db.session() as s:
        rows = list(s.scalars(select(CheckpointRow).where(CheckpointRow.job_id == job_id)))
        for row in rows:
            s.delete(row)
    return len(rows)


# ---------------------------------------------------------------- aliases


def get_alias(db: Database, name: str) -> AliasRow | None:
    """The alias ``name``, if set."""
    with db.session() as s:
        return s.get(AliasRow, name)


def list_aliases(db: Database) -> list[AliasRow]:
    """Every alias, by name."""
    with db.session() as s:
        return list(s.scalars(select(AliasRow).order_by(AliasRow.name)))


def alias_history(db: Database, name: str) -> list[AliasChangeRow]:
    """Every recorded change of alias ``name``, oldest first."""
    with db.session() as s:
        return list(
            s.scalars(select(AliasChangeRow).where(AliasChangeRow.name == name).order_by(AliasChangeRow.seq))
        )


def alias_stack(changes: list[tuple[str, str]]) -> list[str]:
    """Targets an alias can roll back through: replay ``(action, to_target)`` changes (deploy pushes,
    rollback pops)."""
    stack: list[str] = []
    for action, target in changes:
        if action == "rollback":
            if stack:
                stack.pop()
        elif not stack or stack[-1] != target:
            stack.append(target)
    return stack


def set_alias(db: Database, name: str, target: str, actor: str, action: str = "deploy") -> AliasChangeRow:
    """Point ``name`` at ``target`` and record who changed it from what."""
    with db.session() as s:
        row = s.get(AliasRow, name)
        previous = row.target if row else None
        if row is None:
            s.add(AliasRow(name=name, target=target, updated_at=now()))
        else:
            row.target, row.updated_at = target, now()
        change = AliasChangeRow(
            name=name, action=action, from_target=previous, to_target=target, actor=actor, created_at=now()
        )
        s.add(change)
    return change


def rollback_alias(db: Database, name: str, actor: str) -> AliasChangeRow:
    """Restore the target ``name`` had before its latest deploy.

    Raises:
        NotFoundError: no such alias.
        ServeError: the alias has no earlier target.
    """
    history = alias_history(db, name)
    if not history:
        raise NotFoundError(
            f"no alias named {name!r}", "create it: `tunesmith deploy MODEL --alias NAME`", param="alias"
        )
    stack = alias_stack([(c.action, c.to_target) for c in history])
    if len(stack) < 2:
        raise ServeError(
            f"alias {name!r} has no earlier target to roll back to (it points at {stack[-1]!r})"
            if stack
            else f"alias {name!r} has no history",
            "deploy another model first",
            param="alias",
        )
    return set_alias(db, name, stack[-2], actor, action="rollback")


def count_rows(db: Database, table: type) -> int:
    """Number of rows in ``table`` (diagnostics and tests)."""
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)
