"""Render a conversation with the tokenizer's own chat template and mark which tokens are trained.

The loss mask does not rely on ``{% generation %}`` markers (few templates have them). For each trained
assistant message the template is rendered twice: the history with the generation prompt (what the model sees
at inference), and the history plus the message. The text between the two is the assistant turn including its
end-of-turn token. The conversation is tokenized segment by segment, so the prompt part is tokenized exactly as
it is at inference time and no token straddles the prompt/answer boundary.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tunesmith.core.errors import DatasetError
from tunesmith.core.schema import ChatExample

IGNORE_INDEX = -100


@dataclass
class TokenizedExample:
    """Token ids and labels (``IGNORE_INDEX`` where no loss is taken) of one conversation."""

    input_ids: list[int]
    labels: list[int]
    segments: list[tuple[str, bool]] = field(default_factory=list)  # (text, trained) in order, for previews

    @property
    def n_tokens(self) -> int:
        """All tokens."""
        return len(self.input_ids)

    @property
    def n_trained(self) -> int:
        """Tokens with a loss."""
        return sum(label != IGNORE_INDEX for label in self.labels)


def render_chat(
    tok: Any,
    messages: list[dict[str, Any]],
    add_generation_prompt: bool = False,
    tools: list[dict[str, Any]] | None = None,
) -> str:
    """The chat template's text for ``messages`` (no tokenization)."""
    kwargs: dict[str, Any] = {"tokenize": False, "add_generation_prompt": add_generation_prompt}
    if tools:
        kwargs["tools"] = tools
    return tok.apply_chat_template(messages, **kwargs)


def trained_char_spans(tok: Any, example: ChatExample) -> tuple[str, list[tuple[int, int]]]:
    """The full rendered text and the ``[start, end)`` character spans of trained assistant turns."""
    msgs = example.for_template()
    full = render_chat(tok, msgs, tools=example.tools)
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(example.messages):
        if not message.trained:
            continue
        prompt = render_chat(tok, msgs[:i], add_generation_prompt=True, tools=example.tools)
        upto = render_chat(tok, msgs[: i + 1], tools=example.tools)
        if not (upto.startswith(prompt) and full.startswith(upto)):
            raise DatasetError(
                f"message {i}: the chat template does not render this conversation incrementally",
                "use a model whose chat template renders a prefix of a conversation as a prefix of its text "
                "(ChatML, Llama 3, Mistral, Qwen and SmolLM templates do)",
            )
        body = upto[len(prompt) :]
        # Train on the turn and its end-of-turn marker, not on the whitespace the template puts after it.
        spans.append((len(prompt), len(prompt) + len(body.rstrip()) if body.strip() else len(upto)))
    return full, spans


def tokenize_example(tok: Any, example: ChatExample, max_length: int | None = None) -> TokenizedExample:
    """Token ids and assistant-only labels for ``example`` (EOS/end-of-turn included in the labels).

    Args:
        tok: a Hugging Face tokenizer with a chat template.
        example: the conversation.
        max_length: truncate to this many tokens (labels truncated alike).
    """
    full, spans = trained_char_spans(tok, example)
    segments: list[tuple[str, bool]] = []
    cursor = 0
    for start, end in spans:
        if start > cursor:
            segments.append((full[cursor:start], False))
        segments.append((full[start:end], True))
        cursor = end
    if cursor < len(full):
        segments.append((full[cursor:], False))
    ids: list[int] = []
    labels: list[int] = []
    for text, trained in segments:
        piece = tok(text, add_special_tokens=False)["input_ids"]
        if trained and tok.eos_token and tok.eos_token not in text and _ends_turn_without_eos(tok, text):
            piece = [*piece, tok.eos_token_id]
        ids.extend(piece)
        labels.extend(piece if trained else [IGNORE_INDEX] * len(piece))
    if max_length is not None and len(ids) > max_length:
        ids, labels = ids[:max_length], labels[:max_length]
    return TokenizedExample(ids, labels, segments)


def _ends_turn_without_eos(tok: Any, text: str) -> bool:
    """Whether a trained turn ends with no end-of-turn special token, so EOS must be appended to stop."""
    specials = [t for t in getattr(tok, "all_special_tokens", []) if t]
    return not any(text.rstrip().endswith(s) for s in specials)


def prompt_ids(tok: Any, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None) -> list[int]:
    """Token ids of ``messages`` plus the generation prompt, tokenized as :func:`tokenize_example` does."""
    text = render_chat(tok, messages, add_generation_prompt=True, tools=tools)
    return tok(text, add_special_tokens=False)["input_ids"]
