"""Continuous batching on a causal LM's own forward pass: rows join and leave the running batch at every step.

Why our own scheduler (see docs/generation.md for the measurements): transformers' ``generate_batch`` manager
takes one generation config for all requests and knows nothing of PEFT's per-row ``adapter_names``; we need
per-request budgets, sampling settings, seeds, logits processors (log probabilities, OpenAI penalties, JSON
grammar masks), stop strings, cancellation and streaming, with base and adapter rows sharing one forward pass, on CPU.

How a step works: admitted requests are prefilled in left-padded forwards of similar prompt lengths, each
prompt's longest prefix already computed for an earlier prompt of the same adapter taken from the prefix cache
(:mod:`tunesmith.models.prefill`); their KV caches are left-padded to the running batch's length and concatenated
along the batch axis. Each decode step runs one forward for every running row (positions kept per row, padding
masked), applies each request's own processors and sampler, and drops the rows whose request finished (end
token, budget, stop string or cancel), and the columns no remaining row needs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tunesmith.models.generate import (
    Generated,
    LogprobRecorder,
    OpenAIPenalties,
    end_token_ids,
)
from tunesmith.models.prefill import (
    FORWARD_COST_TOKENS,
    MIN_PREFIX_TOKENS,
    PrefixCache,
    common_prefix,
    left_pad,
    past_cache,
    plan_groups,
)
from tunesmith.models.ranked import rank_documents, ranked_answers
from tunesmith.models.structured import GrammarMask

BASE_ADAPTER = "__base__"  # PEFT's name for "no adapter" in a mixed-adapter batch


@dataclass
class EngineRequest:
    """One prompt to continue, with everything that is per request."""

    prompt: list[int]
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    rows: int = 1  # sequences sampled from the prompt (OpenAI's n when sampling)
    adapter: str | None = None  # name of a PEFT adapter loaded on the model; None: the base model
    seed: int | None = None
    stop: tuple[str, ...] = ()
    recorder: LogprobRecorder | None = None
    penalties: tuple[float, float, dict[int, float]] | None = None
    grammar: str | None = None  # llguidance grammar of a JSON response_format; None: free text
    streamer: Any = None  # ``put(ids)`` per step (the first call carries the prompt), ``end()`` at the end
    cancel: threading.Event | None = None
    on_done: Callable[[Generated], None] | None = None
    on_error: Callable[[BaseException], None] | None = None  # called instead of on_done if the batch fails
    # Filled in by the engine.
    out: list[list[int]] = field(default_factory=list)  # generated ids per row (end token and pads included)
    done_rows: list[bool] = field(default_factory=list)
    steps: int = 0
    admitted_s: float = 0.0  # perf_counter when prefill started
    finished_s: float = 0.0  # perf_counter when the request left the batch
    _processors: Any = None
    _generator: Any = None


class Engine:
    """The running batch of one model; ``add`` requests at any time, ``step`` advances every row by one token."""

    def __init__(
        self,
        model_fn: Callable[[], Any],
        tok: Any,
        max_rows: int = 8,
        prefix_cache_mb: int = 256,
        prefixes: PrefixCache | None = None,
    ) -> None:
        """``model_fn`` returns the model (PEFT may re-wrap it as adapters come and go); ``prefix_cache_mb``
        bounds the cached prompt prefixes (0: no reuse); ``prefixes``: a cache shared with earlier engines of the
        same model and adapters (e.g. one per evaluation candidate across its batches)."""
        self.model_fn, self.tok, self.max_rows = model_fn, tok, max_rows
        self.end_ids = end_token_ids(model_fn(), tok)
        self.prefixes = prefixes if prefixes is not None else PrefixCache(prefix_cache_mb * 2**20)
        self.running: list[EngineRequest] = []
        self.cache: Any = None  # DynamicCache, (rows, heads, seq, dim) per layer
        self.mask: Any = None  # (rows, seq) 1 for real tokens, 0 for left padding
        self.positions: Any = None  # (rows,) position of the next token of each row
        self.last: Any = None  # (rows,) the token each row feeds next
        self.steps_run = 0
        self.prefilled_tokens = 0  # prompt tokens run through the model
        self.reused_tokens = 0  # prompt tokens taken from the prefix cache instead
        self.ranked = 0  # requests answered by ranking their grammar's few documents (models/ranked.py)
        self.answer_ids: dict[str, list[list[int]] | None] = {}  # per grammar (models/ranked.py)

    @property
    def rows(self) -> int:
        """Rows in the running batch."""
        return sum(r.rows for r in self.running)

    def has_room(self, req: EngineRequest) -> bool:
        """Whether ``req``'s rows fit (an empty batch takes any request)."""
        return not self.running or self.rows + req.rows <= self.max_rows

    def add(self, req: EngineRequest) -> None:
        """Prefill ``req`` and join its rows to the running batch; they decode from the next ``step``."""
        self.add_many([req])

    def add_many(self, reqs: list[EngineRequest]) -> None:
        """Prefill ``reqs`` and join their rows to the running batch; cached prompt prefixes are reused and the
        rest is prefilled in left-padded forwards of similar lengths (:mod:`tunesmith.models.prefill`)."""
        for req in reqs:
            self._start(req)
        self._share_prefixes(reqs)
        ranked = [(r, a) for r in reqs if (a := ranked_answers(self, r))]
        if ranked:
            rank_documents(self, ranked)
            for req, _ in ranked:
                finish_request(req)
        finished = {id(r) for r, _ in ranked}
        reqs = [r for r in reqs if id(r) not in finished]
        hits = [self.prefixes.longest(r.adapter, r.prompt) for r in reqs]  # (entry, shared length) each
        self.reused_tokens += sum(k for _, k in hits)
        for group in plan_groups([len(r.prompt) - k for r, (_, k) in zip(reqs, hits, strict=True)]):
            self._prefill([reqs[i] for i in group], [hits[i] for i in group])

    def _share_prefixes(self, reqs: list[EngineRequest]) -> None:
        """Prefill once, and cache, the prefix that requests of one adapter admitted together share (a system
        prompt, a few-shot block)."""
        by_adapter: dict[str | None, list[EngineRequest]] = {}
        for r in reqs:
            by_adapter.setdefault(r.adapter, []).append(r)
        shared = []
        for adapter, group in by_adapter.items():
            k = common_prefix([r.prompt for r in group]) if len(group) > 1 else 0
            if k >= MIN_PREFIX_TOKENS:
                shared.append((adapter, group[0].prompt[:k], len(group)))
        self.remember(shared)

    def remember(self, prefixes: list[tuple[str | None, list[int], int]]) -> None:
        """Prefill into the prefix cache each ``(adapter, tokens, uses)`` that ``uses`` forwards would otherwise
        each recompute (a shared prompt prefix; a ranked request's context, once per document), when that saves
        more than one forward costs; in forwards of similar lengths."""
        if not self.prefixes.max_bytes:
            return
        need, hits = [], []
        for adapter, tokens, uses in prefixes:
            hit = self.prefixes.longest(adapter, tokens)  # at most len(tokens) - 1: the last is always computed
            if (uses - 1) * (len(tokens) - 1 - hit[1]) > FORWARD_COST_TOKENS:
                need.append((adapter, tokens))
                hits.append(hit)
        for group in plan_groups([len(t) - k for (_, t), (_, k) in zip(need, hits, strict=True)]):
            self.forward([need[i][1] for i in group], [need[i][0] for i in group], [hits[i] for i in group])

    def _prefill(self, reqs: list[EngineRequest], hits: list[tuple[Any, int]]) -> None:
        """One forward over ``reqs``' prompts (their first ``hits`` tokens from the prefix cache); their rows
        join the running batch with their first token chosen."""
        import torch

        out, mask = self.forward([r.prompt for r in reqs], [r.adapter for r in reqs], hits)
        rows = torch.tensor([i for i, r in enumerate(reqs) for _ in range(r.rows)], device=self.device)
        cache = out.past_key_values
        if len(rows) != len(reqs):
            cache.batch_select_indices(rows)  # n sampled rows share their request's prompt cache
        self._join(cache, mask[rows])
        lengths = [len(r.prompt) for r in reqs for _ in range(r.rows)]
        self.positions = torch.cat([self.positions, torch.tensor(lengths, device=self.device)])
        self.running.extend(reqs)
        logits = out.logits[:, -1, :].float()
        done = []
        for i, req in enumerate(reqs):
            tokens = self._choose(req, logits[i : i + 1].expand(req.rows, -1))
            self.last = torch.cat([self.last, tokens.to(self.device)])
            if self.record(req, tokens.tolist()):
                done.append(req)
        self._drop(done)

    def forward(
        self,
        prompts: list[list[int]],
        adapters: list[str | None],
        hits: list[tuple[Any, int]],
        keep: int = 1,
        remember: bool = True,
    ) -> Any:
        """Prefill ``prompts`` in one forward, the first ``k`` tokens of each from its ``(entry, k)`` hit in the
        prefix cache; each prompt's cache is kept for reuse if ``remember``; logits of the last ``keep``
        positions. Returns the output and the (rows, seq) mask."""
        import torch

        width = max(len(p) - k for p, (_, k) in zip(prompts, hits, strict=True))
        past_width = max(k for _, k in hits)
        ids, mask = [], []
        for p, (_, k) in zip(prompts, hits, strict=True):
            pad = width - (len(p) - k)
            ids.append([self.tok.pad_token_id] * pad + p[k:])
            mask.append([0] * (past_width - k) + [1] * k + [0] * pad + [1] * (len(p) - k))
        mask_t = torch.tensor(mask, device=self.device)  # (rows, past_width + width); holes where a prefix is short
        self.prefilled_tokens += sum(len(p) - k for p, (_, k) in zip(prompts, hits, strict=True))
        model = self.model_fn()
        with torch.inference_mode():
            out = model(
                input_ids=torch.tensor(ids, device=self.device),
                attention_mask=mask_t,
                position_ids=(mask_t.cumsum(-1) - 1).clamp(min=0)[:, past_width:],  # (rows, width)
                past_key_values=past_cache(hits) if past_width else None,
                use_cache=True,
                logits_to_keep=keep,
                **adapter_kwargs(model, adapters),
            )
        kept = zip(prompts, adapters, strict=True) if remember and self.prefixes.max_bytes else []
        for i, (p, adapter) in enumerate(kept):
            cols = mask_t[i].nonzero()[:, 0]
            layers = out.past_key_values.layers
            self.prefixes.add(adapter, p, [(x.keys[i : i + 1, :, cols], x.values[i : i + 1, :, cols]) for x in layers])
        return out, mask_t

    def _start(self, req: EngineRequest) -> None:
        """Per-request state: output rows, processors, the seeded generator; the streamer sees the prompt."""
        import torch

        req.admitted_s = time.perf_counter()
        req.out, req.done_rows = [[] for _ in range(req.rows)], [False] * req.rows
        req._processors = build_processors(req, self.tok)
        if req.seed is not None:
            # on the logits' device: torch.multinomial refuses a CPU generator for CUDA scores
            req._generator = torch.Generator(device=self.device).manual_seed(req.seed % 2**64)
        if req.streamer is not None:
            req.streamer.put(torch.tensor([req.prompt]))

    def step(self) -> list[EngineRequest]:
        """One decode step for every running row; returns the requests that finished (their rows left)."""
        import torch

        finished = [r for r in self.running if r.cancel is not None and r.cancel.is_set()]
        self._drop(finished)
        if not self.running:
            return finished
        model = self.model_fn()
        self.mask = torch.cat([self.mask, torch.ones(self.rows, 1, dtype=self.mask.dtype, device=self.device)], 1)
        names = [r.adapter for r in self.running for _ in range(r.rows)]
        with torch.inference_mode():
            out = model(
                input_ids=self.last[:, None],
                attention_mask=self.mask,
                position_ids=self.positions[:, None],
                past_key_values=self.cache,
                use_cache=True,
                **adapter_kwargs(model, names),
            )
        self.cache, self.positions = out.past_key_values, self.positions + 1
        logits, tokens, start, done = out.logits[:, -1, :].float(), [], 0, []
        for req in self.running:
            chosen = self._choose(req, logits[start : start + req.rows])
            tokens.append(chosen)
            start += req.rows
            if self.record(req, chosen.tolist()):
                done.append(req)
        self.last = torch.cat(tokens).to(self.device)
        self.steps_run += 1
        self._drop(done)
        return finished + done

    @property
    def device(self) -> Any:
        """Where the model's weights are."""
        return next(self.model_fn().parameters()).device

    def _choose(self, req: EngineRequest, scores: Any) -> Any:
        """The next token of each of ``req``'s rows: its processors, then greedy or sampling."""
        import torch

        if req._processors:
            scores = req._processors(self._row_ids(req), scores.clone())
        if req.temperature <= 0:
            tokens = scores.argmax(-1)
        else:
            probs = torch.softmax(scores, dim=-1)
            tokens = torch.multinomial(probs, 1, generator=req._generator)[:, 0]
        pad = self.tok.pad_token_id
        return torch.tensor(
            [pad if d else t for t, d in zip(tokens.tolist(), req.done_rows, strict=True)], dtype=torch.long
        )

    def _row_ids(self, req: EngineRequest) -> Any:
        import torch

        return torch.tensor([req.prompt + row for row in req.out])  # (rows, prompt + generated)

    def record(self, req: EngineRequest, tokens: list[int]) -> bool:
        """Append one step's tokens; whether the request is finished."""
        import torch

        for i, t in enumerate(tokens):
            req.out[i].append(t)
            if t in self.end_ids or hits_stop(self.tok, req.out[i], req.stop):
                req.done_rows[i] = True
        req.steps += 1
        if req.streamer is not None:
            req.streamer.put(torch.tensor(tokens))
        return all(req.done_rows) or req.steps >= req.max_new_tokens

    def _join(self, cache: Any, mask: Any) -> None:
        """Concatenate a new request's cache to the running one, left-padding the shorter to equal length."""
        import torch

        if self.cache is None or not self.running:
            self.cache, self.mask = cache, mask
            self.positions = torch.zeros(0, dtype=torch.long, device=self.device)
            self.last = torch.zeros(0, dtype=torch.long, device=self.device)
            return
        width = max(self.mask.shape[1], mask.shape[1])
        for old, new in zip(self.cache.layers, cache.layers, strict=True):
            old.keys = torch.cat([left_pad(old.keys, width), left_pad(new.keys, width)])
            old.values = torch.cat([left_pad(old.values, width), left_pad(new.values, width)])
        pad = torch.nn.functional.pad
        self.mask = torch.cat([pad(self.mask, (width - self.mask.shape[1], 0)), pad(mask, (width - mask.shape[1], 0))])

    def _drop(self, reqs: list[EngineRequest]) -> None:
        """Remove finished requests' rows from the batch and hand them their results."""
        import torch

        if not reqs:
            return
        keep, start = [], 0
        for r in self.running:
            if r not in reqs:
                keep.extend(range(start, start + r.rows))
            start += r.rows
        self.running = [r for r in self.running if r not in reqs]
        if keep:
            idx = torch.tensor(keep, device=self.device)
            self.cache.batch_select_indices(idx)
            self.mask, self.positions, self.last = self.mask[idx], self.positions[idx], self.last[idx]
            self._trim()
        else:
            self.cache = self.mask = None
        for r in reqs:
            finish_request(r)

    def _trim(self) -> None:
        """Drop the columns that are padding in every remaining row (positions are kept per row, not counted)."""
        used = self.mask.sum(0) > 0
        if bool(used.all()):
            return
        lead = int((~used).long().cumprod(0).sum())
        if bool(used[lead:].all()):  # padding on the left only: a view, no copy
            self.mask = self.mask[:, lead:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[..., lead:, :], layer.values[..., lead:, :]
            return
        cols = used.nonzero()[:, 0]
        self.mask = self.mask[:, cols]
        for layer in self.cache.layers:
            layer.keys, layer.values = layer.keys[:, :, cols], layer.values[:, :, cols]


def finish_request(req: EngineRequest) -> None:
    """Resolve the last step's log probabilities, end the stream and hand the rows to ``on_done``."""
    import torch

    req.finished_s = time.perf_counter()
    if req.recorder is not None and req.out and req.out[0]:
        req.recorder.resolve(torch.tensor([row[-1] for row in req.out]))
    if req.streamer is not None:
        req.streamer.end()
    if req.on_done is not None:
        req.on_done(Generated(req.out, req.recorder.steps if req.recorder is not None else None))


def build_processors(req: EngineRequest, tok: Any) -> Any:
    """The request's logits processors in ``generate``'s order: ours (log probabilities before any warping,
    penalties, the structured-output mask), then temperature and top-p."""
    from transformers import LogitsProcessorList, TemperatureLogitsWarper, TopPLogitsWarper

    procs: list[Any] = [req.recorder] if req.recorder is not None else []
    if req.penalties is not None:
        procs.append(OpenAIPenalties(len(req.prompt), *req.penalties))
    if req.grammar is not None:
        procs.append(GrammarMask(tok, req.grammar))
    if req.temperature > 0:
        if req.temperature != 1.0:
            procs.append(TemperatureLogitsWarper(req.temperature))
        if req.top_p < 1.0:
            procs.append(TopPLogitsWarper(req.top_p))
    return LogitsProcessorList(procs) if procs else None


def adapter_kwargs(model: Any, names: list[str | None]) -> dict[str, Any]:
    """``adapter_names`` for PEFT's mixed-adapter batches, or nothing for a plain model."""
    if not hasattr(model, "peft_config"):
        assert all(n is None for n in names), "adapter rows on a model without adapters"
        return {}
    return {"adapter_names": [n or BASE_ADAPTER for n in names]}


def hits_stop(tok: Any, row: list[int], stops: tuple[str, ...]) -> bool:
    """Whether the decoded row contains one of the stop strings."""
    if not stops:
        return False
    text = tok.decode(row[-64:], skip_special_tokens=True)  # a stop string spans far fewer than 64 tokens
    return any(s and s in text for s in stops)


def generate_all(
    engine: Engine,
    reqs: list[EngineRequest],
    on_done: Callable[[int, Generated], None] | None = None,
    stop: threading.Event | None = None,
) -> list[Generated]:
    """Run ``reqs`` through ``engine`` to completion, admitting each as soon as a slot frees up; ``on_done(i,
    generated)`` is called as request ``i`` finishes (e.g. to save it or advance a progress bar). Once ``stop``
    is set nothing more is admitted (give the requests ``cancel=stop`` to end the running ones too, with what
    they have so far); the result then holds only the requests that ended."""
    results: dict[int, Generated] = {}

    def finished(i: int, gen: Generated) -> None:
        results[i] = gen
        if on_done is not None:
            on_done(i, gen)

    for i, r in enumerate(reqs):
        r.on_done = lambda g, i=i: finished(i, g)

    def admitting() -> bool:
        return bool(waiting) and not (stop is not None and stop.is_set())

    waiting = list(reqs)
    while admitting() or engine.running:
        batch: list[EngineRequest] = []
        free = engine.max_rows - engine.rows
        while admitting() and (waiting[0].rows <= free or not (engine.running or batch)):
            free -= waiting[0].rows
            batch.append(waiting.pop(0))
        if batch:
            engine.add_many(batch)
        engine.step()
    return [results[i] for i in range(len(reqs)) if i in results]
