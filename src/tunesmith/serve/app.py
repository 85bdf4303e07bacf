"""``create_app(settings) -> FastAPI``: the OpenAI-compatible server (files, fine-tuning jobs, chat, models).

Reads top to bottom: open the database, start the job worker and the inference batcher, mount the routes,
turn every error into OpenAI's error body.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from tunesmith import __version__
from tunesmith.core.errors import TunesmithError
from tunesmith.models.load import inference_dtype
from tunesmith.serve.batches import BatchRunner
from tunesmith.serve.dashboard.routes import install_dashboard
from tunesmith.serve.deps import RequireKeyMiddleware, ServerContext, refuse_surrogates
from tunesmith.serve.engines import build_batcher
from tunesmith.serve.inference import ModelHost
from tunesmith.serve.limits import BodyLimitMiddleware
from tunesmith.serve.routes import aliases, batches, chat, files, jobs, models
from tunesmith.serve.schemas import ErrorBody, error_body
from tunesmith.serve.settings import ServeSettings
from tunesmith.serve.worker import JobWorker
from tunesmith.store.db import Database

log = logging.getLogger("tunesmith.serve")
STUCK_AFTER_S = 300.0  # one batch generating longer than this means the engine is stuck
ERROR_RESPONSES = {status: {"model": ErrorBody} for status in (400, 401, 404, 409, 413)}
# `code` of a 4xx error whose exception names none more precise (never "server_error": the client is at fault).
CODE_BY_STATUS = {
    400: "invalid_request",
    401: "invalid_api_key",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
}


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
        build_batcher(
            ModelHost(
                settings.max_adapters, settings.device, inference_dtype(settings.inference_dtype, settings.device)
            ),
            settings,
        ),
    )

    runner = BatchRunner(ctx)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx.worker.start()
        batches_task = asyncio.create_task(runner.run())
        yield
        batches_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await batches_task
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
    app.state.batch_runner = runner
    app.add_middleware(BodyLimitMiddleware)
    add_error_handlers(app)
    app.add_middleware(RequireKeyMiddleware, keys=settings.api_keys)  # before any body is read
    for module in (files, jobs, chat, models, aliases, batches):
        app.include_router(
            module.router, prefix="/v1", dependencies=[Depends(refuse_surrogates)], responses=ERROR_RESPONSES
        )

    install_dashboard(app)  # the web dashboard at / and /ui/ (signs in with an API key)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, Any]:
        """Liveness (no key needed): ``ok``, or ``degraded`` when the inference thread died or one batch has
        run for over ``STUCK_AFTER_S``; with the engine's queue depth and counters."""
        engine = ctx.batcher.stats()
        healthy = engine["alive"] and engine["busy_s"] < STUCK_AFTER_S
        return {
            "status": "ok" if healthy else "degraded",
            "version": __version__,
            "engine": engine,
            "chat_batches": engine["batches"],
            "chat_requests": engine["requests"],
        }

    return app


class ErrorResponse(JSONResponse):
    """An error body as ASCII JSON: messages quote client input, which must never fail to encode."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, separators=(",", ":")).encode("ascii")


def error_response(status: int, message: str, type_: str, param: str | None, code: str | None) -> ErrorResponse:
    """OpenAI's ``{"error": {...}}`` body with ``status``."""
    if status < 500 and code in (None, "server_error"):
        code = CODE_BY_STATUS.get(status, "invalid_request")
    return ErrorResponse(error_body(message, type_, param, code), status_code=status)


def add_error_handlers(app: FastAPI) -> None:
    """TunesmithError, validation errors and HTTP errors all answer with OpenAI's error body."""

    @app.exception_handler(TunesmithError)
    async def _tunesmith(_req: Request, exc: TunesmithError) -> JSONResponse:
        kind = "authentication_error" if exc.status_code == 401 else "invalid_request_error"
        return error_response(exc.status_code, str(exc), kind, exc.param, exc.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        if errors and errors[0]["type"] == "json_invalid":  # loc is ("body", <character offset>), no param
            where, reason = errors[0]["loc"][-1], (errors[0].get("ctx") or {}).get("error", "")
            message = f"the request body is not valid JSON (at character {where}): {reason}".rstrip(": ")
            return error_response(400, message, "invalid_request_error", None, "invalid_json")
        lines = [f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in errors]
        param = ".".join(str(p) for p in errors[0]["loc"][1:]) if errors else None
        return error_response(
            400, "invalid request: " + "; ".join(lines), "invalid_request_error", param or None, "invalid_request"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_req: Request, exc: StarletteHTTPException) -> JSONResponse:
        return error_response(exc.status_code, str(exc.detail), "invalid_request_error", None, None)

    @app.exception_handler(Exception)
    async def _internal(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(
            500, f"internal error: {exc.__class__.__name__}: {exc}", "server_error", None, "internal_error"
        )
