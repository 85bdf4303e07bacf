"""The fine-tuning jobs client builds its client with the core factory: same retries, EndpointError on refusal."""

from __future__ import annotations

import pytest

from tests.unit.augment.teacher_server import TeacherServer
from tunesmith.cli.jobs_client import call, make_client
from tunesmith.core.errors import EndpointError, ServeError

MSGS = [{"role": "user", "content": "hi"}]


def test_a_refused_request_is_an_endpoint_error_with_the_servers_message():
    with TeacherServer() as server:
        server.fail_plan = [(422, {})]
        client = make_client(server.base_url, "k")
        with pytest.raises(EndpointError, match=r"the API refused the request \(HTTP 422\): injected 422") as info:
            call(client.chat.completions.create, model="m", messages=MSGS)
        assert info.value.hint == "fix what the message names" and len(server.requests) == 1


def test_a_busy_endpoint_is_retried_before_the_answer_comes_back():
    with TeacherServer() as server:
        server.fail_plan = [(429, {"retry-after-ms": "10"})]
        resp = call(make_client(server.base_url, "k").chat.completions.create, model="m", messages=MSGS)
        assert resp.choices[0].message.content == "Answer to: hi" and len(server.requests) == 2


def test_no_api_key_names_the_flag_and_the_variable(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ServeError, match="no API key") as info:
        make_client("http://127.0.0.1:1/v1")
    assert "--api-key" in info.value.hint and "OPENAI_API_KEY" in info.value.hint
