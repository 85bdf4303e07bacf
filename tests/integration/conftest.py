"""Integration fixtures: a real `tunesmith serve` subprocess on 127.0.0.1 with the bundled model.

``live_server`` yields ``ServerHandle(base_url, api_key, data_dir)`` (a 3-tuple); use it with
the official openai SDK: ``openai.OpenAI(base_url=h.base_url, api_key=h.api_key)``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest

API_KEY = "sk-test-tunesmith"
START_TIMEOUT_S = 90


class ServerHandle(NamedTuple):
    """A running server: where it listens, the key it accepts, its data directory."""

    base_url: str
    api_key: str
    data_dir: Path


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(
    data_dir: Path,
    port: int,
    *extra: str,
    cwd: Path | None = None,
    log: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start `tunesmith serve` in its own process group, in ``cwd``, with ``env`` added to the environment;
    its log goes to ``log`` (default ``data_dir/server.log``)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "tunesmith",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
        "--api-key",
        API_KEY,
        *extra,
    ]
    with open(log or data_dir / "server.log", "ab") as out:  # the process keeps its own handle
        return subprocess.Popen(
            cmd,
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env or {})},
        )


def wait_healthy(proc: subprocess.Popen, base: str, log: Path) -> None:
    """Poll /health until it answers; fail with the server log if the process dies or times out."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"tunesmith serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    pytest.fail(f"tunesmith serve did not become healthy in {START_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


def stop_server(proc: subprocess.Popen, hard: bool = False) -> None:
    """Stop the server (SIGTERM, or SIGKILL of the server process alone with ``hard``)."""
    if proc.poll() is not None:
        return
    if hard:
        proc.kill()
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@contextlib.contextmanager
def running_server(
    data_dir: Path, port: int | None = None, *extra: str
) -> Iterator[tuple[ServerHandle, subprocess.Popen]]:
    """A server for the duration of the block."""
    port = port or free_port()
    proc = start_server(data_dir, port, *extra)
    try:
        wait_healthy(proc, f"http://127.0.0.1:{port}", data_dir / "server.log")
        yield ServerHandle(f"http://127.0.0.1:{port}/v1", API_KEY, data_dir), proc
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory) -> Iterator[ServerHandle]:
    """One `tunesmith serve` for the session: 127.0.0.1, a free port, a temp data dir, API key ``API_KEY``."""
    with running_server(tmp_path_factory.mktemp("serve-data")) as (handle, _proc):
        yield handle


@pytest.fixture
def openai_client(live_server):
    """The official openai SDK pointed at ``live_server``."""
    import openai

    return openai.OpenAI(base_url=live_server.base_url, api_key=live_server.api_key, max_retries=0, timeout=120)
