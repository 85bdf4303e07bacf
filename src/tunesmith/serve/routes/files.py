"""/v1/files: upload (fine-tune files are validated first), list, retrieve, delete, content.

Bytes are stored as ``files/<file id>.<ext>``; the client's filename is only metadata, never a path.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import FileResponse

from tunesmith.core.atomic import atomic_open
from tunesmith.core.errors import DatasetError, ServeError
from tunesmith.data.validate import validate_file
from tunesmith.serve.deps import ServerContext, get_ctx
from tunesmith.serve.schemas import Deleted, FileList, FilePublic, page_of
from tunesmith.store import repo

router = APIRouter(tags=["files"])
PURPOSES = ("fine-tune", "batch", "assistants", "user_data", "evals")
SAFE_SUFFIXES = (".jsonl", ".json", ".csv", ".txt")
MAX_LISTED_ERRORS = 10
MAX_FILES_PAGE = 10000  # OpenAI's limit range for GET /v1/files
RESULTS_PURPOSE = "fine-tune-results"  # a job's results CSV, written by the worker (not uploadable)


class UploadTooLarge(ServeError):
    """The upload exceeds ``--max-upload-bytes``."""

    code = "file_too_large"
    status_code = 413


def file_public(row: Any) -> FilePublic:
    """A FileRow as the API's file object."""
    return FilePublic(
        id=row.id,
        bytes=row.bytes,
        created_at=row.created_at,
        filename=row.filename,
        purpose=row.purpose,
        status=row.status,
    )


@router.post("/files", response_model=FilePublic)
def create_file(
    file: UploadFile = File(...), purpose: str = Form(...), ctx: ServerContext = Depends(get_ctx)
) -> FilePublic:
    """Upload a file; ``purpose=fine-tune`` files are refused with line-numbered errors when invalid."""
    if purpose not in PURPOSES:
        raise ServeError(f"purpose {purpose!r} is not supported", f"use one of {', '.join(PURPOSES)}", param="purpose")
    file_id = repo.new_id("file")
    name = file.filename or "upload"
    suffix = Path(name).suffix.lower() if Path(name).suffix.lower() in SAFE_SUFFIXES else ""
    final = ctx.settings.data_dir / "files" / f"{file_id}{suffix}"
    staging = final.with_name(f".{file_id}.upload{suffix}")
    size = save_upload(file, staging, ctx.settings.max_upload_bytes)
    kind = None
    try:
        if purpose == "fine-tune":
            kind = check_finetune_file(staging, name)
        os.replace(staging, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)
    row = repo.add_file(ctx.db, id=file_id, filename=name, purpose=purpose, bytes=size, path=str(final), kind=kind)
    return file_public(row)


def save_upload(upload: UploadFile, path: Path, limit: int) -> int:
    """Copy the upload to ``path`` atomically, refusing it past ``limit`` bytes; returns its size."""
    size = 0
    with atomic_open(path, "wb") as out:
        while chunk := upload.file.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise UploadTooLarge(
                    f"file {upload.filename!r} is larger than the {limit}-byte upload limit",
                    "split the file, or start the server with a larger --max-upload-bytes",
                    param="file",
                )
            out.write(chunk)
    return size


def dataset_problems(path: Path) -> tuple[str, list[tuple[int | None, str | None, str]]]:
    """The file's kind and (line, field, message) of every error, from the data stage's validator.

    Token-length checks are left to the job (the base model is not known at upload time).
    """
    report = validate_file(path, model=None)
    return report.kind, [(e.line, e.field, e.message) for e in report.errors]


def format_problem(line: int | None, fld: str | None, message: str) -> str:
    """``line 3 field messages.0.role: message`` (file-level problems have no line)."""
    where = " ".join(p for p in (f"line {line}" if line else "", f"field {fld}" if fld else "") if p)
    return f"{where}: {message}" if where else message


def check_finetune_file(path: Path, filename: str) -> str:
    """Validate a fine-tune upload; returns its kind (chat/preference).

    Raises:
        DatasetError: invalid records (the first ones listed with line numbers) or too few examples.
    """
    if not path.read_bytes().strip():
        raise DatasetError(f"{filename}: the file has no examples", "add one JSON object per line", param="file")
    kind, problems = dataset_problems(path)
    if problems:
        problems.sort(key=lambda p: p[0] or 0)
        shown = [format_problem(*p) for p in problems[:MAX_LISTED_ERRORS]]
        more = f"; ... and {len(problems) - MAX_LISTED_ERRORS} more" if len(problems) > MAX_LISTED_ERRORS else ""
        raise DatasetError(
            f"{filename}: {len(problems)} problem(s): " + "; ".join(shown) + more,
            f"run `tunesmith data validate {filename}` locally, fix the lines listed, upload again",
            param="file",
        )
    return kind


@router.get("/files", response_model=FileList)
def list_files(
    purpose: str | None = None,
    limit: int = Query(MAX_FILES_PAGE, ge=1, le=MAX_FILES_PAGE, description="Page size."),
    after: str | None = Query(None, description="Id of the last file of the previous page."),
    order: Literal["asc", "desc"] = Query("desc", description="By creation time."),
    ctx: ServerContext = Depends(get_ctx),
) -> FileList:
    """Files by creation time (newest first by default), optionally of one purpose; page with ``after``."""
    return page_of(FileList, repo.list_files(ctx.db, purpose, limit + 1, after, order), limit, file_public)


@router.get("/files/{file_id}", response_model=FilePublic)
def read_file(file_id: str, ctx: ServerContext = Depends(get_ctx)) -> FilePublic:
    """One file's metadata."""
    return file_public(repo.get_file(ctx.db, file_id))


@router.delete("/files/{file_id}", response_model=Deleted)
def delete_file(file_id: str, ctx: ServerContext = Depends(get_ctx)) -> Deleted:
    """Delete a file (its row, then its bytes); refused (409 ``file_in_use``) while an unfinished job needs it."""
    row = repo.delete_file(ctx.db, file_id)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(row.path)
    return Deleted(id=file_id, object="file", deleted=True)


@router.get("/files/{file_id}/content", response_class=FileResponse)
def read_file_content(file_id: str, ctx: ServerContext = Depends(get_ctx)) -> FileResponse:
    """The file's bytes."""
    row = repo.get_file(ctx.db, file_id)
    return FileResponse(row.path, media_type="application/octet-stream", filename=row.filename)
