"""The batch runner: ``/v1/batches`` input files answered in the background, as OpenAI's Batch API does.

A batch moves ``validating`` -> ``in_progress`` -> ``finalizing`` -> ``completed`` (or ``failed`` when its
input file is invalid, ``cancelling`` -> ``cancelled``, ``expired`` past its 24 h window). Its requests go to
the same generation queue as live chat, a window at a time so they batch together; every answer is fsync'd to
``batches/<id>/results.jsonl`` before the next window, so a server restart resumes where it stopped. At the end
the answers become an output file (status 200) and an error file (the rest), both readable through /v1/files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tunesmith.core.atomic import write_jsonl_atomic
from tunesmith.core.errors import ServeError, TunesmithError
from tunesmith.core.jsonl import DurableLog
from tunesmith.serve.batch_schemas import BatchLineError, BatchRequestLine
from tunesmith.serve.chat import complete
from tunesmith.serve.chat_schemas import ChatCompletionCreate
from tunesmith.serve.deps import ServerContext
from tunesmith.serve.schemas import error_body
from tunesmith.store import repo

log = logging.getLogger("tunesmith.batches")
WINDOW_BATCHES = 4  # requests in flight per batch: this many generation batches' worth
MAX_LISTED_ERRORS = 100


def parse_input(path: Path, endpoint: str) -> tuple[list[BatchRequestLine], list[BatchLineError]]:
    """The request lines of a batch input file, and every problem found (with line numbers)."""
    lines: list[BatchRequestLine] = []
    problems: list[BatchLineError] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            try:
                line = BatchRequestLine.model_validate_json(raw)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or None
                problems.append(BatchLineError(code="invalid_request", message=first["msg"], param=where, line=number))
                continue
            if line.url != endpoint:
                problems.append(
                    BatchLineError(
                        code="mismatched_endpoint",
                        message=f"url {line.url!r} differs from the batch's endpoint {endpoint!r}",
                        param="url",
                        line=number,
                    )
                )
            elif line.custom_id in seen:
                problems.append(
                    BatchLineError(
                        code="duplicate_custom_id",
                        message=f"custom_id {line.custom_id!r} is used twice",
                        param="custom_id",
                        line=number,
                    )
                )
            seen.add(line.custom_id)
            lines.append(line)
    if not lines and not problems:
        problems.append(BatchLineError(code="empty_file", message="the input file has no requests"))
    return lines, problems


def line_error_body(exc: TunesmithError) -> dict[str, Any]:
    """OpenAI's error body for a failed request line."""
    kind = "authentication_error" if exc.status_code == 401 else "invalid_request_error"
    return error_body(exc.message, kind, exc.param, exc.code)


class BatchRunner:
    """Runs active batches one at a time on the server's event loop."""

    def __init__(self, ctx: ServerContext, poll_s: float = 1.0) -> None:
        self.ctx, self.poll_s = ctx, poll_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the batches now (after a create or cancel)."""
        self._wake.set()

    async def run(self) -> None:
        """Tick until cancelled (the server's lifespan cancels it on shutdown)."""
        while True:
            try:
                await self.tick()
            except Exception:  # one bad batch must not stop the runner; the error is logged with its trace
                log.exception("batch runner tick failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            self._wake.clear()

    async def tick(self) -> None:
        """Advance every active batch, oldest first."""
        rows = await asyncio.to_thread(repo.list_batches, self.ctx.db, None, 1000, repo.BATCH_ACTIVE_STATUSES)
        for row in reversed(rows):
            if row.status in ("validating", "in_progress") and repo.now() > row.expires_at:
                await asyncio.to_thread(self.finalize, row.id, "expired")
            elif row.status == "validating":
                await asyncio.to_thread(self.validate, row.id)
            elif row.status == "in_progress":
                await self.process(row.id)
            elif row.status == "cancelling":
                await asyncio.to_thread(self.finalize, row.id, "cancelled")
            elif row.status == "finalizing":
                await asyncio.to_thread(self.finalize, row.id, "completed")

    def input_lines(self, row: Any) -> tuple[list[BatchRequestLine], list[BatchLineError]]:
        """Parse the batch's input file (a deleted file is one problem, not a crash)."""
        try:
            path = Path(repo.get_file(self.ctx.db, row.input_file_id).path)
            return parse_input(path, row.endpoint)
        except (TunesmithError, OSError) as exc:
            return [], [BatchLineError(code="input_file_unavailable", message=str(exc), param="input_file_id")]

    def validate(self, batch_id: str) -> None:
        """``in_progress`` with its request count when every line is valid, else ``failed`` with the problems."""
        row = repo.get_batch(self.ctx.db, batch_id)
        lines, problems = self.input_lines(row)
        now = repo.now()
        if problems:
            errors = [p.model_dump() for p in problems[:MAX_LISTED_ERRORS]]
            repo.update_batch(
                self.ctx.db, batch_id, ("validating",), status="failed", errors=errors, times={"failed_at": now}
            )
            return
        counts = {"total": len(lines), "completed": 0, "failed": 0}
        repo.update_batch(
            self.ctx.db,
            batch_id,
            ("validating",),
            status="in_progress",
            request_counts=counts,
            times={"in_progress_at": now},
        )

    def results_log(self, batch_id: str) -> DurableLog:
        """The batch's durable answers so far."""
        return DurableLog(self.ctx.settings.data_dir / "batches" / batch_id / "results.jsonl")

    async def process(self, batch_id: str) -> None:
        """Answer the batch's remaining lines, a window at a time, until done or cancelled."""
        row = await asyncio.to_thread(repo.get_batch, self.ctx.db, batch_id)
        lines, problems = await asyncio.to_thread(self.input_lines, row)
        if problems:  # the input file vanished or changed since validation
            await asyncio.to_thread(self.finalize, batch_id, "failed", problems)
            return
        results = self.results_log(batch_id)
        try:
            done = {r["custom_id"] for r in results.rows}
            pending = [line for line in lines if line.custom_id not in done]
            window = WINDOW_BATCHES * self.ctx.settings.max_batch_size
            for start in range(0, len(pending), window):
                answers = await asyncio.gather(*(self.answer(line) for line in pending[start : start + window]))
                for answer in answers:
                    results.append(answer)
                counts = request_counts(results.rows, len(lines))
                moved = await asyncio.to_thread(
                    repo.update_batch, self.ctx.db, batch_id, ("in_progress",), request_counts=counts
                )
                if moved is None:  # cancelled (or expired) meanwhile: the next tick finalizes it
                    return
        finally:
            results.close()
        await asyncio.to_thread(
            repo.update_batch,
            self.ctx.db,
            batch_id,
            ("in_progress",),
            status="finalizing",
            times={"finalizing_at": repo.now()},
        )
        await asyncio.to_thread(self.finalize, batch_id, "completed")

    async def answer(self, line: BatchRequestLine) -> dict[str, Any]:
        """One output line: the chat completion, or the error it got, under the line's ``custom_id``."""
        try:
            body = ChatCompletionCreate.model_validate(line.body)
            if body.stream:
                raise ServeError("stream is not supported in a batch", "drop stream from the body", param="stream")
            completion = await complete(self.ctx, body)
            response = {"status_code": 200, "body": completion.model_dump()}
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or None
            response = {"status_code": 400, "body": line_error_body(ServeError(f"body: {first['msg']}", param=where))}
        except TunesmithError as exc:
            response = {"status_code": exc.status_code, "body": line_error_body(exc)}
        except Exception as exc:  # recorded on its line; the rest of the batch goes on
            log.exception("batch line %s failed", line.custom_id)
            message = f"internal error: {exc.__class__.__name__}: {exc}"
            response = {"status_code": 500, "body": error_body(message, "server_error", None, "internal_error")}
        response["request_id"] = repo.new_id("req")
        return {"id": repo.new_id("batch_req"), "custom_id": line.custom_id, "response": response, "error": None}

    def finalize(self, batch_id: str, status: str, problems: list[BatchLineError] | None = None) -> None:
        """Write the output and error files from the answers so far and end the batch with ``status``."""
        row = repo.get_batch(self.ctx.db, batch_id)
        results = self.results_log(batch_id)
        results.close()
        ok = [r for r in results.rows if r["response"]["status_code"] == 200]
        bad = [r for r in results.rows if r["response"]["status_code"] != 200]
        fields: dict[str, Any] = {
            "status": status,
            "request_counts": request_counts(results.rows, (row.request_counts or {}).get("total", 0)),
            "output_file_id": self.save_file(batch_id, "output", ok) if ok else None,
            "error_file_id": self.save_file(batch_id, "errors", bad) if bad else None,
            "times": {f"{status}_at": repo.now()},
        }
        if problems:
            fields["errors"] = [p.model_dump() for p in problems]
        repo.update_batch(self.ctx.db, batch_id, (row.status,), **fields)

    def save_file(self, batch_id: str, kind: str, rows: list[dict[str, Any]]) -> str:
        """Store ``rows`` as a ``batch_output`` file (atomically) and return its id."""
        file_id = repo.new_id("file")
        path = self.ctx.settings.data_dir / "files" / f"{file_id}.jsonl"
        write_jsonl_atomic(path, rows)
        repo.add_file(
            self.ctx.db,
            id=file_id,
            filename=f"{batch_id}_{kind}.jsonl",
            purpose="batch_output",
            bytes=path.stat().st_size,
            path=str(path),
        )
        return file_id


def request_counts(rows: list[dict[str, Any]], total: int) -> dict[str, int]:
    """``request_counts`` from the answers so far."""
    completed = sum(r["response"]["status_code"] == 200 for r in rows)
    return {"total": total, "completed": completed, "failed": len(rows) - completed}
