"""Batched generation shared by evaluation, the server and export: left padding, sampling, end-of-turn tokens.

One implementation, so that what `tunesmith eval` measures is what `tunesmith serve` returns: the same stop
tokens, the same decoding settings, the same token counts (the end-of-turn token is not counted).
"""

from __future__ import annotations

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
    import torch

    width = max(len(p) for p in prompts)
    pad = tok.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])  # (batch, width), left padded
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    device = next(model.parameters()).device
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
    return out[:, width:].tolist()  # (batch * num_return_sequences, new_tokens)


def split_at_end(row: list[int], end_ids: set[int]) -> tuple[list[int], bool]:
    """The tokens before the first end-of-turn token, and whether one was generated."""
    ended = next((j for j, t in enumerate(row) if t in end_ids), None)
    return (row, False) if ended is None else (row[:ended], True)
