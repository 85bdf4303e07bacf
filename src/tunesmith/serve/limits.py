"""A cap on request bodies: JSON requests larger than the cap are refused with a 413 before they are parsed.

File uploads (multipart) are exempt: they stream to disk under their own ``max_upload_bytes`` limit.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException

from tunesmith.serve.schemas import error_body

MAX_JSON_BODY_BYTES = 4 * 1024 * 1024  # a full 8k-token context is ~40 KB of text; 4 MiB leaves room for n, tools


def body_too_large(limit: int) -> HTTPException:
    """The 413 a too-large body gets (rendered as OpenAI's error body by the app's handler)."""
    return HTTPException(
        status_code=413,
        detail=f"request body larger than {limit} bytes; send shorter messages (uploads go through /v1/files)",
    )


class BodyLimitMiddleware:
    """Pure ASGI middleware: refuses non-multipart bodies over ``limit`` bytes (by header, then by count)."""

    def __init__(self, app: Any, limit: int = MAX_JSON_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self._is_multipart(scope):
            await self.app(scope, receive, send)
            return
        declared = self._header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        seen = 0

        async def counting_receive() -> dict:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:  # chunked bodies declare no length; FastAPI turns this into the 413
                    raise body_too_large(self.limit)
            return message

        await self.app(scope, counting_receive, send)

    @staticmethod
    def _header(scope: dict, name: bytes) -> str | None:
        for key, value in scope.get("headers", []):
            if key.lower() == name:
                return value.decode("latin-1")
        return None

    def _is_multipart(self, scope: dict) -> bool:
        return (self._header(scope, b"content-type") or "").lower().startswith("multipart/")

    async def _refuse(self, send: Any) -> None:
        detail = error_body(body_too_large(self.limit).detail, "invalid_request_error", None, "request_too_large")
        body = json.dumps(detail).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
