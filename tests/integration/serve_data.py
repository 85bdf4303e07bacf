"""Tiny fine-tuning data and a helper to wait on jobs, shared by the server integration tests."""

from __future__ import annotations

import json
import time
from pathlib import Path

REVIEWS = [
    ("I love this phone, the battery lasts all day", "positive"),
    ("Terrible service, I waited an hour", "negative"),
    ("The soup was cold and bland", "negative"),
    ("Great value and fast delivery", "positive"),
    ("Broke after two days", "negative"),
    ("Absolutely wonderful staff", "positive"),
    ("Not worth the money", "negative"),
    ("Best concert I have been to", "positive"),
]
SYSTEM = "Classify the sentiment of the review as positive or negative."
# A job small enough for 2 shared CPU cores: a few optimizer steps on short sequences.
TINY_TRAINING = {
    "max_steps": 4,
    "save_steps": 2,
    "logging_steps": 1,
    "max_seq_length": 96,
    "warmup_ratio": 0.0,
}


def write_train_file(path: Path, n: int = 16) -> Path:
    """``n`` chat examples (the reviews repeated) as OpenAI JSONL."""
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            text, label = REVIEWS[i % len(REVIEWS)]
            msgs = [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": text},
                {"role": "assistant", "content": label},
            ]
            f.write(json.dumps({"messages": msgs}) + "\n")
    return path


def wait_for(client, job_id: str, statuses: tuple[str, ...], timeout_s: float = 240) -> object:
    """Poll the job until its status is one of ``statuses``; fail with its events on timeout or failure."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if job.status in statuses:
            return job
        if job.status == "failed" and "failed" not in statuses:
            raise AssertionError(f"job failed: {job.error}")
        time.sleep(0.5)
    events = [e.message for e in client.fine_tuning.jobs.list_events(job_id, limit=50).data]
    raise AssertionError(f"job {job_id} still {job.status} after {timeout_s}s; events: {events}")
