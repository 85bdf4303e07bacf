"""Fixtures for the augment/distill tests: a local OpenAI-compatible teacher and small datasets."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import chat, write_jsonl
from tests.unit.augment.teacher_server import TeacherServer

SENTENCES = [
    "The most wondrous love story in years, it is a great film.",
    "A low rent retread of the Alien pictures.",
    "The battery lasts all day and the screen is bright.",
    "Effective but too tepid biopic with a slow middle act.",
    "The scroll wheel is finicky and the buttons feel cheap.",
    "It arrived on time and does what the box says.",
]
SYSTEM = "Classify the sentiment of the review sentence."


@pytest.fixture
def teacher(monkeypatch):
    """A running local teacher endpoint; OPENAI_API_KEY is set for the SDK."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-key")
    with TeacherServer() as server:
        yield server


@pytest.fixture
def source_file(tmp_path) -> Path:
    """Six sentiment examples in OpenAI chat JSONL, with ids in metadata."""
    rows = []
    for i, s in enumerate(SENTENCES):
        row = chat(s, '{"sentiment": "positive"}', system=SYSTEM)
        row["metadata"] = {"id": f"ex{i}"}
        rows.append(row)
    return write_jsonl(tmp_path / "train.jsonl", rows)
