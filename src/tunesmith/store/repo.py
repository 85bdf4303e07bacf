"""Repository functions: every read and write the server, worker and CLI do, each in one transaction.

Rows come back detached but fully loaded, so callers (routes, worker) read attributes without SQLAlchemy.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from sqlalchemy import and_, func, or_, select

from tunesmith.errors import ServeError
from tunesmith.store.db import Database
from tunesmith.store.tables import AliasChangeRow, AliasRow, BatchRow, CheckpointRow, EventRow, FileRow, JobRow

ACTIVE_STATUSES = ("validating_files", "queued", "running")
# Jobs that will still read their training/validation files (a paused job resumes from them).
FILE_USING_STATUSES = ("validating_files", "queued", "running", "paused")
MAX_ALIAS_HOPS = 4
BATCH_ACTIVE_STATUSES = ("validating", "in_progress", "finalizing", "cancelling")  # still reading their input


class NotFoundError(ServeError):
    """A file, job, model or alias id does not exist."""

    code = "not_found"
    status_code = 404


class FileInUseError(ServeError):
    """A file a queued or running job still needs cannot be deleted."""

    code = "file_in_use"
    status_code = 409


class AliasError(ServeError):
    """An alias chain loops or is longer than MAX_ALIAS_HOPS."""

    code = "invalid_alias"


def new_id(prefix: str, sep: str = "-") -> str:
    """``<prefix><sep><24 hex chars>`` (OpenAI-like ids: file-..., ftjob-..., ftckpt_...)."""
    return f"{prefix}{sep}{secrets.token_hex(12)}"


def cursor_not_found(after: str) -> NotFoundError:
    """The error for a pagination cursor that names no item (deleted, or from another list)."""
    return NotFoundError(
        f"after={after!r} is not an item of this list",
        "pass the id of the last item of the previous page, or omit `after` to start over",
        param="after",
    )


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


def list_files(
    db: Database,
    purpose: str | None = None,
    limit: int = 10000,
    after: str | None = None,
    order: str = "desc",
) -> list[FileRow]:
    """Files by ``created_at`` (then id) in ``order``, after the cursor file id, optionally of one purpose.

    Raises:
        NotFoundError: ``after`` names no file.
    """
    desc = order == "desc"
    keys = (FileRow.created_at, FileRow.id)
    q = select(FileRow).order_by(*(k.desc() if desc else k.asc() for k in keys)).limit(limit)
    if purpose:
        q = q.where(FileRow.purpose == purpose)
    with db.session() as s:
        if after:
            cursor = s.get(FileRow, after)
            if cursor is None:
                raise cursor_not_found(after)
            if desc:
                later = or_(keys[0] < cursor.created_at, and_(keys[0] == cursor.created_at, keys[1] < after))
            else:
                later = or_(keys[0] > cursor.created_at, and_(keys[0] == cursor.created_at, keys[1] > after))
            q = q.where(later)
        return list(s.scalars(q))


def delete_file(db: Database, file_id: str) -> FileRow:
    """Delete the row of ``file_id`` and return it (the caller removes the bytes).

    Raises:
        NotFoundError: no such file.
        FileInUseError: a job that is not finished trains or validates on it, or an active batch reads it.
    """
    with db.session() as s:
        row = s.get(FileRow, file_id)
        if row is None:
            raise NotFoundError(f"no file with id {file_id!r}", "list files with GET /v1/files", param="file_id")
        users = list(
            s.scalars(
                select(JobRow.id).where(
                    or_(JobRow.training_file == file_id, JobRow.validation_file == file_id),
                    JobRow.status.in_(FILE_USING_STATUSES),
                )
            )
        )
        users += list(
            s.scalars(
                select(BatchRow.id).where(BatchRow.input_file_id == file_id, BatchRow.status.in_(BATCH_ACTIVE_STATUSES))
            )
        )
        if users:
            raise FileInUseError(
                f"file {file_id} is used by job(s) or batch(es) {', '.join(users)}, which have not finished",
                "wait for them to finish, or cancel them first",
                param="file_id",
            )
        s.delete(row)
    return row


# ---------------------------------------------------------------- jobs


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
        return list(s.scalars(select(AliasChangeRow).where(AliasChangeRow.name == name).order_by(AliasChangeRow.seq)))


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


def alias_chain(targets: dict[str, str], name: str) -> list[str]:
    """The names an alias chain visits from ``name`` (``name`` first, the non-alias it ends at last).

    Raises:
        AliasError: the chain comes back to a name it visited, or takes more than MAX_ALIAS_HOPS hops.
    """
    chain = [name]
    while chain[-1] in targets:
        nxt = targets[chain[-1]]
        if nxt in chain:
            raise AliasError(
                "alias cycle: " + " -> ".join([*chain[chain.index(nxt) :], nxt]),
                "point one of these aliases at a model or checkpoint instead",
                param="model",
            )
        if len(chain) > MAX_ALIAS_HOPS:
            raise AliasError(
                f"alias chain longer than {MAX_ALIAS_HOPS} hops: " + " -> ".join([*chain, nxt]),
                "point the alias at the model directly",
                param="model",
            )
        chain.append(nxt)
    return chain


def follow_alias(db: Database, name: str) -> list[str]:
    """:func:`alias_chain` of ``name`` over the stored aliases."""
    with db.session() as s:
        return alias_chain(_alias_targets(s), name)


def _alias_targets(s: Any) -> dict[str, str]:
    return {a.name: a.target for a in s.scalars(select(AliasRow))}


def _passes_through(graph: dict[str, str], start: str, name: str) -> bool:
    seen, current = set(), start
    while current in graph and current not in seen:
        if current == name:
            return True
        seen.add(current)
        current = graph[current]
    return False


def set_alias(db: Database, name: str, target: str, actor: str, action: str = "deploy") -> AliasChangeRow:
    """Point ``name`` at ``target`` and record who changed it from what.

    Raises:
        AliasError: the change would close an alias cycle or make a chain through ``name`` too long (the new
            graph is checked in the same transaction as the write).
    """
    with db.session() as s:
        graph = {**_alias_targets(s), name: target}
        for start in graph:
            if _passes_through(graph, start, name):  # other chains are not this change's business
                alias_chain(graph, start)
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


# ---------------------------------------------------------------- batches


def add_batch(db: Database, **fields: Any) -> BatchRow:
    """Insert a batch (status ``validating``)."""
    row = BatchRow(id=new_id("batch"), created_at=now(), status="validating", **fields)
    with db.session() as s:
        s.add(row)
    return row


def get_batch(db: Database, batch_id: str) -> BatchRow:
    """The batch ``batch_id``; NotFoundError if absent."""
    with db.session() as s:
        row = s.scalars(select(BatchRow).where(BatchRow.id == batch_id)).first()
    if row is None:
        raise NotFoundError(f"no batch with id {batch_id!r}", "list batches with GET /v1/batches", param="batch_id")
    return row


def list_batches(
    db: Database, after: str | None = None, limit: int = 20, statuses: tuple[str, ...] | None = None
) -> list[BatchRow]:
    """Batches newest first, after the cursor batch id, optionally filtered by status."""
    q = select(BatchRow).order_by(BatchRow.seq.desc()).limit(limit)
    with db.session() as s:
        if after:
            cursor = s.scalars(select(BatchRow.seq).where(BatchRow.id == after)).first()
            if cursor is not None:
                q = q.where(BatchRow.seq < cursor)
        if statuses:
            q = q.where(BatchRow.status.in_(statuses))
        return list(s.scalars(q))


def update_batch(
    db: Database, batch_id: str, expected: tuple[str, ...] | None = None, **fields: Any
) -> BatchRow | None:
    """Set fields on a batch (``times`` entries are merged); with ``expected``, only from those statuses.

    Returns:
        The updated row, or None when its status was not one of ``expected``.
    """
    with db.session() as s:
        row = s.scalars(select(BatchRow).where(BatchRow.id == batch_id).with_for_update()).one()
        if expected is not None and row.status not in expected:
            return None
        if "times" in fields:
            fields["times"] = {**(row.times or {}), **fields["times"]}
        for key, value in fields.items():
            setattr(row, key, value)
    return row
