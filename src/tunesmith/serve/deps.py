"""Request plumbing: the server context, API-key auth (before any body is read), refusing unencodable text,
and who is calling (for alias history)."""

from __future__ import annotations

import hmac
import json
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, RedirectResponse

from tunesmith.core.errors import TunesmithError
from tunesmith.serve.batcher import Batcher
from tunesmith.serve.dashboard.session import CSRF_HEADER, cookie_value, csrf_matches, verify_cookie
from tunesmith.serve.recipes import RecipeBook
from tunesmith.serve.schemas import error_body, find_lone_surrogate
from tunesmith.serve.settings import ServeSettings
from tunesmith.serve.worker import JobWorker
from tunesmith.store.db import Database

PUBLIC_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/ui/login"})
PUBLIC_PREFIXES = ("/ui/static/",)  # the dashboard's CSS/JS/icons: code, no data
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")  # JSON's \ud800..\udfff


class AuthError(TunesmithError):
    """Missing or wrong API key."""

    code = "invalid_api_key"
    status_code = 401


class TextError(TunesmithError):
    """A request string that is not valid Unicode text (a lone UTF-16 surrogate)."""

    code = "invalid_text"


@dataclass
class ServerContext:
    """Everything a route needs; built by ``create_app`` (no import-time singletons)."""

    settings: ServeSettings
    db: Database
    worker: JobWorker
    batcher: Batcher
    recipes: RecipeBook = field(default_factory=RecipeBook)  # deployed recipes, each prompter loaded once


def get_ctx(request: Request) -> ServerContext:
    """The app's ServerContext."""
    return request.app.state.ctx


def key_matches(authorization: bytes, keys: list[str]) -> bool:
    """Whether an ``Authorization`` header value (raw bytes) is ``Bearer <one of keys>``.

    Compared as bytes: header bytes are not necessarily ASCII, and ``hmac.compare_digest`` refuses non-ASCII
    str. A key is matched by its UTF-8 bytes; every key is compared (no early exit).
    """
    scheme, _, token = authorization.partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    token = token.strip()
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(token, key.encode("utf-8"))
    return matched


AUTH_ERROR = AuthError(
    "missing or incorrect API key in the Authorization header",
    "send `Authorization: Bearer <key>` with a key given to `tunesmith serve --api-key` "
    "(the openai SDK does this with api_key=...)",
)


class RequireKeyMiddleware:
    """ASGI middleware: every path but PUBLIC_PATHS needs a key, checked before the app reads the body.

    FastAPI parses form and file parameters before router dependencies run, so a dependency would let an
    unauthenticated client make the server spool a whole upload first; here the 401 comes first.

    The key comes as ``Authorization: Bearer`` or, for the dashboard, as its signed session cookie: a page
    (``/``, ``/ui/...``) needs the cookie (else a redirect to the sign-in page, no data), an API call by
    cookie must also carry the session's ``X-CSRF-Token`` header, which another site's page cannot send.
    """

    def __init__(self, app: Any, keys: list[str]) -> None:
        self.app, self.keys = app, keys

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.keys or path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:  # the first of a repeated header counts
            headers.setdefault(name, value)
        if key_matches(headers.get(b"authorization", b""), self.keys):
            await self.app(scope, receive, send)
            return
        session = verify_cookie(cookie_value(headers.get(b"cookie", b"")), self.keys)
        page = is_dashboard_page(path)
        if session is not None and (page or csrf_matches(headers.get(CSRF_HEADER, b"").decode("latin-1"), session)):
            scope.setdefault("state", {})["dashboard_session"] = session
            await self.app(scope, receive, send)
            return
        if page:
            await RedirectResponse("/ui/login", status_code=303)(scope, receive, send)
            return
        body = error_body(str(AUTH_ERROR), "authentication_error", None, AuthError.code)
        await JSONResponse(body, status_code=401)(scope, receive, send)


def is_dashboard_page(path: str) -> bool:
    """A dashboard HTML page (``/`` or ``/ui/...``) rather than its JSON (``/ui/api/...``) or the API."""
    return (path == "/" or path.startswith("/ui/")) and not path.startswith("/ui/api/")


async def refuse_surrogates(request: Request) -> None:
    """Refuse a JSON body holding a lone surrogate escape (``"\\udc80"``): such a string cannot be stored,
    logged or echoed as UTF-8. Paired escapes (emoji) pass; the body was already read and is cached."""
    if "json" not in request.headers.get("content-type", ""):
        return
    body = await request.body()
    if not SURROGATE_ESCAPE.search(body):
        return
    try:
        where = find_lone_surrogate(json.loads(body))
    except ValueError:
        return  # not JSON: the body's own validation reports it
    if where is not None:
        raise TextError(
            f"the request body holds a lone UTF-16 surrogate at {where} (e.g. \\udc80), which is not valid text",
            "send valid Unicode strings (surrogates only in pairs)",
            param=where,
        )


def actor(request: Request) -> str:
    """Who made the request: ``api-key:...<last 4>``, ``dashboard:...<last 4>`` or ``anonymous``."""
    session = getattr(request.state, "dashboard_session", None)
    if session is not None and not request.headers.get("authorization"):
        return session.actor
    _, _, token = request.headers.get("authorization", "").partition(" ")
    return f"api-key:...{token.strip()[-4:]}" if token.strip() else "anonymous"
