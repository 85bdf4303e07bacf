"""An async teacher client over the official ``openai`` SDK: concurrency limit, our own retries, a cache.

The SDK runs with ``max_retries=0`` so that retrying is done (and counted, and reported) here: exponential
backoff on 429, 408/409, 5xx and connection errors or timeouts, honouring ``Retry-After``/``retry-after-ms``.
Every successful response is appended to the request cache before it is returned.
"""

from __future__ import annotations

import asyncio
import email.utils
import os
import time
from dataclasses import dataclass, field
from typing import Any

import openai

from tunesmith.core.pricing import load_price_table
from tunesmith.augment.cache import CachedResponse, RequestCache, request_key
from tunesmith.augment.config import TeacherSettings
from tunesmith.core.errors import ConfigError, ServeError

RETRYABLE_STATUS = frozenset({408, 409, 429})


class TeacherRequestError(Exception):
    """A request failed for good (retries spent, or refused as bad); its item is rejected with this reason."""


@dataclass
class TeacherStats:
    """Counters for the progress bar and the report."""

    http_requests: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failures: int = 0
    retries: list[dict[str, Any]] = field(default_factory=list)


def resolve_api_key(settings: TeacherSettings) -> str:
    """The API key from the environment variable named by ``settings.api_key_env``."""
    key = os.environ.get(settings.api_key_env)
    if not key:
        raise ConfigError(
            f"environment variable {settings.api_key_env} is not set (needed for the teacher "
            f"{settings.model!r})",
            "export it, or pass --api-key-env NAME; a local endpoint "
            "without auth accepts any value, e.g. export OPENAI_API_KEY=local",
        )
    return key


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


def retry_delay(attempt: int, settings: TeacherSettings, headers: Any = None) -> float:
    """Delay before retry ``attempt`` (0-based): Retry-After if sent, else backoff * 2**attempt; capped."""
    hinted = parse_retry_after(headers)
    delay = hinted if hinted is not None else settings.backoff_s * (2**attempt)
    return min(delay, settings.max_backoff_s)


def query_price(model: str, prices_path: Any = None) -> tuple[float, float] | None:
    """(USD per 1M input tokens, per 1M output tokens) for ``model``, or None when it has no price.

    Raises:
        ConfigError: the price file itself is missing or invalid (a model without an entry is not an error).
    """
    table = load_price_table(prices_path)
    try:
        p = table.price(model)
    except ConfigError:
        return None
    return p.input, p.output


class TeacherClient:
    """Chat completions from one teacher, at most ``settings.concurrency`` at a time, cached and retried.

    Use as ``async with TeacherClient(settings, cache) as teacher: await teacher.complete(messages)``.
    """

    def __init__(self, settings: TeacherSettings, cache: RequestCache) -> None:
        self.settings = settings
        self.cache = cache
        self.stats = TeacherStats()
        self.price = query_price(settings.model, settings.prices)
        self._sem = asyncio.Semaphore(settings.concurrency)
        self._client: openai.AsyncOpenAI | None = None

    async def __aenter__(self) -> TeacherClient:
        self._client = openai.AsyncOpenAI(
            api_key=resolve_api_key(self.settings),
            base_url=self.settings.base_url,
            max_retries=0,
            timeout=self.settings.timeout_s,
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.close()

    @property
    def cost_usd(self) -> float | None:
        """Estimated USD spent so far (cache hits are free), or None when the model has no price."""
        if self.price is None:
            return None
        return (self.stats.prompt_tokens * self.price[0] + self.stats.completion_tokens * self.price[1]) / 1e6

    def params(self, **overrides: Any) -> dict[str, Any]:
        """Sampling parameters of a request (they are part of the cache key)."""
        return {"temperature": self.settings.temperature, "max_tokens": self.settings.max_tokens, **overrides}

    async def complete(self, messages: list[dict[str, Any]], **overrides: Any) -> CachedResponse:
        """The teacher's reply to ``messages``: from the cache, or requested (with retries) and cached.

        Raises:
            TeacherRequestError: the request failed after all retries, or the endpoint refused it as bad.
            ServeError: the endpoint rejects the key or does not know the model (stops the whole run).
        """
        params = self.params(**overrides)
        key = request_key(self.settings.model, messages, params)
        if (hit := self.cache.get(key)) is not None:
            self.stats.cache_hits += 1
            return hit
        async with self._sem:
            response = await self._request_with_retries(messages, params)
        self.cache.put(key, response)
        self.stats.prompt_tokens += response.prompt_tokens
        self.stats.completion_tokens += response.completion_tokens
        return response

    async def _request_with_retries(
        self, messages: list[dict[str, Any]], params: dict[str, Any]
    ) -> CachedResponse:
        assert self._client is not None, "use TeacherClient as an async context manager"
        for attempt in range(self.settings.max_retries + 1):
            self.stats.http_requests += 1
            try:
                resp = await self._client.chat.completions.create(
                    model=self.settings.model, messages=messages, **params
                )
            except openai.APIStatusError as exc:
                reason = self._classify(exc)
                headers = exc.response.headers if exc.response is not None else None
            except (openai.APIConnectionError, openai.APITimeoutError) as exc:
                reason, headers = f"{type(exc).__name__}: {exc}", None
            else:
                return _to_cached(resp, self.settings.model)
            if attempt == self.settings.max_retries:
                break
            delay = retry_delay(attempt, self.settings, headers)
            self.stats.retries.append({"attempt": attempt + 1, "reason": reason, "delay_s": round(delay, 3)})
            await asyncio.sleep(delay)
        self.stats.failures += 1
        raise TeacherRequestError(
            f"teacher request failed after {self.settings.max_retries} retries: {reason}"
        )

    def _classify(self, exc: openai.APIStatusError) -> str:
        """A retry reason for retryable statuses; raise for the rest."""
        status = exc.status_code
        if status in RETRYABLE_STATUS or status >= 500:
            return f"HTTP {status}"
        where = self.settings.base_url or "api.openai.com"
        if status in (401, 403):
            raise ServeError(
                f"teacher endpoint {where} refused the API key (HTTP {status})",
                f"check ${self.settings.api_key_env} (or pass --api-key-env NAME)",
            ) from exc
        if status == 404:
            raise ServeError(
                f"teacher endpoint {where}: model {self.settings.model!r} not found (HTTP 404)",
                "check --teacher and --base-url (list models with the endpoint's /v1/models)",
            ) from exc
        raise TeacherRequestError(f"teacher refused the request (HTTP {status}): {exc.message}") from exc


def _to_cached(resp: Any, model: str) -> CachedResponse:
    text = resp.choices[0].message.content if resp.choices else None
    usage = resp.usage
    return CachedResponse(
        text=text or "",
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        model=resp.model or model,
    )
