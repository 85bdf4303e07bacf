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

from tunesmith.serve.inference import Completion, ModelHost, Sampling, Target, finish_completion, generate

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
            "queued": self._q.qsize() + self._held(),
            "busy_s": round(time.monotonic() - busy, 1) if busy is not None else 0.0,
            "batches": self.batches_run,
            "requests": self.requests_run,
            "cancelled": self.requests_cancelled,
        }

    def _held(self) -> int:
        """Requests taken off the queue that wait for a batch of their own."""
        return len(self._pending)

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


class ContinuousBatcher:
    """Continuous batching on the inference thread: :class:`tunesmith.models.engine.Engine` per base model.

    A request is prefilled as soon as the running batch has room and decodes with it from the next step; a
    finished (or cancelled) request leaves at once. Requests for different adapters of one base, and for the
    base itself, share each forward pass (PEFT ``adapter_names``); each keeps its own budget, sampling
    settings, seed, processors, stop strings and stream. Same interface as :class:`Batcher`.
    """

    def __init__(self, host: ModelHost, max_batch: int = 8, window_ms: float = 0.0, prefix_cache_mb: int = 256) -> None:
        self.host, self.max_batch, self.prefix_cache_mb = host, max_batch, prefix_cache_mb
        self._q: queue.Queue[GenRequest | None] = queue.Queue()
        self._waiting: collections.deque[GenRequest] = collections.deque()
        self.engines: dict[str, Any] = {}  # base -> Engine
        self.batches_run = 0  # decode steps (each one forward pass over every running row)
        self.requests_run = 0
        self.requests_cancelled = 0
        self.busy_since: float | None = None  # monotonic start of the current busy stretch
        self._thread = threading.Thread(target=self._loop, name="tunesmith-inference", daemon=True)
        self._thread.start()

    submit = Batcher.submit
    call = Batcher.call
    close = Batcher.close

    def stats(self) -> dict[str, Any]:
        """Liveness and load of the inference thread, for /health, with the rows decoding now."""
        return {**Batcher.stats(self), "running": sum(e.rows for e in self.engines.values())}

    def _held(self) -> int:
        """Requests taken off the queue that wait for a free row."""
        return len(self._waiting)

    def _running(self) -> bool:
        return any(e.running for e in self.engines.values())

    def _loop(self) -> None:
        admitted = False
        # idle: wait for work (waiting rows re-checked every 0.1 s); not after an admission, which may have
        # finished every request it took (ranked structured answers) while others still wait for a row
        while self._take(block=not (self._running() or admitted)):
            admitted = self._admit()
            for base, engine in list(self.engines.items()):
                if engine.running:
                    self.busy_since = self.busy_since or time.monotonic()
                    self._guarded(base, engine.step)
                    self.batches_run += 1
            if not self._running():
                self.busy_since = None

    def _take(self, block: bool) -> bool:
        """Move queued requests to the waiting list and run queued tasks; False once closed."""
        while True:
            try:
                req = self._q.get(timeout=0.1) if block else self._q.get_nowait()
            except queue.Empty:
                if block and not self._waiting:
                    continue
                return True
            if req is None:
                return False
            block = False
            if req.cancel.is_set():
                req.future.cancel()
                self.requests_cancelled += 1
            if not req.future.set_running_or_notify_cancel():
                continue
            if req.task is None:
                self._waiting.append(req)
                continue
            try:
                req.future.set_result(req.task(self.host))
            except BaseException as exc:
                req.future.set_exception(exc)

    def _admit(self) -> bool:
        """Prefill waiting requests in arrival order while their base's batch has room (one forward per base);
        whether any was admitted."""
        joining: dict[str, list[Any]] = {}
        for req in list(self._waiting):
            if req.cancel.is_set():
                self._waiting.remove(req)
                self.requests_cancelled += 1
                req.future.set_result([])
                continue
            engine = self._engine(req.target.base, req)
            if engine is None:
                continue
            try:
                adapter = self._adapter(req.target, engine, joining.get(req.target.base, []))
            except BaseException as exc:  # a missing or unreadable adapter: this request's error only
                self._waiting.remove(req)
                req.future.set_exception(exc)
                continue
            if adapter is False:
                continue  # every loaded adapter is in use: wait for a row to finish
            ereq = self._engine_request(req, engine, adapter)
            pending = joining.setdefault(req.target.base, [])
            if (engine.running or pending) and engine.rows + sum(r.rows for r in pending) + ereq.rows > self.max_batch:
                break
            self._waiting.remove(req)
            pending.append(ereq)
        for base, reqs in joining.items():
            if reqs:
                self.busy_since = self.busy_since or time.monotonic()
                self._guarded(base, lambda e=self.engines[base], r=reqs: e.add_many(r), extra=reqs)
        return any(joining.values())

    def _engine(self, base: str, req: GenRequest) -> Any:
        from tunesmith.models.engine import Engine

        if base not in self.engines:
            try:
                model, tok = self.host._base(base)
            except BaseException as exc:
                self._waiting.remove(req)
                req.future.set_exception(exc)
                return None
            self.engines[base] = Engine(lambda: self.host.bases[base][0], tok, self.max_batch, self.prefix_cache_mb)
        return self.engines[base]

    def _adapter(self, target: Target, engine: Any, joining: list[Any]) -> str | None | bool:
        """The PEFT name of ``target``'s adapter (loaded now if needed), None for the base, False: wait."""
        if target.adapter is None:
            return None
        in_use = {r.adapter for r in [*engine.running, *joining] if r.adapter is not None}
        key = (target.base, target.adapter)
        if key not in self.host.adapters and len(in_use) >= self.host.max_adapters:
            return False
        # Prefixes cached under an adapter that is not loaded go before it loads again (its name is a hash of the
        # path, and the files there may hold other weights by now), and as soon as attaching evicts one.
        engine.prefixes.retain(self._loaded(target.base))
        self.host.attach(target.base, target.adapter, keep=in_use)
        engine.prefixes.retain(self._loaded(target.base))
        return self.host.adapters[key]

    def _loaded(self, base: str) -> set[str | None]:
        """PEFT names of the adapters loaded on ``base``, and None for the base itself."""
        return {None, *(name for (b, _), name in self.host.adapters.items() if b == base)}

    def _engine_request(self, req: GenRequest, engine: Any, adapter: str | None) -> Any:
        from tunesmith.models.engine import EngineRequest
        from tunesmith.models.generate import LogprobRecorder

        p = req.params
        rows = p.n if p.temperature > 0 else 1  # greedy: one row, repeated to every choice
        recorder = LogprobRecorder(p.logprobs) if p.logprobs is not None else None
        if req.streamer is not None and hasattr(req.streamer, "end_ids"):
            req.streamer.end_ids, req.streamer.recorder = engine.end_ids, recorder
        tok, end_ids = engine.tok, engine.end_ids

        def done(gen: Any) -> None:
            rows_out = [
                finish_completion(tok, gen.rows[r], end_ids, p, gen.logprobs[r] if gen.logprobs else None)
                for r in range(rows)
            ]
            self.requests_run += 1
            self.requests_cancelled += req.cancel.is_set()
            req.future.set_result(rows_out * (p.n // rows))

        return EngineRequest(
            prompt=req.prompt,
            max_new_tokens=p.max_tokens,
            temperature=p.temperature,
            top_p=p.top_p,
            rows=rows,
            adapter=adapter,
            seed=p.seed,
            stop=p.stop,
            recorder=recorder,
            penalties=p.penalties,
            grammar=p.grammar,
            streamer=req.streamer,
            cancel=req.cancel,
            on_done=done,
            on_error=lambda exc: req.future.done() or req.future.set_exception(exc),
        )

    def _guarded(self, base: str, fn: Any, extra: list[Any] = ()) -> None:
        """Run an engine call; on an error, fail every request of that base's batch and start it afresh."""
        try:
            fn()
        except BaseException as exc:  # handed to the waiting requests, which turn it into an HTTP error
            log.exception("generation failed on %s", base)
            engine = self.engines.pop(base)
            for r in {id(r): r for r in [*engine.running, *extra]}.values():
                if r.on_error is not None:
                    r.on_error(exc)
