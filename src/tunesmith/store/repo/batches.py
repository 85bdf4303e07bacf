"""Batches (OpenAI Batch API): add, get, list, update with an optional status check."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from tunesmith.store.db import Database
from tunesmith.store.repo.rows import NotFoundError, new_id, now
from tunesmith.store.tables import BatchRow

# Batches that still read their input file.
BATCH_ACTIVE_STATUSES = ("validating", "in_progress", "finalizing", "cancelling")


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
