"""Request dependencies: the server context, API-key auth, and who is calling (for alias history)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from fastapi import Request

from tunesmith.errors import TunesmithError
from tunesmith.serve.batcher import Batcher
from tunesmith.serve.settings import ServeSettings
from tunesmith.serve.worker import JobWorker
from tunesmith.store.db import Database


class AuthError(TunesmithError):
    """Missing or wrong API key."""

    code = "invalid_api_key"
    status_code = 401


@dataclass
class ServerContext:
    """Everything a route needs; built by ``create_app`` (no import-time singletons)."""

    settings: ServeSettings
    db: Database
    worker: JobWorker
    batcher: Batcher


def get_ctx(request: Request) -> ServerContext:
    """The app's ServerContext."""
    return request.app.state.ctx


def require_key(request: Request) -> None:
    """Accept the request when no keys are configured or ``Authorization: Bearer <key>`` matches one."""
    keys = get_ctx(request).settings.api_keys
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not any(hmac.compare_digest(token.strip(), k) for k in keys):
        raise AuthError(
            "missing or incorrect API key in the Authorization header",
            "send `Authorization: Bearer <key>` with a key given to `tunesmith serve --api-key` "
            "(the openai SDK does this with api_key=...)",
        )


def actor(request: Request) -> str:
    """Who made the request: ``api-key:...<last 4>`` or ``anonymous``."""
    _, _, token = request.headers.get("authorization", "").partition(" ")
    return f"api-key:...{token.strip()[-4:]}" if token.strip() else "anonymous"
