"""A teacher on this machine: ``teacher.base_url: local`` answers with tunesmith's own generation engine.

The teacher's ``model`` is a model name or directory, or a `tunesmith train` run directory (its base model with
the adapter merged in), so a fine-tune can label data for another model without a server. Every request that is
not in the request cache joins one continuous batch (:mod:`tunesmith.models.engine`: an answer that ends leaves
the batch and the next request takes its row; a shared system prompt is prefilled once), ``concurrency`` rows at
a time, and is cached as it finishes, exactly as endpoint answers are; the cache key names the local weights
(their files' sizes and times) and dtype, so retrained weights are asked again. A sampled request (temperature
> 0) is seeded from its cache key, so a rerun of an interrupted job writes the same answers. Interrupting a run
(Ctrl-C) stops the engine at its next step; answers cut short are not cached.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from tunesmith.augment.client import CachedResponse, CachedTeacher, Job, JobDone, RequestCache, TeacherRequestError
from tunesmith.augment.config import TeacherSettings
from tunesmith.core.errors import ModelError
from tunesmith.models.load import inference_dtype, model_context_length
from tunesmith.models.registry import resolve_model
from tunesmith.models.runs import ResolvedRun, is_run_dir, load_for_inference, resolve_run, weights_fingerprint
from tunesmith.models.template import prompt_ids


class LocalTeacher(CachedTeacher):
    """Chat completions from a local model through the generation engine, cached like endpoint answers.

    Use as ``async with LocalTeacher(settings, cache) as teacher: await teacher.complete_all(jobs, done)``;
    the model loads only when some request is not cached, and is freed on exit.
    """

    def __init__(self, settings: TeacherSettings, cache: RequestCache, role: str = "teacher") -> None:
        """``role``: the config key the settings come from (``teacher``, ``judge``), named in errors.

        Raises:
            ModelError: ``settings.model`` is neither a model this machine has nor a run with a model.
        """
        self.source, key_model = local_source(settings, role)
        super().__init__(settings, cache, key_model)
        self._loaded: tuple[Any, Any] | None = None

    async def __aenter__(self) -> LocalTeacher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._loaded = None
        gc.collect()

    @property
    def cost_usd(self) -> float:
        """No API bill: a local teacher costs this machine's time, reported as $0."""
        return 0.0

    async def complete_all(self, jobs: dict[Hashable, Job], done: JobDone) -> None:
        """Answer every job: cached ones at once, the rest through one engine batch; ``done(key, result)`` as
        each ends (a prompt too long for the model's context fails alone, as a TeacherRequestError).

        Raises:
            ModelError: the model cannot be loaded (stops the whole batch).
        """
        todo = []
        for key, job in jobs.items():
            cache_key, params, hit = self.lookup(job.messages, job.params)
            if hit is not None:
                done(key, hit)
            else:
                todo.append((key, cache_key, job.messages, params))
        if todo:
            stop = threading.Event()
            try:
                await asyncio.to_thread(self._generate, todo, done, stop)
            except asyncio.CancelledError:
                stop.set()  # the worker thread ends at the engine's next step (asyncio.run waits for it)
                raise

    def _generate(self, todo: list[tuple[Hashable, str, Any, dict[str, Any]]], done: JobDone, stop: Any) -> None:
        from jinja2 import TemplateError

        from tunesmith.models.engine import Engine, EngineRequest, generate_all
        from tunesmith.models.generate import split_at_end

        model, tok = self._load()
        context = model_context_length(self.source.model, tok)
        reqs, keys = [], []
        for key, cache_key, messages, params in todo:
            try:
                ids = prompt_ids(tok, messages)
            except TemplateError as exc:  # e.g. a template without a system role: only this item fails
                self.stats.failures += 1
                done(key, TeacherRequestError(f"the teacher's chat template refuses this conversation: {exc}"))
                continue
            if len(ids) + params["max_tokens"] > context:
                self.stats.failures += 1
                done(key, TeacherRequestError(too_long(len(ids), params["max_tokens"], context)))
                continue
            seed = int(cache_key[:8], 16) if params["temperature"] > 0 else None
            reqs.append(EngineRequest(ids, params["max_tokens"], params["temperature"], seed=seed, cancel=stop))
            keys.append((key, cache_key))
        engine = Engine(lambda: model, tok, max_rows=self.settings.concurrency)

        def finished(i: int, gen: Any) -> None:
            if stop.is_set():
                return  # cut short by an interrupt: not an answer
            tokens, _ = split_at_end(gen.rows[0], engine.end_ids)
            response = CachedResponse(
                text=tok.decode(tokens, skip_special_tokens=True).strip(),
                prompt_tokens=len(reqs[i].prompt),
                completion_tokens=len(tokens),
                model=self.settings.model,
            )
            self.store(keys[i][1], response)
            self.stats.generated += 1
            done(keys[i][0], response)

        import torch

        try:
            generate_all(engine, reqs, finished, stop)
        except torch.OutOfMemoryError as exc:
            raise ModelError(
                f"the local teacher {self.settings.model!r} ran out of GPU memory",
                "lower --concurrency (rows decoded together); finished answers are cached for a rerun",
            ) from exc

    def _load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            self._loaded = load_for_inference(self.source.model, self.source.adapter, dtype=self.settings.dtype)
        return self._loaded


def local_source(settings: TeacherSettings, role: str = "teacher") -> tuple[ResolvedRun, str]:
    """The base model and adapter behind a local ``settings.model`` (a run directory, or a model name/dir), and
    the model part of its request-cache key: ``local:MODEL|weight files|dtype``.

    Raises:
        ModelError: not a model this machine has, or a run directory without a model (checked before any work).
    """
    try:
        if is_run_dir(settings.model):
            source, folder = resolve_run(Path(settings.model)), Path(settings.model)
        else:
            source, folder = ResolvedRun(settings.model, None, None, None), resolve_model(settings.model)
    except ModelError as exc:
        raise ModelError(f"{role}.model (base_url: local): {exc.message}", exc.hint) from exc
    dtype = inference_dtype(settings.dtype)
    return source, f"local:{settings.model}|{weights_fingerprint(folder)}|{dtype}"


def too_long(prompt_tokens: int, max_tokens: int, context: int) -> str:
    """Why a request does not fit the local model's context window."""
    return (
        f"prompt of {prompt_tokens} tokens + max_tokens {max_tokens} exceeds the teacher's context of "
        f"{context} tokens; shorten the prompt or lower teacher.max_tokens"
    )
