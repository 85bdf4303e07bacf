"""Generate answers for one candidate: local batched (left padding, greedy) or an OpenAI-compatible endpoint.

Results are cached per (candidate, example) in an append-only JSONL file, one line per answered example and
flushed as it is written, so an interrupted evaluation resumes where it stopped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
from tqdm.auto import tqdm

from tunesmith.core.endpoints import call_with_retries, endpoint_error, make_client
from tunesmith.core.errors import ConfigError
from tunesmith.core.jsonl import JsonlCache
from tunesmith.core.schema import ChatExample
from tunesmith.models.template import IGNORE_INDEX, prompt_ids, tokenize_example

Messages = list[dict[str, Any]]
PREFIX_CACHE_MB = 256
Batch = Callable[[list[Messages]], list[dict[str, Any]]]


class GenerationCache(JsonlCache):
    """Generated answers on disk, keyed by the prompt's index: ``{"index", "output", "prompt_tokens",
    "completion_tokens", "latency_s"}`` per line (a :class:`~tunesmith.core.jsonl.JsonlCache`)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, key="index", what="generation cache entry")


def generate_cached(
    batch_fn: Batch, prompts: list[Messages], cache: GenerationCache, batch_size: int, label: str = "generate"
) -> list[dict[str, Any]]:
    """Answer every prompt not yet in ``cache`` in batches; return all rows in prompt order."""
    todo = [i for i in range(len(prompts)) if i not in cache.rows]
    with tqdm(total=len(prompts), initial=len(prompts) - len(todo), desc=label, unit="ex", leave=False) as bar:
        try:
            for start in range(0, len(todo), batch_size):
                idx = todo[start : start + batch_size]
                rows = batch_fn([prompts[i] for i in idx])
                cache.append([{"index": i, **row} for i, row in zip(idx, rows, strict=True)])
                bar.update(len(idx))
        finally:
            cache.close()  # every row is on disk; the handle reopens on a later append
    return [cache.rows[i] for i in range(len(prompts))]


class LocalGenerator:
    """Batched generation with a local HF model on the continuous-batching engine (stops at EOS / end of turn;
    a finished answer leaves the batch, so short answers do not wait for long ones)."""

    def __init__(
        self, model: Any, tok: Any, max_new_tokens: int, temperature: float = 0.0, grammar: str | None = None
    ) -> None:
        """``grammar``: an llguidance grammar (models/structured.py) every answer is constrained to."""
        from tunesmith.models.prefill import PrefixCache

        self.model, self.tok = model, tok
        self.max_new_tokens, self.temperature, self.grammar = max_new_tokens, temperature, grammar
        # one prefix cache across this candidate's batches: a shared system prompt or few-shot block is
        # prefilled once, not once per batch (the engine's greedy answers are the same either way)
        self.prefixes = PrefixCache(PREFIX_CACHE_MB * 2**20)

    def __call__(self, batch: list[Messages]) -> list[dict[str, Any]]:
        """Generate one answer per conversation in ``batch``."""
        from tunesmith.models.engine import Engine, EngineRequest, generate_all
        from tunesmith.models.generate import split_at_end

        ids = [prompt_ids(self.tok, msgs) for msgs in batch]
        engine = Engine(lambda: self.model, self.tok, max_rows=len(batch), prefixes=self.prefixes)
        reqs = [EngineRequest(x, self.max_new_tokens, self.temperature, grammar=self.grammar) for x in ids]
        new = generate_all(engine, reqs)
        rows = []
        for gen, req, x in zip(new, reqs, ids, strict=True):
            tokens, _ = split_at_end(gen.rows[0], engine.end_ids)
            rows.append(
                {
                    "output": self.tok.decode(tokens, skip_special_tokens=True).strip(),
                    "prompt_tokens": len(x),
                    "completion_tokens": len(tokens),
                    "latency_s": req.finished_s - req.admitted_s,  # this example's own time in the batch
                }
            )
        return rows


def reference_nll(model: Any, tok: Any, prompt: Messages, reference: str) -> tuple[float, int]:
    """Teacher-forced mean NLL (nats/token) of the reference answer's tokens only, and their count."""
    import torch
    import torch.nn.functional as F

    example = ChatExample.model_validate({"messages": [*prompt, {"role": "assistant", "content": reference}]})
    tokenized = tokenize_example(tok, example)
    device = next(model.parameters()).device
    ids = torch.tensor([tokenized.input_ids], device=device)
    labels = torch.tensor([tokenized.labels], device=device)
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[:, :-1].float()  # (1, seq_len - 1, vocab)
    target = labels[:, 1:]
    loss = F.cross_entropy(
        logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
    )
    n = int((target != IGNORE_INDEX).sum())
    return (float(loss) / n if n else float("nan")), n


class EndpointGenerator:
    """One chat completion per prompt through :func:`tunesmith.core.endpoints.make_client` (latency per call)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str,
        max_new_tokens: int,
        temperature: float = 0.0,
        response_format: dict[str, Any] | None = None,
        concurrency: int = 8,
    ) -> None:
        """``concurrency``: requests in flight at once (a batch is answered by that many threads)."""
        key = os.environ.get(api_key_env)
        if not key:
            raise ConfigError(
                f"candidate endpoint {model!r}: environment variable {api_key_env} is not set",
                f"export {api_key_env}=... or set `api_key_env:` to the variable holding the key",
            )
        self.client = make_client(base_url, key)
        self.model, self.base_url = model, base_url
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.extra = {"response_format": response_format} if response_format else {}
        self.concurrency = concurrency

    def __call__(self, batch: list[Messages]) -> list[dict[str, Any]]:
        """Answer each conversation in ``batch``, up to ``concurrency`` requests at once, in order."""
        from concurrent.futures import ThreadPoolExecutor

        if len(batch) <= 1 or self.concurrency <= 1:
            return [self._one(msgs) for msgs in batch]
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(batch))) as pool:
            return list(pool.map(self._one, batch))

    def _one(self, msgs: Messages) -> dict[str, Any]:
        def request() -> Any:
            return self.client.chat.completions.create(
                model=self.model,
                messages=msgs,
                max_tokens=self.max_new_tokens,
                temperature=self.temperature,
                **self.extra,
            )

        start = time.perf_counter()
        try:
            resp = call_with_retries(request)
        except openai.OpenAIError as exc:
            raise endpoint_error(
                exc,
                f"endpoint {self.base_url} model {self.model!r}",
                "check base_url, model and the API key; cached answers are kept for a rerun",
            ) from exc
        usage = resp.usage
        return {
            "output": (resp.choices[0].message.content or "").strip(),
            "prompt_tokens": usage.prompt_tokens if usage else 0,
            "completion_tokens": usage.completion_tokens if usage else 0,
            "latency_s": time.perf_counter() - start,
        }
