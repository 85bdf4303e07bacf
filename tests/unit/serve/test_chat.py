"""Chat completions below HTTP: request validation, context budget, tool calls, log probabilities, cancel."""

from __future__ import annotations

import json
import threading

import pytest
from pydantic import ValidationError

from tunesmith.serve.batcher import Batcher, ContinuousBatcher, GenRequest
from tunesmith.serve.chat import ContextLengthError, token_budget
from tunesmith.serve.chat_schemas import ChatCompletionCreate
from tunesmith.serve.inference import ModelHost, Sampling, Target
from tunesmith.serve.tools import parse_tool_calls, template_supports_tools

HI = [{"role": "user", "content": "hi"}]
HERMES_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nTools:\n{% for t in tools %}{{ t | tojson }}\n{% endfor %}"
    'Call one as <tool_call>{"name": ..., "arguments": ...}</tool_call><|im_end|>\n{% endif %}'
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def body(**kw) -> ChatCompletionCreate:
    return ChatCompletionCreate.model_validate({"model": "m", "messages": HI, **kw})


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"stop": ["a", "b", "c", "d", "e"]}, "at most 4 stop sequences"),
        ({"stop": "x" * 300}, "at most 256 characters"),
        ({"seed": 2**64}, "less than 9223372036854775808"),
        ({"top_logprobs": 3}, "top_logprobs needs logprobs=true"),
        ({"top_logprobs": 21, "logprobs": True}, "less than or equal to 20"),
        ({"messages": [{"role": "user", "content": "bad \udc80"}]}, "messages.0.content holds a lone"),
        ({"model": "ft:\udc80"}, "model holds a lone UTF-16 surrogate"),
        ({"response_format": {"type": "xml"}}, "type must be 'text', 'json_object' or 'json_schema'"),
        ({"logit_bias": {"hello": 5}}, "logit_bias keys are token ids"),
        ({"logit_bias": {"5": 101}}, r"logit_bias values lie in \[-100, 100\]"),
        ({"presence_penalty": 3}, "less than or equal to 2"),
    ],
)
def test_invalid_chat_requests_are_refused_by_the_schema(fields, match):
    with pytest.raises(ValidationError, match=match):
        body(**fields)


def test_token_budget_fills_the_context_by_default_and_refuses_overflow():
    assert token_budget(body(), prompt_len=100, context=8192) == 256
    assert token_budget(body(), prompt_len=8000, context=8192) == 192
    assert token_budget(body(max_completion_tokens=50), prompt_len=100, context=8192) == 50
    with pytest.raises(ContextLengthError, match="maximum context length is 8192 tokens.*9000 prompt"):
        token_budget(body(), prompt_len=9000, context=8192)
    with pytest.raises(ContextLengthError, match="asks for 1000000000000000000000000000000") as info:
        token_budget(body(max_tokens=10**30), prompt_len=10, context=8192)
    assert info.value.param == "max_completion_tokens" and info.value.code == "context_length_exceeded"


def test_hermes_tool_calls_are_parsed_and_content_kept(smol_tokenizer):
    text = 'Let me check.\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    content, calls = parse_tool_calls(text, smol_tokenizer, "", [])
    assert content == "Let me check."
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert calls[0].id.startswith("call_")
    assert parse_tool_calls("no call here", smol_tokenizer, "", []) == ("no call here", [])
    unclosed = '<tool_call>{"name": "f", "arguments": {}}'  # cut by max_tokens before the closing tag
    assert parse_tool_calls(unclosed, smol_tokenizer, "", [])[1][0].function.name == "f"


def test_tool_support_is_read_from_the_chat_template(smol_tokenizer):
    assert not template_supports_tools(smol_tokenizer)  # SmolLM2's template never renders tools
    tok = type("Tok", (), {"chat_template": HERMES_TEMPLATE})()
    assert template_supports_tools(tok)


@pytest.fixture(scope="module", params=["static", "continuous"])
def batcher(tiny_model_dir, request):
    host = ModelHost(max_adapters=2, device="cpu")
    b = Batcher(host, max_batch=8, window_ms=20) if request.param == "static" else ContinuousBatcher(host, max_batch=8)
    yield b
    b.close()


def prompt(batcher, base, text="hello there"):
    from tunesmith.models.template import prompt_ids

    tok = batcher.host.tokenizer(base)
    return prompt_ids(tok, [{"role": "user", "content": text}])


def test_logprobs_of_greedy_tokens_are_the_top_choice_and_match_the_model(batcher, tiny_model_dir):
    import torch

    base = str(tiny_model_dir)
    ids = prompt(batcher, base)
    params = Sampling(max_tokens=5, temperature=0, logprobs=3)
    [done] = batcher.submit(GenRequest(Target("tiny", base), ids, params)).result(timeout=60)
    assert done.logprobs is not None and len(done.logprobs) == done.n_tokens
    model = batcher.host.bases[base][0]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]
    expected = torch.log_softmax(logits.float(), -1)
    first = done.logprobs[0]
    assert first.token_id == int(expected.argmax())
    assert first.logprob == pytest.approx(float(expected.max()), abs=1e-4)
    assert len(first.top) == 3 and first.top[0][0] == first.token_id  # greedy picks the most likely token
    assert [t for t, _ in first.top] == expected.topk(3).indices.tolist()
    plain = batcher.submit(GenRequest(Target("tiny", base), ids, Sampling(max_tokens=5, temperature=0)))
    assert plain.result(timeout=60)[0].text == done.text  # recording changes nothing


def test_a_cancelled_request_stops_at_the_next_decode_step(batcher, tiny_model_dir):
    base = str(tiny_model_dir)
    ids = prompt(batcher, base, "tell me a long story")
    cancel = threading.Event()

    class CancelAfterThree:
        """A streamer that plays a client leaving after three tokens."""

        def __init__(self) -> None:
            self.seen = -1  # the first put is the prompt

        def put(self, value):
            self.seen += 1
            if self.seen == 3:
                cancel.set()

        def end(self):
            pass

    req = GenRequest(Target("tiny", base), ids, Sampling(max_tokens=400, temperature=0), streamer=CancelAfterThree())
    req.cancel = cancel
    before = batcher.requests_cancelled
    [done] = batcher.submit(req).result(timeout=120)
    assert done.n_tokens <= 4  # not the 400 asked for
    assert batcher.requests_cancelled == before + 1
    stats = batcher.stats()
    assert stats["alive"] and stats["busy_s"] == 0.0 and stats["cancelled"] == before + 1


def test_a_request_cancelled_while_queued_never_runs(batcher, tiny_model_dir):
    base = str(tiny_model_dir)
    req = GenRequest(Target("tiny", base), prompt(batcher, base), Sampling(max_tokens=3, temperature=0))
    req.cancel.set()
    future = batcher.submit(req)
    with pytest.raises(Exception) as info:
        future.result(timeout=60)
    assert info.type.__name__ == "CancelledError"


def test_an_adapter_deleted_before_loading_is_a_404_model_error(batcher, tiny_model_dir, tmp_path):
    from tunesmith.core.errors import ModelError

    (tmp_path / "gone").mkdir()
    (tmp_path / "gone" / "adapter_config.json").write_text("{not json")  # half-deleted / torn adapter
    target = Target("ft", str(tiny_model_dir), str(tmp_path / "gone"))
    future = batcher.submit(GenRequest(target, prompt(batcher, str(tiny_model_dir)), Sampling(max_tokens=2)))
    with pytest.raises(ModelError, match="could not be loaded") as info:
        future.result(timeout=60)
    assert info.value.status_code == 404 and info.value.param == "model"


def test_openai_penalties_lower_repeated_tokens_and_add_biases():
    import torch

    from tunesmith.models.generate import OpenAIPenalties

    ids = torch.tensor([[1, 2, 5, 5, 7]])  # a 2-token prompt, then 5, 5, 7 generated
    out = OpenAIPenalties(2, presence=0.5, frequency=1.0, bias={9: 3.0})(ids, torch.zeros(1, 10))
    assert out[0, 5] == pytest.approx(-2.5) and out[0, 7] == pytest.approx(-1.5)
    assert out[0, 1] == 0 and out[0, 2] == 0  # prompt tokens are not penalised
    assert out[0, 9] == pytest.approx(3.0)


def test_logit_bias_steers_generation_and_shares_no_batch_with_plain_requests(batcher, tiny_model_dir):
    base = str(tiny_model_dir)
    tok = batcher.host.tokenizer(base)
    forced = tok("yes", add_special_tokens=False)["input_ids"][0]
    params = Sampling(max_tokens=4, temperature=0, logit_bias=((forced, 100.0),))
    req = GenRequest(Target("tiny", base), prompt(batcher, base), params)
    [done] = batcher.submit(req).result(timeout=60)
    assert done.text == "yes" * 4
    plain = GenRequest(Target("tiny", base), prompt(batcher, base), Sampling(max_tokens=4, temperature=0))
    assert req.batch_key != plain.batch_key


def test_temperatures_too_small_to_divide_by_are_greedy():
    assert body(temperature=1e-50).temperature == 0.0  # logits / 1e-50 overflow to inf: a 500 before
    assert body(temperature=0.5).temperature == 0.5
