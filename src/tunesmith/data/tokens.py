"""Token counts with the model's real tokenizer and chat template, batched for speed.

Each example is rendered once with the chat template (plus the per-turn renders that locate trained assistant
spans, as :func:`tunesmith.models.template.trained_char_spans` does), and the rendered texts are tokenized in
batches by the fast tokenizer with character offsets. A token is counted as trained when it starts inside a
trained span. This matches :func:`tunesmith.models.template.tokenize_example` (which tokenizes segment by
segment) up to a token at a segment boundary; the zero-trainable-tokens check calls ``tokenize_example``
itself on the examples where it can happen.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass
from typing import Any

from tunesmith.data.schema import ChatExample, PreferenceExample
from tunesmith.errors import DatasetError, TunesmithError
from tunesmith.models.template import tokenize_example, trained_char_spans

DEFAULT_CONTEXT = 2048


@dataclass
class TokenCount:
    """Tokens of one rendered example, and how many of them the loss covers."""

    n_tokens: int
    n_trained: int


def as_chat(example: ChatExample | PreferenceExample) -> ChatExample:
    """A chat example to measure: preference records count as prompt + preferred answer."""
    if isinstance(example, PreferenceExample):
        return ChatExample(
            messages=[*example.input.messages, *example.preferred_output], tools=example.input.tools
        )
    return example


class TokenCounter:
    """The tokenizer, context length and special tokens of one model.

    Args:
        model: a model name or directory (see :func:`tunesmith.models.registry.resolve_model`).
        tokenizer: an already loaded tokenizer (skips loading; used by tests).
        context: the context length to check against (default: the model's ``max_position_embeddings``).
    """

    def __init__(self, model: str, tokenizer: Any = None, context: int | None = None) -> None:
        from tunesmith.models.load import load_tokenizer, prepare_tokenizer

        self.model = model
        self.tok = prepare_tokenizer(tokenizer) if tokenizer is not None else load_tokenizer(model)
        self.context = context or model_context_length(model, self.tok)
        specials = sorted({t for t in self.tok.all_special_tokens if t} | _added_special(self.tok), key=len)
        self._special_re = (
            re.compile("|".join(re.escape(t) for t in reversed(specials))) if specials else None
        )

    def special_tokens_in(self, text: str | None) -> list[str]:
        """The model's special tokens that appear inside ``text``."""
        if not text or self._special_re is None:
            return []
        return sorted(set(self._special_re.findall(text)))

    def count(self, examples: list[ChatExample | PreferenceExample]) -> list[TokenCount | None]:
        """Token counts of a batch of examples (None where the template cannot render one)."""
        rendered: list[tuple[str, list[tuple[int, int]]] | None] = []
        for ex in examples:
            try:
                rendered.append(trained_char_spans(self.tok, as_chat(ex)))
            except (DatasetError, ValueError, TypeError, KeyError, IndexError):  # template refused it
                rendered.append(None)
        texts = [r[0] for r in rendered if r is not None]
        enc = self.tok(texts, add_special_tokens=False, return_offsets_mapping=True) if texts else None
        out: list[TokenCount | None] = []
        j = 0
        for r in rendered:
            if r is None:
                out.append(None)
                continue
            offsets = enc["offset_mapping"][j]
            j += 1
            out.append(TokenCount(len(offsets), _trained_tokens(offsets, r[1])))
        return out

    def trained_after_truncation(self, example: ChatExample | PreferenceExample) -> int:
        """Exact trained-token count after truncating to the context (``tokenize_example``)."""
        return tokenize_example(self.tok, as_chat(example), max_length=self.context).n_trained


def _trained_tokens(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> int:
    starts = [s for s, _ in spans]
    n = 0
    for start, _end in offsets:
        k = bisect.bisect_right(starts, start) - 1
        if k >= 0 and start < spans[k][1]:
            n += 1
    return n


def _added_special(tok: Any) -> set[str]:
    decoder = getattr(tok, "added_tokens_decoder", {}) or {}
    return {t.content for t in decoder.values() if getattr(t, "special", False)}


def model_context_length(model: str, tok: Any = None) -> int:
    """The model's context window: ``max_position_embeddings`` from its config.json, else the tokenizer's."""
    from tunesmith.models.registry import resolve_model

    try:
        cfg = json.loads((resolve_model(model) / "config.json").read_text(encoding="utf-8"))
        if isinstance(cfg.get("max_position_embeddings"), int):
            return cfg["max_position_embeddings"]
    except (OSError, ValueError, TunesmithError):
        pass
    limit = getattr(tok, "model_max_length", None)
    return limit if isinstance(limit, int) and limit < 1_000_000 else DEFAULT_CONTEXT
