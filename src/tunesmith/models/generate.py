"""Batched generation shared by evaluation, the server and export: left padding, sampling, end-of-turn tokens.

One implementation, so that what `tunesmith eval` measures is what `tunesmith serve` returns: the same stop
tokens, the same decoding settings, the same token counts (the end-of-turn token is not counted).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any


def end_token_ids(model: Any, tok: Any) -> set[int]:
    """Token ids that end a turn: the generation config's EOS ids, the tokenizer's EOS and ``<|im_end|>``."""
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    if tok.eos_token_id is not None:
        ids.add(tok.eos_token_id)
    im_end = tok.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tok.unk_token_id:
        ids.add(im_end)
    return ids


def sampling_kwargs(temperature: float = 0.0, top_p: float = 1.0) -> dict[str, Any]:
    """``generate`` keyword arguments for a temperature (0 = greedy) and nucleus ``top_p``."""
    if temperature > 0:
        return {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}
    return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}


@dataclass
class StepLogprob:
    """A generated token's log probability and the most likely tokens at its position."""

    token_id: int
    logprob: float
    top: list[tuple[int, float]]  # (token id, logprob), most likely first


class LogprobRecorder:
    """A logits processor that keeps, for each decode step, the log-softmax of the model's scores.

    It sits before temperature and top-p (transformers applies custom processors first), so the numbers are
    the model's own distribution. Only the previous step's log-probabilities are kept: the chosen token is
    looked up when the next step starts (or when a streamer receives it, or at the end).
    """

    def __init__(self, top_k: int) -> None:
        self.top_k = top_k
        self.steps: list[list[StepLogprob]] = []  # per row, in order
        self._prev: Any = None  # (rows, vocab) log-probabilities of the step not yet resolved

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        self.resolve(input_ids[:, -1])
        import torch

        self._prev = torch.log_softmax(scores.float(), dim=-1)
        return scores

    def hold(self, logprobs: Any) -> None:
        """Make ``logprobs`` (rows, vocab) the pending step, as a call before a token is chosen would."""
        self._prev = logprobs

    def resolve(self, chosen: Any) -> list[StepLogprob] | None:
        """Record the tokens chosen at the pending step (one per row); returns them, or None if none pending."""
        if self._prev is None:
            return None
        prev, self._prev = self._prev, None
        chosen = chosen.reshape(-1).to(prev.device)
        picked = prev.gather(1, chosen[:, None])[:, 0].tolist()
        top_vals, top_ids = prev.topk(self.top_k, dim=-1) if self.top_k else (None, None)
        out = []
        for r, (token, logprob) in enumerate(zip(chosen.tolist(), picked, strict=True)):
            top = list(zip(top_ids[r].tolist(), top_vals[r].tolist(), strict=True)) if self.top_k else []
            out.append(StepLogprob(token, logprob, top))
        if not self.steps:
            self.steps = [[] for _ in out]
        for row, step in zip(self.steps, out, strict=True):
            row.append(step)
        return out


class OpenAIPenalties:
    """A logits processor for OpenAI's ``presence_penalty``, ``frequency_penalty`` and ``logit_bias``.

    Each generated token's logit is lowered by ``frequency`` times its count so far plus ``presence`` if it
    occurred at all (counted over the generated part only, as OpenAI documents), and ``bias`` is added.
    """

    def __init__(self, prompt_width: int, presence: float, frequency: float, bias: dict[int, float]) -> None:
        self.width, self.presence, self.frequency, self.bias = prompt_width, presence, frequency, bias

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        if self.bias:
            ids = torch.tensor(list(self.bias), device=scores.device)
            scores[:, ids] += torch.tensor(list(self.bias.values()), dtype=scores.dtype, device=scores.device)
        generated = input_ids[:, self.width :]
        if generated.shape[1] and (self.presence or self.frequency):
            counts = torch.zeros_like(scores).scatter_add_(1, generated, torch.ones_like(generated, dtype=scores.dtype))
            scores = scores - self.frequency * counts - self.presence * (counts > 0).to(scores.dtype)
        return scores


class CancelledRows:
    """A stopping criterion: row ``i`` is finished once ``events[i // per_event]`` is set (client gone)."""

    def __init__(self, events: list[threading.Event], per_event: int = 1) -> None:
        self.events, self.per_event = events, per_event

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        flags = [self.events[i // self.per_event].is_set() for i in range(input_ids.shape[0])]
        return torch.tensor(flags, dtype=torch.bool, device=input_ids.device)


@dataclass
class Generated:
    """New tokens of each row and, when asked for, their log probabilities."""

    rows: list[list[int]]
    logprobs: list[list[StepLogprob]] | None = None


def generate_ids(
    model: Any,
    tok: Any,
    prompts: list[list[int]],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    **extra: Any,
) -> list[list[int]]:
    """New token ids for each prompt, generated in one left-padded batch (stops at end-of-turn tokens).

    Args:
        model: a causal LM (optionally with a PEFT adapter active).
        tok: its tokenizer (``pad_token_id`` is used for padding).
        prompts: token ids of each prompt (e.g. :func:`tunesmith.models.template.prompt_ids`).
        max_new_tokens: generation budget.
        temperature: 0 = greedy.
        top_p: nucleus sampling mass (with temperature > 0).
        **extra: passed to ``model.generate`` (``num_return_sequences``, ``streamer``, ``stop_strings``...).

    Returns:
        One row per prompt (``num_return_sequences`` rows per prompt, in order), padded after the end token.
    """
    return generate_rows(model, tok, prompts, max_new_tokens, temperature, top_p, **extra).rows


def generate_rows(
    model: Any,
    tok: Any,
    prompts: list[list[int]],
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    recorder: LogprobRecorder | None = None,
    cancelled: CancelledRows | None = None,
    penalties: tuple[float, float, dict[int, float]] | None = None,
    grammar: str | None = None,
    **extra: Any,
) -> Generated:
    """:func:`generate_ids` with optional log probabilities (``recorder``), per-row cancellation and OpenAI's
    ``(presence, frequency, logit_bias)`` penalties (applied after the recorder: logprobs are the model's) and
    a structured-output ``grammar`` (llguidance, see :mod:`tunesmith.models.structured`)."""
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    width = max(len(p) for p in prompts)
    pad = tok.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])  # (batch, width), left padded
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    device = next(model.parameters()).device
    processors = [recorder] if recorder is not None else []
    if penalties is not None:
        processors.append(OpenAIPenalties(width, *penalties))
    if grammar is not None:
        from tunesmith.models.structured import GrammarMask

        processors.append(GrammarMask(tok, grammar))
    if processors:
        extra["logits_processor"] = LogitsProcessorList(processors)
    if cancelled is not None:
        extra["stopping_criteria"] = StoppingCriteriaList([cancelled])
    with torch.inference_mode():
        out = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=max_new_tokens,
            pad_token_id=pad,
            eos_token_id=sorted(end_token_ids(model, tok)),
            **sampling_kwargs(temperature, top_p),
            **extra,
        )
    if recorder is not None:
        recorder.resolve(out[:, -1])  # the last step's tokens
    rows = out[:, width:].tolist()  # (batch * num_return_sequences, new_tokens)
    return Generated(rows, recorder.steps if recorder is not None else None)


def split_at_end(row: list[int], end_ids: set[int]) -> tuple[list[int], bool]:
    """The tokens before the first end-of-turn token, and whether one was generated."""
    ended = next((j for j, t in enumerate(row) if t in end_ids), None)
    return (row, False) if ended is None else (row[:ended], True)
