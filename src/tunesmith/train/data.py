"""Read and tokenize training data once: assistant-only labels, truncation report, zero-trainable refusal."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.core.errors import TrainError
from tunesmith.core.schema import ChatExample
from tunesmith.data.load import load_examples
from tunesmith.models.template import TokenizedExample, tokenize_example


@dataclass
class TokenizedSet:
    """A tokenized dataset file: examples plus the counts run.json reports."""

    path: Path
    examples: list[TokenizedExample]
    truncated: int

    @property
    def total_tokens(self) -> int:
        """All tokens (prompt and answer) of every example."""
        return sum(e.n_tokens for e in self.examples)

    @property
    def trained_tokens(self) -> int:
        """Tokens with a loss (assistant turns) of every example."""
        return sum(e.n_trained for e in self.examples)


def tokenize_file(tok: Any, path: Path, max_seq_length: int) -> TokenizedSet:
    """Load ``path`` (chat JSONL) and tokenize every example with assistant-only labels.

    Raises:
        DatasetError: unreadable file or invalid records (from :func:`load_examples`).
        TrainError: some examples have no trainable token (all are named by line).
    """
    examples: list[ChatExample] = load_examples(path, kind="chat")  # type: ignore[assignment]
    tokenized, empty, truncated = [], [], 0
    for lineno, ex in enumerate(examples, start=1):
        te = tokenize_example(tok, ex)
        if te.n_tokens > max_seq_length:
            truncated += 1
            te = TokenizedExample(te.input_ids[:max_seq_length], te.labels[:max_seq_length], te.segments)
        if te.n_trained == 0:
            empty.append(lineno)
        tokenized.append(te)
    if empty:
        raise zero_trainable_error(path, empty, len(examples), max_seq_length)
    return TokenizedSet(Path(path), tokenized, truncated)


def zero_trainable_error(path: Path, lines: list[int], total: int, max_seq_length: int) -> TrainError:
    """The error for examples whose loss mask is empty (nothing to learn from them)."""
    shown = ", ".join(str(n) for n in lines[:20]) + (f" ... (+{len(lines) - 20} more)" if len(lines) > 20 else "")
    return TrainError(
        f"{path}: {len(lines)} of {total} example(s) have zero trainable tokens (example number(s) {shown}): "
        "no assistant message with weight != 0 survives tokenization",
        "give each example an assistant reply with weight 1 (or drop those lines); "
        f"if the replies are cut off, raise max_seq_length (now {max_seq_length})",
        param="train_file",
    )
