"""Test items: a chat example split into its prompt and reference answer, and few-shot selection over them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunesmith.core.errors import DatasetError
from tunesmith.core.schema import ChatExample
from tunesmith.data.load import load_examples


@dataclass
class TestItem:
    """One test example split into the prompt conversation and the reference answer."""

    index: int
    messages: list[dict[str, Any]]
    reference: str
    question: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def split_example(example: ChatExample, index: int, where: str) -> TestItem:
    """Split off the final assistant turn as the reference; the rest is the prompt."""
    msgs = example.for_template()
    if not msgs or msgs[-1]["role"] != "assistant" or not msgs[-1].get("content"):
        raise DatasetError(
            f"{where}: example {index + 1} does not end with an assistant answer",
            "each test example needs the reference answer as its last (assistant) message",
        )
    prompt = msgs[:-1]
    question = next((m.get("content") or "" for m in reversed(prompt) if m["role"] == "user"), "")
    return TestItem(index, prompt, msgs[-1]["content"], question, dict(example.metadata or {}))


def load_items(path: Path, limit: int | None = None) -> list[TestItem]:
    """Test (or training) items from a chat JSONL file; every bad example is reported at once."""
    examples = load_examples(path)
    if limit is not None:
        examples = examples[:limit]
    items, problems = [], []
    for i, ex in enumerate(examples):
        try:
            items.append(split_example(ex, i, str(path)))
        except DatasetError as exc:
            problems.append(exc.message)
    if problems:
        raise DatasetError("\n".join(problems[:20]), "end every example with the assistant's reference answer")
    return items


def fixed_shots(train: list[TestItem], k: int, seed: int) -> list[TestItem]:
    """``k`` training items drawn once with a seeded RNG (the same shots for every query)."""
    return random.Random(seed).sample(train, min(k, len(train)))


def nearest_shots(train: list[TestItem], items: list[TestItem], k: int) -> list[list[TestItem]]:
    """For each test item, the ``k`` training items whose questions are most similar (most similar last)."""
    return nearest_by_question(train, [it.question for it in items], k)


def nearest_by_question(
    train: list[TestItem], questions: list[str], k: int, train_vecs: Any = None
) -> list[list[TestItem]]:
    """For each question, the ``k`` training items whose questions are most similar (most similar last).

    ``train_vecs`` are the training questions' embeddings when the caller keeps them (a server does).
    """
    from tunesmith.evaluate.embeddings import embed

    train_vecs = embed([t.question for t in train]) if train_vecs is None else train_vecs
    test_vecs = embed(questions)
    sims = test_vecs @ train_vecs.T  # (n_test, n_train); vectors are L2-normalized
    out = []
    for row in sims:
        top = row.argsort()[::-1][: min(k, len(train))]
        out.append([train[i] for i in reversed(top)])
    return out
