"""``create_app(settings) -> FastAPI``: the OpenAI-compatible server (files, fine-tuning jobs, chat, models).

Reads top to bottom: open the database, start the job worker and the inference batcher, mount the routes,
turn every error into OpenAI's error body.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tunesmith import __version__
from tunesmith.errors import TunesmithError
from tunesmith.serve.batcher import Batcher
from tunesmith.serve.deps import ServerContext, require_key
from tunesmith.serve.inference import ModelHost
from tunesmith.serve.routes import aliases, chat, files, jobs, models
from tunesmith.serve.schemas import ErrorBody
from tunesmith.serve.settings import ServeSettings
from tunesmith.serve.worker import JobWorker
from tunesmith.store.db import Database

log = logging.getLogger("tunesmith.serve")
ERROR_RESPONSES = {400: {"model": ErrorBody}, 401: {"model": ErrorBody}, 404: {"model": ErrorBody}}


def create_app(settings: ServeSettings) -> FastAPI:
    """Build the FastAPI app; the database schema is created and the worker started when it starts.

    Args:
        settings: validated server settings.

    Returns:
        The app (run it with uvicorn).

    Raises:
        ServeError: the database cannot be opened.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url())
    ctx = ServerContext(
        settings,
        db,
        JobWorker(db, settings),
        Batcher(
            ModelHost(settings.max_adapters, settings.device),
            settings.max_batch_size,
            settings.batch_window_ms,
        ),
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.worker.start()
        yield
        ctx.worker.stop()
        ctx.batcher.close()
        db.close()

    app = FastAPI(
        title="tunesmith",
        version=__version__,
        lifespan=lifespan,
        description="OpenAI-compatible fine-tuning and inference: point the openai SDK's base_url here.",
    )
    app.state.ctx = ctx
    add_error_handlers(app)
    secured = [Depends(require_key)]
    for module in (files, jobs, chat, models, aliases):
        app.include_router(module.router, prefix="/v1", dependencies=secured, responses=ERROR_RESPONSES)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str | int]:
        """Liveness check (no key needed), with the batcher's counters."""
        return {
            "status": "ok",
            "version": __version__,
            "chat_batches": ctx.batcher.batches_run,
            "chat_requests": ctx.batcher.requests_run,
        }

    return app


def error_body(message: str, type_: str, param: str | None, code: str | None) -> dict:
    """OpenAI's ``{"error": {...}}`` body."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def add_error_handlers(app: FastAPI) -> None:
    """TunesmithError, validation errors and HTTP errors all answer with OpenAI's error body."""

    @app.exception_handler(TunesmithError)
    async def _tunesmith(_req: Request, exc: TunesmithError) -> JSONResponse:
        kind = "authentication_error" if exc.status_code == 401 else "invalid_request_error"
        return JSONResponse(error_body(str(exc), kind, exc.param, exc.code), status_code=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        lines = [f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors]
        param = ".".join(str(p) for p in errors[0]["loc"][1:]) if errors else None
        return JSONResponse(
            error_body(
                "invalid request: " + "; ".join(lines), "invalid_request_error", param, "invalid_request"
            ),
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(str(exc.detail), "invalid_request_error", None, str(exc.status_code)),
            status_code=exc.status_code,
        )

    @app.exception_handler(Exception)
    async def _internal(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return JSONResponse(
            error_body(
                f"internal error: {exc.__class__.__name__}: {exc}", "server_error", None, "internal_error"
            ),
            status_code=500,
        )
