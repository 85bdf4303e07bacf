"""One way to talk to OpenAI-compatible endpoints: the client factory, the retry policy, the error mapping.

Teachers, judges, endpoint candidates and the fine-tuning jobs client all build their ``openai`` SDK clients
here. The SDK's own retries are off (``max_retries=0``) so that every caller retries the same way and can count
and report what it retried: 408, 409, 429, 5xx and connection errors or timeouts are retried with exponential
backoff (``backoff_s * 2**attempt``, capped at ``max_backoff_s``), honouring ``Retry-After`` /
``retry-after-ms``; other errors are not. A failure the caller does not handle itself becomes an
:class:`~tunesmith.core.errors.EndpointError`.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import openai

from tunesmith.core.errors import EndpointError

T = TypeVar("T")
RETRYABLE_STATUS = frozenset({408, 409, 429})
OnRetry = Callable[[int, str, float], None]  # (attempt, 1-based; reason; delay in seconds)


class RetrySettings(Protocol):
    """What a retry policy needs (:class:`Retries`, or a stage's settings with the same fields)."""

    max_retries: int
    backoff_s: float
    max_backoff_s: float


@dataclass(frozen=True)
class Retries:
    """The retry policy of an endpoint call."""

    max_retries: int = 2
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0


DEFAULT_RETRIES = Retries()


def make_client(base_url: str | None, api_key: str, timeout: float | None = None) -> openai.OpenAI:
    """A synchronous ``openai.OpenAI`` client (SDK retries off: callers retry through :func:`call_with_retries`)."""
    return openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)


def make_async_client(base_url: str | None, api_key: str, timeout: float | None = None) -> openai.AsyncOpenAI:
    """An ``openai.AsyncOpenAI`` client (SDK retries off: callers retry through :func:`acall_with_retries`)."""
    return openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=timeout)


def parse_retry_after(headers: Any) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), if present."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        when = email.utils.parsedate_tz(value)
        return None if when is None else max(0.0, email.utils.mktime_tz(when) - time.time())


def retry_delay(attempt: int, policy: RetrySettings, headers: Any = None) -> float:
    """Delay before retry ``attempt`` (0-based): Retry-After if sent, else backoff * 2**attempt; capped."""
    hinted = parse_retry_after(headers)
    delay = hinted if hinted is not None else policy.backoff_s * (2**attempt)
    return min(delay, policy.max_backoff_s)


def is_retryable(exc: BaseException) -> bool:
    """Whether the policy retries this SDK error (408/409/429/5xx, connection errors and timeouts)."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRYABLE_STATUS or exc.status_code >= 500
    return isinstance(exc, openai.APIConnectionError)  # APITimeoutError is one


def retry_reason(exc: BaseException) -> str:
    """A short reason for a failed attempt: ``HTTP 503`` or ``APITimeoutError: ...``."""
    if isinstance(exc, openai.APIStatusError):
        return f"HTTP {exc.status_code}"
    return f"{type(exc).__name__}: {exc}"


def _delay_or_raise(exc: openai.OpenAIError, attempt: int, policy: RetrySettings, on_retry: OnRetry | None) -> float:
    """The delay before the next attempt; re-raises ``exc`` when it is not retried."""
    if not is_retryable(exc) or attempt >= policy.max_retries:
        raise exc
    response = getattr(exc, "response", None)
    delay = retry_delay(attempt, policy, response.headers if response is not None else None)
    if on_retry is not None:
        on_retry(attempt + 1, retry_reason(exc), delay)
    return delay


def call_with_retries(
    fn: Callable[[], T], policy: RetrySettings = DEFAULT_RETRIES, on_retry: OnRetry | None = None
) -> T:
    """``fn()`` (one SDK request), retried under ``policy``; the last SDK error propagates."""
    attempt = 0
    while True:
        try:
            return fn()
        except openai.OpenAIError as exc:
            delay = _delay_or_raise(exc, attempt, policy, on_retry)
        time.sleep(delay)
        attempt += 1


async def acall_with_retries(
    fn: Callable[[], Awaitable[T]], policy: RetrySettings = DEFAULT_RETRIES, on_retry: OnRetry | None = None
) -> T:
    """``await fn()`` (one SDK request), retried under ``policy``; the last SDK error propagates."""
    attempt = 0
    while True:
        try:
            return await fn()
        except openai.OpenAIError as exc:
            delay = _delay_or_raise(exc, attempt, policy, on_retry)
        await asyncio.sleep(delay)
        attempt += 1


def server_message(exc: openai.APIStatusError) -> str:
    """The error message the endpoint sent (OpenAI's ``{"error": {"message"}}`` body), else the SDK's."""
    body = exc.body if isinstance(exc.body, dict) else {}
    inner = body.get("error") if isinstance(body.get("error"), dict) else body
    return str(inner.get("message") or exc.message)


def endpoint_error(exc: BaseException, what: str, hint: str) -> EndpointError:
    """An EndpointError for a failed call to ``what`` (``judge http://... model 'm'``), with the server's word.

    ``HTTP 4xx/5xx`` -> ``WHAT refused the request (HTTP 400): MESSAGE``; no connection -> ``cannot reach WHAT``.
    """
    if isinstance(exc, openai.APIStatusError):
        return EndpointError(f"{what} refused the request (HTTP {exc.status_code}): {server_message(exc)}", hint)
    if isinstance(exc, openai.APIConnectionError):
        return EndpointError(f"cannot reach {what}: {retry_reason(exc)}", hint)
    return EndpointError(f"{what} failed: {type(exc).__name__}: {exc}", hint)
