"""Structured output (``response_format`` JSON modes) over real HTTP with the official openai SDK and the bundled
model: every answer of a 50-prompt set validates against its strict schema."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jsonschema
import openai
import pytest

pytestmark = pytest.mark.integration
BASE = "smollm2-135m-instruct"
SCHEMA = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
        "topic": {"type": "string", "maxLength": 24},
        "stars": {"type": "integer", "minimum": 1, "maximum": 5},
    },
    "required": ["sentiment", "topic", "stars"],
    "additionalProperties": False,
}
FORMAT = {"type": "json_schema", "json_schema": {"name": "review", "schema": SCHEMA, "strict": True}}
THINGS = [
    "the pizza",
    "the hotel room",
    "this phone",
    "the concert",
    "my new shoes",
    "the train ride",
    "the museum",
    "this laptop",
    "the coffee",
    "the movie",
    "the book",
    "the haircut",
    "the dentist",
    "the park",
    "this game",
    "the bakery",
    "the flight",
    "the headphones",
    "the sushi",
    "the gym",
    "the car rental",
    "the weather app",
    "the tea",
    "the bike",
    "the lecture",
    "the podcast",
    "the sofa",
    "the taxi",
    "the zoo",
    "the wine",
    "the pasta",
    "the keyboard",
    "the beach",
    "the library",
    "the bus",
    "the camera",
    "the soup",
    "the play",
    "the burger",
    "the printer",
    "the lamp",
    "the museum cafe",
    "the ferry",
    "the tent",
    "the jacket",
    "the salad",
    "the watch",
    "the course",
    "the hostel",
    "the ice cream",
]
PROMPTS = [f"Review {thing} in one short JSON object." for thing in THINGS]  # 50


def ask(client: openai.OpenAI, prompt: str, **kw) -> openai.types.chat.ChatCompletion:
    return client.chat.completions.create(
        model=BASE, messages=[{"role": "user", "content": prompt}], temperature=0, **kw
    )


def test_json_schema_strict_is_valid_for_every_prompt(openai_client):
    with ThreadPoolExecutor(8) as pool:  # the engine batches concurrent requests
        replies = list(pool.map(lambda p: ask(openai_client, p, max_tokens=40, response_format=FORMAT), PROMPTS))
    for prompt, reply in zip(PROMPTS, replies, strict=True):
        choice = reply.choices[0]
        jsonschema.validate(json.loads(choice.message.content), SCHEMA)  # raises with the prompt's answer
        assert choice.finish_reason == "stop", (prompt, choice.message.content)


def test_json_object_is_parseable_and_streaming_matches(openai_client):
    fmt = {"type": "json_object"}
    reply = ask(openai_client, "Give a JSON object describing a cat.", max_tokens=60, response_format=fmt)
    text = reply.choices[0].message.content
    if reply.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(text), dict)
    else:  # cut by max_tokens: still a prefix of a JSON object
        assert reply.choices[0].finish_reason == "length" and text.startswith("{")

    stream = openai_client.chat.completions.create(
        model=BASE,
        messages=[{"role": "user", "content": PROMPTS[0]}],
        temperature=0,
        max_tokens=40,
        response_format=FORMAT,
        stream=True,
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == ask(openai_client, PROMPTS[0], max_tokens=40, response_format=FORMAT).choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_budget_cut_json_finishes_with_length(openai_client):
    reply = ask(openai_client, PROMPTS[1], max_tokens=3, response_format=FORMAT)
    assert reply.choices[0].finish_reason == "length" and reply.choices[0].message.content.startswith("{")


def test_schema_that_cannot_compile_is_a_400_naming_response_format(openai_client):
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "strnig"}}}
    with pytest.raises(openai.BadRequestError) as err:
        ask(openai_client, "hi", max_tokens=5, response_format=bad)
    body = err.value.body
    assert body["param"] == "response_format" and "strnig" in body["message"]


@pytest.fixture(scope="module")
def fine_tuned(live_server, tmp_path_factory) -> str:
    """A random-init LoRA adapter on the bundled model, as a training run dir deployed under an alias."""
    import subprocess
    import sys

    import torch
    from peft import LoraConfig, get_peft_model

    from tunesmith.models.load import load_model_and_tokenizer

    run = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    model, _tok = load_model_and_tokenizer(BASE, device="cpu")
    lora = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(run / "adapter")
    (run / "run.json").write_text(json.dumps({"status": "succeeded", "model": BASE}))
    cmd = [str(Path(sys.executable).with_name("tunesmith")), "deploy", str(run), "--alias", "json-ft"]
    subprocess.run([*cmd, "--data-dir", str(live_server.data_dir)], check=True, capture_output=True)
    return "json-ft"


def test_json_schema_strict_on_a_fine_tuned_model_is_valid_for_every_prompt(openai_client, fine_tuned):
    def ask_ft(prompt: str):
        return openai_client.chat.completions.create(
            model=fine_tuned,
            messages=[{"role": "user", "content": prompt}],
            temperature=0,
            max_tokens=40,
            response_format=FORMAT,
        )

    with ThreadPoolExecutor(8) as pool:  # the same 50 prompts as the base model
        replies = list(pool.map(ask_ft, PROMPTS))
    for reply in replies:
        jsonschema.validate(json.loads(reply.choices[0].message.content), SCHEMA)
        assert reply.choices[0].finish_reason == "stop" and reply.model == fine_tuned
