"""Generation on shared base models: one loaded copy per base, fine-tuned adapters attached with PEFT.

Adapters are loaded onto the one base model (``load_adapter`` / ``set_adapter``), kept in a bounded LRU and
unloaded (``delete_adapter``) when evicted; no adapter gets its own copy of the base weights. Requests run on
one inference thread (see :mod:`tunesmith.serve.batcher`), so switching adapters never races a generation.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.core.errors import ModelError
from tunesmith.models.generate import StepLogprob


@dataclass(frozen=True)
class Target:
    """What a model name resolves to: a base model and optionally an adapter directory on top."""

    name: str  # the name the client asked for (echoed in responses)
    base: str
    adapter: str | None = None
    recipe: str | None = None  # a deployed recipe's file (serve/recipes.py): applied to the request's prompt

    @property
    def key(self) -> str:
        """Identity for batching: requests with the same key run in one forward pass."""
        return f"{self.base}|{self.adapter or ''}"


@dataclass(frozen=True)
class Sampling:
    """Sampling settings of one request."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    n: int = 1
    seed: int | None = None
    logprobs: int | None = None  # None: no log probabilities; k: the chosen token's and the k most likely
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: tuple[tuple[int, float], ...] = ()  # (token id, bias) pairs
    grammar: str | None = None  # llguidance grammar of a JSON response_format; None: free text

    @property
    def penalties(self) -> tuple[float, float, dict[int, float]] | None:
        """``(presence, frequency, logit_bias)`` when any is set, else None."""
        if not (self.presence_penalty or self.frequency_penalty or self.logit_bias):
            return None
        return self.presence_penalty, self.frequency_penalty, dict(self.logit_bias)


@dataclass
class Completion:
    """One generated choice."""

    text: str
    n_tokens: int
    finish_reason: str  # stop | length
    logprobs: list[StepLogprob] | None = None  # one per generated token kept in ``text``


@dataclass
class ModelHost:
    """Loaded base models and an LRU of adapters attached to them."""

    max_adapters: int = 4
    device: str | None = None
    dtype: str = "float32"  # of the base models' weights (ServeSettings.inference_dtype, resolved)
    bases: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    adapters: OrderedDict[tuple[str, str], str] = field(default_factory=OrderedDict)  # (base, path) -> name
    tokenizers: dict[str, Any] = field(default_factory=dict)
    contexts: dict[str, int] = field(default_factory=dict)
    _tok_lock: threading.Lock = field(default_factory=threading.Lock)

    def tokenizer(self, base: str) -> Any:
        """The tokenizer of ``base``; safe from any thread (prompts are tokenized off the model thread,
        so tokenizing never queues behind a running batch)."""
        with self._tok_lock:
            if base not in self.tokenizers:
                from tunesmith.models.load import load_tokenizer

                self.tokenizers[base] = load_tokenizer(base)
            return self.tokenizers[base]

    def _base(self, base: str) -> tuple[Any, Any]:
        if base not in self.bases:
            from tunesmith.models.load import load_model_and_tokenizer

            model, tok = load_model_and_tokenizer(base, self.dtype, device=self.device)
            model.eval()
            self.bases[base] = (model, tok)
        return self.bases[base]

    def activate(self, target: Target) -> tuple[Any, Any, contextlib.AbstractContextManager]:
        """The model (with ``target``'s adapter active), its tokenizer, and a context to generate in."""
        model, tok = self._base(target.base)
        if target.adapter is None:
            ctx = (
                model.disable_adapter()
                if hasattr(model, "disable_adapter") and self._has_adapters(target.base)
                else contextlib.nullcontext()
            )
            return model, tok, ctx
        model = self.attach(target.base, target.adapter)
        return model, tok, contextlib.nullcontext()

    def _has_adapters(self, base: str) -> bool:
        return any(b == base for b, _ in self.adapters)

    def attach(self, base: str, path: str, keep: set[str] | frozenset[str] = frozenset()) -> Any:
        """Load (or refresh in the LRU) the adapter at ``path`` on ``base`` and make it active; evict the
        least recently used others, never one named in ``keep`` (rows of a running batch use them)."""
        model, tok = self.bases[base]
        key = (base, path)
        if key in self.adapters:
            self.adapters.move_to_end(key)
        else:
            if not (Path(path) / "adapter_config.json").exists():
                raise ModelError(f"adapter directory {path} is missing", "the model or checkpoint was deleted")
            name = "a" + hashlib.sha1(path.encode()).hexdigest()[:12]  # module-dict keys cannot contain dots
            try:
                model = self._load_adapter(base, path, name)
            except (OSError, ValueError, KeyError) as exc:  # deleted while loading (DELETE /v1/models)
                raise ModelError(
                    f"adapter directory {path} could not be loaded: {exc.__class__.__name__}",
                    "the model or checkpoint was deleted; list models with GET /v1/models",
                    param="model",
                ) from exc
            self.adapters[key] = name
        model.set_adapter(self.adapters[key])
        self._evict(base, keep=key, in_use=keep)
        return model

    def _load_adapter(self, base: str, path: str, name: str) -> Any:
        model, tok = self.bases[base]
        if hasattr(model, "load_adapter") and hasattr(model, "peft_config"):
            try:
                model.load_adapter(path, adapter_name=name)
            except BaseException:
                with contextlib.suppress(ValueError, KeyError):  # a half-loaded adapter must not stay behind
                    model.delete_adapter(name)
                raise
            return model
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, path, adapter_name=name)
        model.eval()
        self.bases[base] = (model, tok)
        return model

    def context_length(self, base: str) -> int:
        """The longest sequence ``base`` accepts (prompt plus completion), from its config."""
        with self._tok_lock:
            if base not in self.contexts:
                from transformers import AutoConfig

                from tunesmith.models.registry import resolve_model

                config = AutoConfig.from_pretrained(resolve_model(base))
                self.contexts[base] = int(getattr(config, "max_position_embeddings", None) or 2048)
            return self.contexts[base]

    def _evict(self, base: str, keep: tuple[str, str], in_use: set[str] | frozenset[str] = frozenset()) -> None:
        while len(self.adapters) > self.max_adapters:
            spare = [k for k in self.adapters if k != keep and self.adapters[k] not in in_use]
            if not spare:
                return  # every other adapter is in use: stay over the limit until rows finish
            self._drop(spare[0])

    def unload(self, path: str) -> None:
        """Drop an adapter (its model was deleted)."""
        for key in [k for k in self.adapters if k[1] == path]:
            self._drop(key)

    def _drop(self, key: tuple[str, str]) -> None:
        """Remove one adapter from its base model."""
        model, tok = self.bases[key[0]]
        name = self.adapters.pop(key)
        if not self._has_adapters(key[0]):
            # The base's last adapter: unwrap to the plain model, or PEFT keeps a deleted adapter active.
            self.bases[key[0]] = (model.unload(), tok)
            return
        if getattr(model, "active_adapter", None) == name:
            model.set_adapter(next(v for k, v in self.adapters.items() if k[0] == key[0]))
        with contextlib.suppress(ValueError, KeyError):
            model.delete_adapter(name)


def generate(
    host: ModelHost,
    target: Target,
    prompts: list[list[int]],
    params: list[Sampling],
    streamer: Any = None,
    cancel: list[threading.Event] | None = None,
) -> list[list[Completion]]:
    """Generate for several prompts of one target in one left-padded batch.

    The batch shares ``params[0]``'s sampling settings (the batcher groups by them) and runs to
    the largest ``max_tokens``; each request is then cut to its own budget and stop sequences. A request whose
    ``cancel`` event is set (its client went away) stops at the next decode step; the batch ends when every
    row has finished or been cancelled.

    Returns:
        For each prompt, ``n`` completions.
    """
    import torch

    from tunesmith.models.generate import CancelledRows, LogprobRecorder, end_token_ids, generate_rows

    model, tok, ctx = host.activate(target)
    first = params[0]
    if first.seed is not None:
        torch.manual_seed(first.seed % 2**64)  # OpenAI seeds are signed 64-bit; torch takes [0, 2**64)
    extra: dict[str, Any] = {"streamer": streamer} if streamer is not None else {}
    if first.stop:
        extra.update(stop_strings=list(first.stop), tokenizer=tok)
    # Greedy decoding gives n identical choices: generate one and repeat it (transformers refuses n > 1 there).
    n_gen = first.n if first.temperature > 0 else 1
    recorder = LogprobRecorder(first.logprobs) if first.logprobs is not None else None
    stop_ids = end_token_ids(model, tok)
    if streamer is not None and hasattr(streamer, "end_ids"):  # tunesmith's streamer follows each row's end
        streamer.end_ids, streamer.recorder = stop_ids, recorder
    with ctx:
        out = generate_rows(
            model,
            tok,
            prompts,
            max(p.max_tokens for p in params),
            first.temperature,
            first.top_p,
            recorder=recorder,
            cancelled=CancelledRows(cancel, n_gen) if cancel else None,
            penalties=first.penalties,
            grammar=first.grammar,
            num_return_sequences=n_gen,
            **extra,
        )
    results = []
    for i, p in enumerate(params):
        rows = list(range(i * n_gen, (i + 1) * n_gen)) * (first.n // n_gen)
        results.append(
            [finish_completion(tok, out.rows[r], stop_ids, p, out.logprobs[r] if out.logprobs else None) for r in rows]
        )
    return results


def finish_completion(
    tok: Any, row: list[int], stop_ids: set[int], p: Sampling, logprobs: list[StepLogprob] | None = None
) -> Completion:
    """Cut one generated row at its end token, its token budget and its first stop sequence."""
    from tunesmith.models.generate import split_at_end

    tokens, ended = split_at_end(row, stop_ids)
    reason = "stop" if ended and len(tokens) < p.max_tokens else "length"
    if len(tokens) >= p.max_tokens:
        tokens, reason = tokens[: p.max_tokens], "length"
    text = tok.decode(tokens, skip_special_tokens=True)
    cut = cut_at_stop(text, p.stop)
    kept = len(tokens)
    if cut is not None:
        text, reason = cut, "stop"
        kept = tokens_covering(tok, tokens, len(cut))
    return Completion(
        text=text,
        n_tokens=len(tokens),
        finish_reason=reason,
        logprobs=logprobs[:kept] if logprobs is not None else None,
    )


def tokens_covering(tok: Any, tokens: list[int], n_chars: int) -> int:
    """How many of ``tokens`` it takes for their text to reach ``n_chars`` characters."""
    for k in range(len(tokens) + 1):
        if len(tok.decode(tokens[:k], skip_special_tokens=True)) >= n_chars:
            return k
    return len(tokens)


def cut_at_stop(text: str, stops: tuple[str, ...]) -> str | None:
    """``text`` before its earliest stop sequence, or None when it has none."""
    hits = [text.index(s) for s in stops if s and s in text]
    return text[: min(hits)] if hits else None
