"""Chat completions parity and limits over real HTTP with the official openai SDK and the bundled model."""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest

from tests.conftest import ASSETS
from tests.integration.conftest import free_port, running_server

pytestmark = pytest.mark.integration
BASE = "smollm2-135m-instruct"
ASK = [{"role": "user", "content": "Name three colours."}]


def health(live_server) -> dict:
    return httpx.get(live_server.base_url.removesuffix("/v1") + "/health", timeout=10).json()


def test_logprobs_stop_budget_seed_and_fingerprint(openai_client):
    reply = openai_client.chat.completions.create(
        model=BASE, messages=ASK, max_completion_tokens=6, temperature=0, logprobs=True, top_logprobs=3
    )
    choice = reply.choices[0]
    entries = choice.logprobs.content
    assert reply.usage.completion_tokens == len(entries) <= 6
    assert "".join(e.token for e in entries) == choice.message.content
    for e in entries:  # greedy: each token is the most likely one, listed first among 3
        assert len(e.top_logprobs) == 3 and e.top_logprobs[0].token == e.token and e.logprob <= 0
        assert e.top_logprobs[0].logprob == pytest.approx(e.logprob)
    assert reply.system_fingerprint and reply.system_fingerprint.startswith("fp_")

    full = openai_client.chat.completions.create(model=BASE, messages=ASK, max_tokens=30, temperature=0)
    word = full.choices[0].message.content.split()[1]
    cut = openai_client.chat.completions.create(
        model=BASE, messages=ASK, max_tokens=30, temperature=0, stop=[word, "zzz"]
    )
    assert cut.choices[0].finish_reason == "stop" and word not in cut.choices[0].message.content
    assert full.choices[0].message.content.startswith(cut.choices[0].message.content)

    seeded = [
        openai_client.chat.completions.create(model=BASE, messages=ASK, max_tokens=8, temperature=1.0, seed=11)
        .choices[0]
        .message.content
        for _ in range(2)
    ]
    assert seeded[0] == seeded[1]


def test_streaming_n_choices_with_usage_and_logprobs(openai_client):
    stream = openai_client.chat.completions.create(
        model=BASE,
        messages=ASK,
        max_tokens=6,
        temperature=0.9,
        n=2,
        stream=True,
        stream_options={"include_usage": True},
        logprobs=True,
    )
    texts, finishes, tokens, usage = {0: "", 1: ""}, {}, {0: 0, 1: 0}, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for c in chunk.choices:
            texts[c.index] += c.delta.content or ""
            tokens[c.index] += len(c.logprobs.content) if c.logprobs and c.logprobs.content else 0
            if c.finish_reason:
                finishes[c.index] = c.finish_reason
    assert set(finishes) == {0, 1} and all(t for t in texts.values())
    assert usage is not None and usage.completion_tokens == tokens[0] + tokens[1]


def test_limits_answer_400_with_openai_bodies(openai_client, live_server):
    long = [{"role": "user", "content": "word " * 9000}]  # over the model's 8,192-token context
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model=BASE, messages=long, max_tokens=1)
    assert info.value.body["code"] == "context_length_exceeded" and "8192" in info.value.body["message"]
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model=BASE, messages=ASK, max_tokens=10**30)
    assert info.value.body["param"] == "max_completion_tokens"
    tiny = openai_client.chat.completions.create(model=BASE, messages=ASK, max_tokens=3, temperature=1e-50)
    greedy = openai_client.chat.completions.create(model=BASE, messages=ASK, max_tokens=3, temperature=0)
    assert tiny.choices[0].message.content == greedy.choices[0].message.content  # was a 500 (inf logits)
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(model=BASE, messages=ASK, seed=2**64)
    assert "seed" in info.value.body["message"]
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.chat.completions.create(
            model=BASE, messages=ASK, tools=[{"type": "function", "function": {"name": "f"}}]
        )
    assert info.value.body["param"] == "tools" and "no tool support" in info.value.body["message"]

    auth = {"Authorization": f"Bearer {live_server.api_key}", "Content-Type": "application/json"}
    url = f"{live_server.base_url}/chat/completions"
    raw = json.dumps({"model": BASE, "messages": [{"role": "user", "content": "bad \udc80"}], "stop": "\udc80"})
    bad = httpx.post(url, content=raw, headers=auth, timeout=30)
    assert bad.status_code == 400 and "surrogate" in bad.json()["error"]["message"]
    huge = json.dumps({"model": BASE, "messages": [{"role": "user", "content": "x" * (5 << 20)}]})
    too_big = httpx.post(url, content=huge, headers=auth, timeout=30)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "request_too_large"


def wait_idle(live_server, cancelled_before: int) -> dict:
    """Poll /health until the engine is idle again with one more cancelled request (bounded)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        engine = health(live_server)["engine"]
        if engine["cancelled"] > cancelled_before and engine["busy_s"] == 0 and engine["queued"] == 0:
            return engine
        time.sleep(0.2)
    raise AssertionError(f"the engine did not free the slot: {health(live_server)}")


def test_a_client_that_goes_away_frees_its_slot(openai_client, live_server):
    before = health(live_server)["engine"]["cancelled"]
    # A streamed answer of up to 4,000 tokens, abandoned after 6 chunks.
    stream = openai_client.chat.completions.create(
        model=BASE,
        messages=[{"role": "user", "content": "Write a very long story."}],
        max_tokens=4000,
        temperature=0.8,
        stream=True,
    )
    for i, _chunk in enumerate(stream):
        if i == 5:
            break
    stream.close()
    engine = wait_idle(live_server, before)
    # A non-streamed request whose client times out.
    with pytest.raises(openai.APITimeoutError):
        openai_client.with_options(timeout=1.5).chat.completions.create(
            model=BASE,
            messages=[{"role": "user", "content": "Write a very long story."}],
            max_tokens=4000,
            temperature=0.8,
        )
    engine = wait_idle(live_server, engine["cancelled"])
    assert engine["alive"] and engine["cancelled"] >= before + 2
    quick = openai_client.chat.completions.create(model=BASE, messages=ASK, max_tokens=1, temperature=0)
    assert quick.usage.completion_tokens == 1


def test_tool_calls_through_a_model_whose_template_supports_tools(tmp_path):
    from tunesmith.models.registry import resolve_model

    model_dir = tmp_path / "smol-tools"
    model_dir.mkdir()
    for f in resolve_model(BASE).iterdir():
        if f.name != "chat_template.jinja":
            (model_dir / f.name).symlink_to(f)
    (model_dir / "chat_template.jinja").write_text((ASSETS / "templates" / "hermes_tools.jinja").read_text())
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather of a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        }
    ]

    def weather_call(city: str) -> dict:
        return {
            "id": f"call_{city}",
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps({"city": city})},
        }

    messages = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [weather_call("Paris")]},
        {"role": "user", "content": "What is the weather in Rome?"},
        {"role": "assistant", "content": None, "tool_calls": [weather_call("Rome")]},
        {"role": "user", "content": "What is the weather in Tokyo?"},
    ]
    with running_server(tmp_path / "data", free_port(), "--model", str(model_dir)) as (handle, _proc):
        client = openai.OpenAI(base_url=handle.base_url, api_key=handle.api_key, max_retries=0, timeout=120)
        reply = client.chat.completions.create(
            model=str(model_dir), messages=messages, tools=tools, max_tokens=40, temperature=0
        )
        choice = reply.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        [call] = choice.message.tool_calls
        assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Tokyo"}
        streamed = client.chat.completions.create(
            model=str(model_dir), messages=messages, tools=tools, max_tokens=40, temperature=0, stream=True
        )
        calls, finish = [], None
        for chunk in streamed:
            for c in chunk.choices:
                calls += c.delta.tool_calls or []
                finish = c.finish_reason or finish
        assert finish == "tool_calls" and [c.function.arguments for c in calls] == [call.function.arguments]
        plain = client.chat.completions.create(
            model=str(model_dir), messages=messages, tools=tools, tool_choice="none", max_tokens=40, temperature=0
        )
        assert plain.usage.prompt_tokens < reply.usage.prompt_tokens  # tools are not rendered with "none"
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(
                model=str(model_dir), messages=messages, tools=tools, tool_choice="required", max_tokens=4
            )
        assert info.value.body["param"] == "tool_choice"
