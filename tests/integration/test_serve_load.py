"""Bounded concurrent chat requests on loopback: no errors; throughput measured against sequential."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

pytestmark = pytest.mark.integration
N_REQUESTS = 4
CONCURRENCY = 4


def ask(client, i: int):
    return client.chat.completions.create(
        model="smollm2-135m-instruct",
        messages=[{"role": "user", "content": f"Name a colour. ({i})"}],
        max_tokens=8,
        temperature=0,
    )


def batch_counts(live_server) -> tuple[int, int]:
    health = httpx.get(live_server.base_url.removesuffix("/v1") + "/health").json()
    return health["chat_batches"], health["chat_requests"]


def test_concurrent_chat_has_no_errors_and_reports_throughput(openai_client, live_server, capsys):
    ask(openai_client, -1)  # load the model outside the measurement
    start = time.perf_counter()
    sequential = [ask(openai_client, i) for i in range(N_REQUESTS)]
    seq_s = time.perf_counter() - start
    batches0, requests0 = batch_counts(live_server)
    start = time.perf_counter()
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        concurrent = list(pool.map(lambda i: ask(openai_client, i), range(N_REQUESTS)))
    conc_s = time.perf_counter() - start
    batches1, requests1 = batch_counts(live_server)
    assert len(concurrent) == N_REQUESTS and all(r.choices[0].message.content for r in concurrent)
    # Greedy decoding: batched (left-padded) generation gives the same answers as one request at a time.
    assert [r.choices[0].message.content for r in concurrent] == [r.choices[0].message.content for r in sequential]
    tokens = sum(r.usage.completion_tokens for r in concurrent)
    with capsys.disabled():
        print(
            f"\n[serve load] {N_REQUESTS} requests: sequential {seq_s:.2f}s "
            f"({N_REQUESTS / seq_s:.2f} req/s), concurrency {CONCURRENCY}: {conc_s:.2f}s "
            f"({N_REQUESTS / conc_s:.2f} req/s, {tokens / conc_s:.1f} tok/s), x{seq_s / conc_s:.2f}; "
            f"{requests1 - requests0} requests in {batches1 - batches0} batches"
        )
