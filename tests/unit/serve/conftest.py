"""A real server for fast API tests: ``create_app`` under uvicorn in a thread on 127.0.0.1, worker idle.

The job worker's tick is disabled, so jobs stay where a test puts them (no training starts); tests drive the
worker's steps (``validate``, ``finish``...) themselves through ``api.ctx.worker``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest
import uvicorn

from tunesmith.serve.app import create_app
from tunesmith.serve.deps import ServerContext
from tunesmith.serve.settings import ServeSettings
from tunesmith.store.db import Database

API_KEY = "sk-unit-tunesmith"


@dataclass
class Api:
    """A running in-process server."""

    base_url: str  # ends with /v1
    key: str
    ctx: ServerContext
    client: Any  # openai.OpenAI

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_app(settings: ServeSettings) -> Iterator[Api]:
    """Serve ``create_app(settings)`` until the block ends."""
    app = create_app(settings)
    ctx: ServerContext = app.state.ctx
    ctx.worker.tick = lambda: None  # no job is validated or launched behind the test's back
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}/v1"
    key = settings.api_keys[0] if settings.api_keys else "none"
    client = openai.OpenAI(base_url=base, api_key=key, max_retries=0, timeout=30)
    try:
        yield Api(base, key, ctx, client)
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture
def api(tmp_path) -> Iterator[Api]:
    """A server with one API key and its own data dir."""
    with serve_app(ServeSettings(data_dir=tmp_path / "data", api_keys=[API_KEY], port=0)) as handle:
        yield handle


def write_chat_file(path, n: int = 10):
    """``n`` valid OpenAI chat examples (fine-tune uploads need at least 10)."""
    import json

    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            msgs = [{"role": "user", "content": f"review {i}"}, {"role": "assistant", "content": "positive"}]
            f.write(json.dumps({"messages": msgs}) + "\n")
    return path


@pytest.fixture()
def store(tmp_path):
    """A fresh data dir and its SQLite store: ``(db, settings)``."""
    settings = ServeSettings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    db = Database(settings.resolved_database_url())
    yield db, settings
    db.close()
