"""An async teacher client over the official ``openai`` SDK: concurrency limit, counted retries, a cache.

The client and its retry policy are :mod:`tunesmith.core.endpoints`' (exponential backoff on 429, 408/409, 5xx
and connection errors or timeouts, honouring ``Retry-After``); every retry is counted and reported here.
Every successful response is appended to the request cache (a :class:`~tunesmith.core.jsonl.JsonlCache`) before
it is returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Callable, Hashable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import openai

from tunesmith.augment.config import TeacherSettings
from tunesmith.core.endpoints import acall_with_retries, is_retryable, make_async_client, retry_reason
from tunesmith.core.errors import ConfigError, EndpointError
from tunesmith.core.jsonl import JsonlCache
from tunesmith.core.pricing import load_price_table


def request_key(model: str, messages: list[dict[str, Any]], params: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of (model, messages, params): equal requests get equal keys."""
    blob = json.dumps(
        {"model": model, "messages": messages, "params": params},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class CachedResponse:
    """What is kept of one teacher response."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str


class RequestCache(JsonlCache):
    """Teacher responses on disk, one ``{"key", "response"}`` line each, keyed by :func:`request_key`.

    An interrupted run loses at most the requests that were in flight; a rerun answers the rest from here
    instead of paying for them again.

    Raises:
        DatasetError: a complete line is not a cache entry (the message names the line).
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, key="key", check=lambda row: CachedResponse(**row["response"]))

    def get(self, key: str) -> CachedResponse | None:
        """The cached response for ``key``, or None."""
        row = self.rows.get(key)
        return None if row is None else CachedResponse(**row["response"])

    def put(self, key: str, response: CachedResponse) -> None:
        """Append one entry and fsync it before returning."""
        self.append([{"key": key, "response": asdict(response)}])


class TeacherRequestError(Exception):
    """A request failed for good (retries spent, or refused as bad); its item is rejected with this reason."""


@dataclass
class Job:
    """One request: the chat messages and any parameter overrides (e.g. a lower temperature for a judge)."""

    messages: list[dict[str, Any]]
    params: dict[str, Any] = field(default_factory=dict)


# What a teacher calls as each job ends: its key, and the response or the reason it failed for good.
JobDone = Callable[[Hashable, "CachedResponse | TeacherRequestError"], None]


@dataclass
class TeacherStats:
    """Counters for the progress bar and the report."""

    http_requests: int = 0
    generated: int = 0  # by a local teacher (no HTTP)
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
            f"environment variable {settings.api_key_env} is not set (needed for the teacher {settings.model!r})",
            "export it, or pass --api-key-env NAME; a local endpoint "
            "without auth accepts any value, e.g. export OPENAI_API_KEY=local",
        )
    return key


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


class CachedTeacher:
    """What every teacher shares: its settings, the request cache and its counters; answers are looked up and
    stored under :func:`request_key` of ``key_model`` (the endpoint's model name, or a local model's identity)."""

    def __init__(self, settings: TeacherSettings, cache: RequestCache, key_model: str) -> None:
        self.settings = settings
        self.cache = cache
        self.key_model = key_model
        self.stats = TeacherStats()

    def lookup(self, messages: list[dict[str, Any]], overrides: dict[str, Any]) -> tuple[str, dict, Any]:
        """``(cache key, sampling params, cached response or None)`` of a request (the params are part of the
        key); a hit is counted."""
        params = {"temperature": self.settings.temperature, "max_tokens": self.settings.max_tokens, **overrides}
        key = request_key(self.key_model, messages, params)
        hit = self.cache.get(key)
        if hit is not None:
            self.stats.cache_hits += 1
        return key, params, hit

    def store(self, key: str, response: CachedResponse) -> None:
        """Append a new answer to the cache (fsync'd) and count its tokens."""
        self.cache.put(key, response)
        self.stats.prompt_tokens += response.prompt_tokens
        self.stats.completion_tokens += response.completion_tokens


class TeacherClient(CachedTeacher):
    """Chat completions from one teacher, at most ``settings.concurrency`` at a time, cached and retried.

    Use as ``async with TeacherClient(settings, cache) as teacher: await teacher.complete(messages)``.
    """

    def __init__(self, settings: TeacherSettings, cache: RequestCache) -> None:
        super().__init__(settings, cache, settings.model)
        self.price = query_price(settings.model, settings.prices)
        self._sem = asyncio.Semaphore(settings.concurrency)
        self._client: openai.AsyncOpenAI | None = None

    async def __aenter__(self) -> TeacherClient:
        key = resolve_api_key(self.settings)
        self._client = make_async_client(self.settings.base_url, key, self.settings.timeout_s)
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

    async def complete_all(self, jobs: dict[Hashable, Job], done: JobDone) -> None:
        """Send every job, at most ``settings.concurrency`` in flight; ``done(key, result)`` as each ends.

        Raises:
            EndpointError: the endpoint rejects the key or does not know the model (stops the whole batch).
        """

        async def one(key: Hashable, job: Job) -> None:
            try:
                result: CachedResponse | TeacherRequestError = await self.complete(job.messages, **job.params)
            except TeacherRequestError as exc:
                result = exc
            done(key, result)

        pending = [asyncio.ensure_future(one(k, j)) for k, j in jobs.items()]
        try:
            await asyncio.gather(*pending)
        finally:
            for p in pending:
                p.cancel()

    async def complete(self, messages: list[dict[str, Any]], **overrides: Any) -> CachedResponse:
        """The teacher's reply to ``messages``: from the cache, or requested (with retries) and cached.

        Raises:
            TeacherRequestError: the request failed after all retries, or the endpoint refused it as bad.
            EndpointError: the endpoint rejects the key or does not know the model (stops the whole run).
        """
        key, params, hit = self.lookup(messages, overrides)
        if hit is not None:
            return hit
        async with self._sem:
            response = await self._request_with_retries(messages, params)
        self.store(key, response)
        return response

    async def _request_with_retries(self, messages: list[dict[str, Any]], params: dict[str, Any]) -> CachedResponse:
        assert self._client is not None, "use TeacherClient as an async context manager"
        client = self._client

        def request() -> Any:
            self.stats.http_requests += 1
            return client.chat.completions.create(model=self.settings.model, messages=messages, **params)

        def note(attempt: int, reason: str, delay: float) -> None:
            self.stats.retries.append({"attempt": attempt, "reason": reason, "delay_s": round(delay, 3)})

        try:
            resp = await acall_with_retries(request, self.settings, note)
        except openai.OpenAIError as exc:
            if not is_retryable(exc):
                raise self._refusal(exc) from exc
            self.stats.failures += 1
            raise TeacherRequestError(
                f"teacher request failed after {self.settings.max_retries} retries: {retry_reason(exc)}"
            ) from exc
        return _to_cached(resp, self.settings.model)

    def _refusal(self, exc: openai.OpenAIError) -> Exception:
        """What a request the endpoint refused for good ends as: a fatal EndpointError, or a rejected item."""
        status = getattr(exc, "status_code", None)
        where = self.settings.base_url or "api.openai.com"
        if status in (401, 403):
            return EndpointError(
                f"teacher endpoint {where} refused the API key (HTTP {status})",
                f"check ${self.settings.api_key_env} (or pass --api-key-env NAME)",
            )
        if status == 404:
            return EndpointError(
                f"teacher endpoint {where}: model {self.settings.model!r} not found (HTTP 404)",
                "check --teacher and --base-url (list models with the endpoint's /v1/models)",
            )
        message = getattr(exc, "message", str(exc))
        return TeacherRequestError(f"teacher refused the request (HTTP {status}): {message}")


def _to_cached(resp: Any, model: str) -> CachedResponse:
    text = resp.choices[0].message.content if resp.choices else None
    usage = resp.usage
    return CachedResponse(
        text=text or "",
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        model=resp.model or model,
    )
