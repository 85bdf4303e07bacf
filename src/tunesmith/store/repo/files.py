"""Uploaded files: add, get, list (cursor pages), delete unless a job or batch still reads them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select

from tunesmith.core.errors import ServeError
from tunesmith.store.db import Database
from tunesmith.store.repo.batches import BATCH_ACTIVE_STATUSES
from tunesmith.store.repo.rows import NotFoundError, cursor_not_found, new_id, now
from tunesmith.store.tables import BatchRow, FileRow, JobRow

# Jobs that will still read their training/validation files (a paused job resumes from them).
FILE_USING_STATUSES = ("validating_files", "queued", "running", "paused")


class FileInUseError(ServeError):
    """A file a queued or running job still needs cannot be deleted."""

    code = "file_in_use"
    status_code = 409


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
