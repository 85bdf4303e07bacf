"""SQLAlchemy tables: uploaded files, fine-tuning jobs with their events and checkpoints, model aliases."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Connection, ForeignKey, Integer, String, Text, event, inspect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# 2: files.bytes and jobs.trained_tokens are BigInteger (PostgreSQL's INTEGER is 32-bit); jobs gained
# result_files and integrations (added to version-1 databases by add_missing_columns).
SCHEMA_VERSION = 2


class Base(DeclarativeBase):
    """Declarative base of every tunesmith table."""


class SchemaVersion(Base):
    """One row: the schema version the database was created with."""

    __tablename__ = "schema_version"
    version: Mapped[int] = mapped_column(Integer, primary_key=True)


class FileRow(Base):
    """An uploaded file; its bytes live on disk under ``files/<id>``, never under the client's filename."""

    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(String(512))
    purpose: Mapped[str] = mapped_column(String(32))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str | None] = mapped_column(String(16), default=None)  # chat | preference (fine-tune files)
    status: Mapped[str] = mapped_column(String(16), default="processed")


class JobRow(Base):
    """A fine-tuning job, with OpenAI's fields plus what the worker needs to run and resume it."""

    __tablename__ = "jobs"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(512))
    training_file: Mapped[str] = mapped_column(String(64))
    validation_file: Mapped[str | None] = mapped_column(String(64), default=None)
    suffix: Mapped[str | None] = mapped_column(String(64), default=None)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    method: Mapped[dict[str, Any]] = mapped_column(JSON)  # OpenAI's `method` object, hyperparameters resolved
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    train_overrides: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # extra TrainConfig keys
    status: Mapped[str] = mapped_column(String(32), index=True)
    fine_tuned_model: Mapped[str | None] = mapped_column(String(512), default=None)
    model_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    finished_at: Mapped[int | None] = mapped_column(Integer, default=None)
    trained_tokens: Mapped[int | None] = mapped_column(BigInteger, default=None)
    estimated_finish: Mapped[int | None] = mapped_column(Integer, default=None)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    work_dir: Mapped[str] = mapped_column(Text)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    metrics_lines: Mapped[int] = mapped_column(Integer, default=0)  # metrics.jsonl lines seen
    resume: Mapped[bool] = mapped_column(Boolean, default=False)
    result_files: Mapped[list[str] | None] = mapped_column(JSON, default=None)  # file ids (results CSV)
    integrations: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)  # OpenAI's, as sent


class EventRow(Base):
    """A job event: ``message`` (status changes) or ``metrics`` (one metrics.jsonl row)."""

    __tablename__ = "events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    created_at: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(8), default="info")
    type: Mapped[str] = mapped_column(String(16), default="message")
    message: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class CheckpointRow(Base):
    """A training checkpoint (a PEFT adapter dir) usable for inference by its model name."""

    __tablename__ = "checkpoints"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id"), index=True)
    created_at: Mapped[int] = mapped_column(Integer)
    step_number: Mapped[int] = mapped_column(Integer)
    model_name: Mapped[str] = mapped_column(String(600), unique=True)
    path: Mapped[str] = mapped_column(Text)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class AliasRow(Base):
    """A stable model name pointing at a model or checkpoint."""

    __tablename__ = "aliases"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    target: Mapped[str] = mapped_column(String(600))
    updated_at: Mapped[int] = mapped_column(Integer)


class AliasChangeRow(Base):
    """One recorded alias change: who, when, from which target to which, and how (deploy or rollback)."""

    __tablename__ = "alias_changes"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    action: Mapped[str] = mapped_column(String(16))  # deploy | rollback
    from_target: Mapped[str | None] = mapped_column(String(600), default=None)
    to_target: Mapped[str] = mapped_column(String(600))
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[int] = mapped_column(Integer)


@event.listens_for(Base.metadata, "after_create")
def add_missing_columns(_metadata: Any, connection: Connection, **_kw: Any) -> None:
    """Add nullable columns a newer tunesmith declares to tables an older one created.

    ``create_all`` (which fires this event) creates missing tables but never alters existing ones; every column
    added since version 1 is nullable, so ``ALTER TABLE ... ADD COLUMN`` upgrades the database in place.
    """
    inspector = inspect(connection)
    for table in Base.metadata.sorted_tables:
        if not inspector.has_table(table.name):
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present and column.nullable:
                kind = column.type.compile(dialect=connection.dialect)
                connection.exec_driver_sql(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}")


class BatchRow(Base):
    """A ``/v1/batches`` batch: an input file of requests, run in the background into output/error files."""

    __tablename__ = "batches"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    endpoint: Mapped[str] = mapped_column(String(64))
    input_file_id: Mapped[str] = mapped_column(String(64))
    completion_window: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[int] = mapped_column(Integer)
    expires_at: Mapped[int] = mapped_column(Integer)
    times: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # in_progress_at, completed_at, ...
    request_counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # total, completed, failed
    errors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)  # validation errors
    output_file_id: Mapped[str | None] = mapped_column(String(64), default=None)
    error_file_id: Mapped[str | None] = mapped_column(String(64), default=None)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
