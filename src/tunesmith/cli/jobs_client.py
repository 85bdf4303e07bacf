"""Client side of hosted fine-tuning: drive any OpenAI-compatible fine-tuning API with the official SDK.

``submit_job`` validates the data locally, uploads it, and creates the job; ``follow_job`` polls events
until the job ends. The same code talks to OpenAI or to `tunesmith serve` (only ``base_url`` changes).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import openai

from tunesmith.core import endpoints
from tunesmith.core.errors import DatasetError, ServeError

TERMINAL = ("succeeded", "failed", "cancelled", "paused")  # `wait` returns; a paused job needs a resume


@dataclass
class JobSpec:
    """What `tunesmith jobs create` submits."""

    training_file: Path
    model: str
    validation_file: Path | None = None
    suffix: str | None = None
    method: str = "supervised"
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    training_config: dict[str, Any] | None = None  # tunesmith servers only (sent as extra_body)


def make_client(base_url: str | None = None, api_key: str | None = None) -> Any:
    """An ``openai.OpenAI`` client (:func:`tunesmith.core.endpoints.make_client`); the key comes from ``api_key`` or
    ``OPENAI_API_KEY``.

    Raises:
        ServeError: no API key.
    """
    key = api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        raise ServeError(
            "no API key",
            "pass --api-key KEY or set OPENAI_API_KEY (for a `tunesmith serve` without keys any non-empty value works)",
            param="api_key",
        )
    return endpoints.make_client(base_url, key)


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call the SDK under the endpoints' retry policy; its errors become an EndpointError with the server's message.

    Raises:
        EndpointError: the API refused the request, or cannot be reached.
    """

    def attempt() -> Any:
        for value in kwargs.values():  # a retried upload sends its file from the start again
            if hasattr(value, "seek"):
                value.seek(0)
        return fn(*args, **kwargs)

    try:
        return endpoints.call_with_retries(attempt)
    except openai.OpenAIError as exc:
        unreachable = isinstance(exc, openai.APIConnectionError)
        hint = "check --base-url and that the server is running" if unreachable else "fix what the message names"
        raise endpoints.endpoint_error(exc, "the API", hint) from exc


def validate_local(path: Path, kind: str) -> int:
    """Load ``path`` as ``kind`` (chat/preference) before uploading; returns the example count."""
    from tunesmith.data.load import load_examples

    if not path.exists():
        raise DatasetError(f"{path}: no such file", "check the path", param="training_file")
    return len(load_examples(path, kind=kind))


def submit_job(client: Any, spec: JobSpec) -> Any:
    """Validate locally, upload the files, create the job; returns the SDK's FineTuningJob."""
    kind = "preference" if spec.method == "dpo" else "chat"
    validate_local(spec.training_file, kind)
    if spec.validation_file:
        validate_local(spec.validation_file, kind)
    with open(spec.training_file, "rb") as f:
        train = call(client.files.create, file=f, purpose="fine-tune")
    valid = None
    if spec.validation_file:
        with open(spec.validation_file, "rb") as f:
            valid = call(client.files.create, file=f, purpose="fine-tune")
    method = {"type": spec.method, spec.method: {"hyperparameters": spec.hyperparameters}}
    kwargs: dict[str, Any] = {"model": spec.model, "training_file": train.id, "method": method}
    if valid:
        kwargs["validation_file"] = valid.id
    if spec.suffix:
        kwargs["suffix"] = spec.suffix
    if spec.seed is not None:
        kwargs["seed"] = spec.seed
    if spec.training_config:
        kwargs["extra_body"] = {"training_config": spec.training_config}
    return call(client.fine_tuning.jobs.create, **kwargs)


def new_events(client: Any, job_id: str, seen: set[str]) -> list[Any]:
    """Events not in ``seen``, oldest first (the API lists newest first)."""
    page = call(client.fine_tuning.jobs.list_events, job_id, limit=100)
    fresh = [e for e in page.data if e.id not in seen]
    seen.update(e.id for e in fresh)
    return list(reversed(fresh))


def follow_job(
    client: Any,
    job_id: str,
    on_event: Callable[[Any], None] | None = None,
    poll_s: float = 2.0,
    timeout_s: float | None = None,
) -> Any:
    """Poll the job and its events until it succeeds, fails or is cancelled; returns the final job.

    Raises:
        ServeError: ``timeout_s`` passed first.
    """
    seen: set[str] = set()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        for event in new_events(client, job_id, seen):
            if on_event:
                on_event(event)
        job = call(client.fine_tuning.jobs.retrieve, job_id)
        if job.status in TERMINAL:
            for event in new_events(client, job_id, seen):
                if on_event:
                    on_event(event)
            return job
        if deadline is not None and time.monotonic() > deadline:
            raise ServeError(
                f"job {job_id} is still {job.status} after {timeout_s:.0f}s",
                f"keep following with `tunesmith jobs wait {job_id}`",
            )
        time.sleep(poll_s)
