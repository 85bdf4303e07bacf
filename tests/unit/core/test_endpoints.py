"""The client factory against a real local HTTP endpoint: one retry policy, EndpointError for remote failures."""

from __future__ import annotations

import asyncio
import socket

import openai
import pytest

from tests.unit.augment.teacher_server import TeacherServer
from tunesmith.core.endpoints import (
    Retries,
    acall_with_retries,
    call_with_retries,
    endpoint_error,
    make_async_client,
    make_client,
    retry_delay,
)
from tunesmith.core.errors import EndpointError

FAST = Retries(max_retries=2, backoff_s=0.01, max_backoff_s=0.05)
MSGS = [{"role": "user", "content": "hello"}]


def ask(client):
    return lambda: client.chat.completions.create(model="m", messages=MSGS)


def test_retryable_statuses_are_retried_under_the_policy_and_reported():
    retried = []
    with TeacherServer() as server:
        server.fail_plan = [(429, {"retry-after-ms": "20"}), (503, {})]
        resp = call_with_retries(ask(make_client(server.base_url, "k")), FAST, lambda *a: retried.append(a))
        assert resp.choices[0].message.content == "Answer to: hello"
        assert len(server.requests) == 3  # the SDK's own retries are off: each attempt is ours
    assert retried == [(1, "HTTP 429", 0.02), (2, "HTTP 503", 0.02)]


def test_a_refusal_is_not_retried_and_maps_to_an_endpoint_error_with_the_servers_message():
    with TeacherServer() as server:
        server.fail_plan = [(400, {})]
        with pytest.raises(openai.BadRequestError) as info:
            call_with_retries(ask(make_client(server.base_url, "k")), FAST)
        assert len(server.requests) == 1
    err = endpoint_error(info.value, "judge at test", "check judge.model")
    assert isinstance(err, EndpointError) and err.status_code == 502 and err.hint == "check judge.model"
    with pytest.raises(EndpointError, match=r"judge at test refused the request \(HTTP 400\): injected 400"):
        raise err


def test_retries_run_out_and_the_last_error_propagates():
    with TeacherServer() as server:
        server.fail_plan = [(500, {})] * 3
        with pytest.raises(openai.InternalServerError):
            call_with_retries(ask(make_client(server.base_url, "k")), FAST)
        assert len(server.requests) == 3  # the first try and max_retries=2 retries


def test_an_unreachable_endpoint_is_an_endpoint_error_naming_it():
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = make_client(f"http://127.0.0.1:{port}/v1", "k", timeout=2)
    with pytest.raises(openai.APIConnectionError) as info:
        call_with_retries(ask(client), Retries(max_retries=1, backoff_s=0.01))
    with pytest.raises(EndpointError, match=rf"cannot reach the API at {port}: APIConnectionError"):
        raise endpoint_error(info.value, f"the API at {port}", "check --base-url")


def test_any_other_sdk_error_still_names_the_endpoint():
    with pytest.raises(EndpointError, match=r"teacher at test failed: OpenAIError: no body") as info:
        raise endpoint_error(openai.OpenAIError("no body"), "teacher at test", "retry later")
    assert info.value.hint == "retry later" and info.value.code == "endpoint_error"


def test_the_async_client_follows_the_same_policy():
    async def run(base_url):
        client = make_async_client(base_url, "k")
        try:
            return await acall_with_retries(ask(client), FAST)
        finally:
            await client.close()

    with TeacherServer() as server:
        server.fail_plan = [(408, {})]
        resp = asyncio.run(run(server.base_url))
        assert resp.choices[0].message.content == "Answer to: hello" and len(server.requests) == 2


def test_retry_delay_doubles_honours_retry_after_and_caps():
    policy = Retries(max_retries=5, backoff_s=1.0, max_backoff_s=10.0)
    assert [retry_delay(a, policy) for a in range(5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert retry_delay(0, policy, {"retry-after": "3"}) == 3.0
    assert retry_delay(0, policy, {"retry-after": "600"}) == 10.0
