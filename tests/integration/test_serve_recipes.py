"""A recipe deployed under an alias answers through the openai SDK exactly as evaluation measured it.

Issue 13's acceptance: evaluate a ``structured`` and a ``few-shot`` (k=2, nearest) candidate on the sentiment
example, save each one's recipe, `tunesmith deploy` it under an alias of a running server, and ask the server
every test question: the prompt token count and the greedy answer equal the evaluation cache's, example by example.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
import pytest
from typer.testing import CliRunner

from tests.integration.conftest import running_server
from tunesmith.cli import app
from tunesmith.evaluate.config import EvalConfig, parse_candidate
from tunesmith.evaluate.generate import GenerationCache
from tunesmith.evaluate.items import load_items
from tunesmith.evaluate.recipe import save_recipe
from tunesmith.evaluate.run import cache_path, candidate_recipe, run_evaluation

pytestmark = pytest.mark.integration
SENTIMENT = Path(__file__).resolve().parents[2] / "examples" / "sentiment"
N_EXAMPLES = 8
ALIASES = {"structured": "sentiment-structured", "few-shot-k2-nearest": "sentiment-few-shot"}


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> tuple[Path, dict[str, tuple[Path, dict[int, dict]]]]:
    """Run the evaluation; for each candidate, its saved recipe and its cached answers (by test index)."""
    out = tmp_path_factory.mktemp("recipes")
    cfg = EvalConfig(
        test_file=SENTIMENT / "test.jsonl",
        train_file=SENTIMENT / "train.jsonl",
        candidates=[parse_candidate("structured"), parse_candidate("few-shot:2,selection=nearest")],
        output_dir=out / "eval",
        max_new_tokens=12,
        limit=N_EXAMPLES,
        bootstrap_samples=100,
    )
    run_evaluation(cfg)
    train = load_items(SENTIMENT / "train.jsonl")
    measured = {}
    for spec in cfg.candidates:
        path = out / "recipes" / f"{spec.label}.yaml"
        save_recipe(candidate_recipe(cfg, spec, train), path)
        measured[spec.label] = (path, GenerationCache(cache_path(cfg, spec)).rows)
    assert set(measured) == set(ALIASES)
    return out, measured


@pytest.fixture(scope="module")
def server(measured):
    """A `tunesmith serve` with each recipe deployed by `tunesmith deploy` (as an operator would, while it runs)."""
    out, recipes = measured
    with running_server(out / "serve") as (handle, _proc):
        for label, (path, _rows) in recipes.items():
            args = ["deploy", str(path), "--alias", ALIASES[label], "--data-dir", str(handle.data_dir)]
            done = CliRunner().invoke(app, args)  # the command itself, in this process
            assert done.exit_code == 0 and "deployed" in done.output, done.output
        yield handle


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.base_url, api_key=server.api_key, max_retries=0, timeout=300)


@pytest.mark.parametrize("label", list(ALIASES))
def test_a_deployed_recipe_answers_as_it_was_measured(measured, client, label):
    _out, recipes = measured
    _path, rows = recipes[label]
    items = load_items(SENTIMENT / "test.jsonl", N_EXAMPLES)
    for item in items:  # the client sends the plain conversation; the server adds shots and the schema
        reply = client.chat.completions.create(model=ALIASES[label], messages=item.messages, temperature=0)
        row = rows[item.index]
        assert reply.model == ALIASES[label]
        assert reply.usage.prompt_tokens == row["prompt_tokens"], (label, item.index)
        assert (reply.choices[0].message.content or "").strip() == row["output"], (label, item.index)


def test_aliases_and_models_show_the_recipes(client, server):
    listed = {m.id: m.owned_by for m in client.models.list()}
    for label, alias in ALIASES.items():
        assert listed[alias].startswith(f"alias:recipe:{server.data_dir.resolve()}/recipes/")
        summary = client.get(f"/aliases/{alias}", cast_to=object)["recipe"]
        assert summary["name"] == label and summary["model"] == "smollm2-135m-instruct"
    assert (
        "2 nearest shots from train.jsonl"
        in client.get(f"/aliases/{ALIASES['few-shot-k2-nearest']}", cast_to=object)["recipe"]["description"]
    )


def test_a_batch_naming_a_recipe_alias_gets_the_recipe(measured, client, tmp_path):
    _out, recipes = measured
    rows = recipes["structured"][1]
    items = load_items(SENTIMENT / "test.jsonl", 2)
    lines = [
        {
            "custom_id": f"q{it.index}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": ALIASES["structured"], "messages": it.messages, "temperature": 0},
        }
        for it in items
    ]
    path = tmp_path / "batch.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    upload = client.files.create(file=path.open("rb"), purpose="batch")
    batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
    deadline = time.monotonic() + 300
    while batch.status not in ("completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.3)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed", batch.errors
    out = [json.loads(x) for x in client.files.content(batch.output_file_id).read().decode().splitlines()]
    for result in out:
        body = result["response"]["body"]
        row = rows[int(result["custom_id"][1:])]
        assert body["usage"]["prompt_tokens"] == row["prompt_tokens"]
        assert body["choices"][0]["message"]["content"].strip() == row["output"]
