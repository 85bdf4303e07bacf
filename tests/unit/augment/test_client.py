"""The teacher client: retries with backoff and Retry-After, fatal errors, missing key, cost."""

from __future__ import annotations

import asyncio
import email.utils
import time

import pytest

from tunesmith.augment.client import RequestCache, TeacherClient, TeacherRequestError, query_price
from tunesmith.augment.config import TeacherSettings
from tunesmith.core.endpoints import parse_retry_after, retry_delay
from tunesmith.core.errors import ConfigError, EndpointError

MSGS = [{"role": "user", "content": "Tell me JSON please"}]


def settings(server, **kw) -> TeacherSettings:
    return TeacherSettings(
        model="teacher-x", base_url=server.base_url, backoff_s=0.01, max_backoff_s=0.5, timeout_s=10, **kw
    )


async def _complete(cfg: TeacherSettings, cache: RequestCache, messages=MSGS):
    async with TeacherClient(cfg, cache) as client:
        response = await client.complete(messages)
    return client, response


def test_parse_retry_after_forms():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after": "0.25"}) == 0.25
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= parse_retry_after({"retry-after": future}) <= 31
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None and parse_retry_after(None) is None


def test_retry_delay_doubles_honours_retry_after_and_caps():
    cfg = TeacherSettings(model="m", backoff_s=1.0, max_backoff_s=10.0)
    assert [retry_delay(a, cfg) for a in range(5)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert retry_delay(0, cfg, {"retry-after": "7"}) == 7.0
    assert retry_delay(0, cfg, {"retry-after": "600"}) == 10.0


def test_retries_injected_429_and_503_then_succeeds(teacher, tmp_path):
    teacher.fail_plan = [(429, {"Retry-After": "0.02"}), (503, {}), (500, {})]
    cache = RequestCache(tmp_path / "c.jsonl")
    client, response = asyncio.run(_complete(settings(teacher), cache))
    assert response.text == '{"sentiment": "positive"}'
    assert len(teacher.requests) == 4 and client.stats.http_requests == 4
    assert [r["reason"] for r in client.stats.retries] == ["HTTP 429", "HTTP 503", "HTTP 500"]
    # the 429's Retry-After is honoured; the 5xx use exponential backoff from 0.01 s
    assert [r["delay_s"] for r in client.stats.retries] == [0.02, 0.02, 0.04]
    assert len(cache) == 1


def test_cache_hit_sends_no_request(teacher, tmp_path):
    cache = RequestCache(tmp_path / "c.jsonl")
    asyncio.run(_complete(settings(teacher), cache))
    client, response = asyncio.run(_complete(settings(teacher), RequestCache(tmp_path / "c.jsonl")))
    assert len(teacher.requests) == 1 and client.stats.cache_hits == 1
    assert client.stats.prompt_tokens == 0 and response.text == '{"sentiment": "positive"}'


def test_retries_exhausted_fail_the_item_not_the_run(teacher, tmp_path):
    teacher.fail_plan = [(503, {})] * 3
    with pytest.raises(TeacherRequestError, match="failed after 2 retries: HTTP 503"):
        asyncio.run(_complete(settings(teacher, max_retries=2), RequestCache(tmp_path / "c.jsonl")))
    assert len(teacher.requests) == 3


def test_bad_key_and_unknown_model_stop_the_run(teacher, tmp_path):
    teacher.fail_plan = [(401, {})]
    with pytest.raises(EndpointError, match="refused the API key") as info:
        asyncio.run(_complete(settings(teacher), RequestCache(tmp_path / "c.jsonl")))
    assert "OPENAI_API_KEY" in info.value.hint
    teacher.fail_plan = [(404, {})]
    with pytest.raises(EndpointError, match="model 'teacher-x' not found"):
        asyncio.run(_complete(settings(teacher), RequestCache(tmp_path / "c.jsonl")))
    assert len(teacher.requests) == 2  # no retries for either


def test_other_4xx_rejects_the_item(teacher, tmp_path):
    teacher.fail_plan = [(400, {})]
    with pytest.raises(TeacherRequestError, match=r"refused the request \(HTTP 400\)"):
        asyncio.run(_complete(settings(teacher), RequestCache(tmp_path / "c.jsonl")))


def test_missing_api_key_variable_is_a_config_error(teacher, tmp_path, monkeypatch):
    monkeypatch.delenv("MY_TEACHER_KEY", raising=False)
    with pytest.raises(ConfigError, match="MY_TEACHER_KEY is not set") as info:
        asyncio.run(_complete(settings(teacher, api_key_env="MY_TEACHER_KEY"), RequestCache(tmp_path / "c")))
    assert "--api-key-env" in info.value.hint


def test_cost_is_estimated_for_priced_models_and_none_otherwise(teacher, tmp_path):
    assert query_price("no-such-model") is None
    assert query_price("gpt-4o-mini") is not None
    client, _ = asyncio.run(_complete(settings(teacher), RequestCache(tmp_path / "a.jsonl")))
    assert client.cost_usd is None and client.stats.prompt_tokens > 0
    priced = TeacherSettings(model="gpt-4o-mini", base_url=teacher.base_url)
    client, _ = asyncio.run(_complete(priced, RequestCache(tmp_path / "b.jsonl")))
    p_in, p_out = query_price("gpt-4o-mini")
    expected = (client.stats.prompt_tokens * p_in + client.stats.completion_tokens * p_out) / 1e6
    assert client.cost_usd == pytest.approx(expected) and client.cost_usd > 0


def test_a_broken_price_file_is_an_error_not_an_unpriced_model(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.yaml .*no such file"):
        query_price("gpt-4o-mini", tmp_path / "nope.yaml")
