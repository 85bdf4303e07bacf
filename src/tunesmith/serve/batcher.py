"""The batching queue: one inference thread; concurrent requests for the same model generate together.

A request waits at most ``batch_window_ms`` for others with the same model and sampling settings; requests
that queue up while a batch is generating are taken together as soon as it ends. Seeded and streamed
requests run alone (a seed fixes one sequence of random draws; the streamer follows one sequence).
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

from tunesmith.serve.inference import Completion, ModelHost, Sampling, Target, generate

log = logging.getLogger("tunesmith.batcher")


@dataclass
class GenRequest:
    """One chat request waiting for the inference thread."""

    target: Target
    prompt: list[int]
    params: Sampling
    streamer: Any = None  # a transformers streamer; the request then runs alone
    task: Any = None  # instead of generating, run task(host) on the inference thread
    future: Future = field(default_factory=Future)
    cancel: threading.Event = field(default_factory=threading.Event)  # set: the client went away

    @property
    def batch_key(self) -> tuple | None:
        """Requests with equal keys share a batch; None: run alone."""
        if self.streamer is not None or self.task is not None or self.params.seed is not None:
            return None
        return (self.target.key, dataclasses.replace(self.params, max_tokens=0))  # all but the budget


class Batcher:
    """Owns the ModelHost; ``submit`` from any thread, results come back through futures."""

    def __init__(self, host: ModelHost, max_batch: int = 8, window_ms: float = 10.0) -> None:
        self.host, self.max_batch, self.window_s = host, max_batch, window_ms / 1000
        self._q: queue.Queue[GenRequest | None] = queue.Queue()
        self._pending: collections.deque[GenRequest] = collections.deque()
        self._thread = threading.Thread(target=self._loop, name="tunesmith-inference", daemon=True)
        self.batches_run = 0
        self.requests_run = 0
        self.requests_cancelled = 0
        self.busy_since: float | None = None  # monotonic start of the batch being generated
        self._thread.start()

    def submit(self, req: GenRequest) -> Future:
        """Queue a request; its future resolves to ``list[Completion]`` (``n`` of them)."""
        self._q.put(req)
        return req.future

    def call(self, fn: Any) -> Future:
        """Run ``fn(host)`` on the inference thread (loading, unloading adapters) and return its future."""
        req = GenRequest(Target("", ""), [], Sampling(), task=fn)
        self._q.put(req)
        return req.future

    def stats(self) -> dict[str, Any]:
        """Liveness and load of the inference thread, for /health."""
        busy = self.busy_since
        return {
            "alive": self._thread.is_alive(),
            "queued": self._q.qsize() + len(self._pending),
            "busy_s": round(time.monotonic() - busy, 1) if busy is not None else 0.0,
            "batches": self.batches_run,
            "requests": self.requests_run,
            "cancelled": self.requests_cancelled,
        }

    def close(self) -> None:
        """Stop the inference thread after the current batch."""
        self._q.put(None)
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while True:
            first = self._pending.popleft() if self._pending else self._q.get()
            if first is None:
                return
            batch = self._collect(first)
            self._run(batch)

    def _collect(self, first: GenRequest) -> list[GenRequest]:
        key = first.batch_key
        if key is None:
            return [first]
        batch = [first]
        for req in list(self._pending):
            if len(batch) < self.max_batch and req.batch_key == key:
                self._pending.remove(req)
                batch.append(req)
        deadline = time.monotonic() + self.window_s
        while len(batch) < self.max_batch:
            try:
                req = (
                    self._q.get(timeout=max(deadline - time.monotonic(), 0))
                    if self._q.empty()
                    else self._q.get_nowait()
                )
            except queue.Empty:
                break
            if req is None:
                self._q.put(None)
                break
            (batch if req.batch_key == key else self._pending).append(req)
        return batch

    def _run(self, batch: list[GenRequest]) -> None:
        live = []
        for r in batch:
            if r.cancel.is_set():  # the client left while the request waited
                r.future.cancel()
                self.requests_cancelled += 1
            if r.future.set_running_or_notify_cancel():
                live.append(r)
        if not live:
            return
        self.busy_since = time.monotonic()
        try:
            if live[0].task is not None:
                result: Any = [live[0].task(self.host)]
            else:
                result = generate(
                    self.host,
                    live[0].target,
                    [r.prompt for r in live],
                    [r.params for r in live],
                    streamer=live[0].streamer,
                    cancel=[r.cancel for r in live],
                )
        except BaseException as exc:  # handed to the waiting request, which turns it into an HTTP error
            for r in live:
                r.future.set_exception(exc)
            return
        finally:
            self.busy_since = None
        self.requests_cancelled += sum(r.cancel.is_set() for r in live)
        self.batches_run += 1
        self.requests_run += len(live)
        for r, res in zip(live, result, strict=True):
            r.future.set_result(res)


def completions_usage(prompt_tokens: int, completions: list[Completion]) -> dict[str, int]:
    """OpenAI ``usage`` for one request (the prompt counted once, as OpenAI does for ``n`` > 1)."""
    done = sum(c.n_tokens for c in completions)
    return {"prompt_tokens": prompt_tokens, "completion_tokens": done, "total_tokens": prompt_tokens + done}
