"""Repository functions: every read and write the server, worker and CLI do, each in one transaction.

Rows come back detached but fully loaded, so callers (routes, worker) read attributes without SQLAlchemy.
Callers use the package namespace (``repo.get_job``); the functions live in one module per kind of row.
"""

from tunesmith.store.repo.aliases import (
    MAX_ALIAS_HOPS,
    AliasError,
    alias_chain,
    alias_history,
    alias_stack,
    follow_alias,
    get_alias,
    list_aliases,
    rollback_alias,
    set_alias,
)
from tunesmith.store.repo.batches import BATCH_ACTIVE_STATUSES, add_batch, get_batch, list_batches, update_batch
from tunesmith.store.repo.files import (
    FILE_USING_STATUSES,
    FileInUseError,
    add_file,
    delete_file,
    get_file,
    list_files,
)
from tunesmith.store.repo.jobs import (
    add_event,
    add_job,
    add_metrics_events,
    delete_checkpoints,
    find_checkpoint,
    find_job_by_model,
    get_job,
    list_checkpoints,
    list_events,
    list_jobs,
    set_job_status_if,
    update_job,
    upsert_checkpoint,
)
from tunesmith.store.repo.rows import NotFoundError, count_rows, cursor_not_found, new_id, now

__all__ = [
    "BATCH_ACTIVE_STATUSES",
    "FILE_USING_STATUSES",
    "MAX_ALIAS_HOPS",
    "AliasError",
    "FileInUseError",
    "NotFoundError",
    "add_batch",
    "add_event",
    "add_file",
    "add_job",
    "add_metrics_events",
    "alias_chain",
    "alias_history",
    "alias_stack",
    "count_rows",
    "cursor_not_found",
    "delete_checkpoints",
    "delete_file",
    "find_checkpoint",
    "find_job_by_model",
    "follow_alias",
    "get_alias",
    "get_batch",
    "get_file",
    "get_job",
    "list_aliases",
    "list_batches",
    "list_checkpoints",
    "list_events",
    "list_files",
    "list_jobs",
    "new_id",
    "now",
    "rollback_alias",
    "set_alias",
    "set_job_status_if",
    "update_batch",
    "update_job",
    "upsert_checkpoint",
]
