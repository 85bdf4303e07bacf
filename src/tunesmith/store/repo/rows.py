"""Ids, timestamps and the not-found error shared by every repository module."""

from __future__ import annotations

import secrets
import time

from sqlalchemy import func, select

from tunesmith.core.errors import ServeError
from tunesmith.store.db import Database


class NotFoundError(ServeError):
    """A file, job, model or alias id does not exist."""

    code = "not_found"
    status_code = 404


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


def count_rows(db: Database, table: type) -> int:
    """Number of rows in ``table`` (diagnostics and tests)."""
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(table)) or 0)
