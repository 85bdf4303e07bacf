"""Recipes behind aliases: `tunesmith deploy RECIPE.yaml` checks and freezes the recipe; the server applies it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.unit.serve.conftest import API_KEY, serve_app
from tunesmith.core.errors import ConfigError, ModelError
from tunesmith.evaluate.recipe import FewShotRecipe, Recipe, RecipePrompter, save_recipe
from tunesmith.evaluate.retrieval import RagSettings
from tunesmith.serve.deploy import deploy_alias
from tunesmith.serve.names import resolve_target
from tunesmith.serve.settings import ServeSettings
from tunesmith.store import repo

SCHEMA = {
    "type": "object",
    "properties": {"sentiment": {"enum": ["positive", "negative"]}},
    "required": ["sentiment"],
    "additionalProperties": False,
}


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def write_shots(path, n=4):
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            msgs = [{"role": "user", "content": f"review {i}"}, {"role": "assistant", "content": "positive"}]
            f.write(json.dumps({"messages": msgs}) + "\n")
    return path


def test_a_missing_recipe_file_is_named(store, tmp_path):
    db, settings = store
    with pytest.raises(ConfigError, match=r"recipe .*nope\.yaml does not exist") as info:
        deploy_alias(db, settings, "bot", str(tmp_path / "nope.yaml"), "me", allow_run_dirs=True)
    assert "tunesmith decide" in info.value.hint
    assert repo.get_alias(db, "bot") is None


def test_an_invalid_recipe_field_is_named_with_its_file(store, tmp_path):
    db, settings = store
    path = write_yaml(tmp_path / "bad.yaml", {"name": "structured", "max_tokens": 0, "few_shots": 2})
    with pytest.raises(ConfigError, match=r"(?s)bad\.yaml: 2 invalid.*max_tokens.*few_shots: unknown key") as info:
        deploy_alias(db, settings, "bot", str(path), "me", allow_run_dirs=True)
    assert "docs/server.md" in info.value.hint  # all problems at once, and where the keys are described


def test_a_recipe_whose_run_dir_does_not_exist_says_what_to_do(store, tmp_path):
    db, settings = store
    path = write_yaml(tmp_path / "ft.yaml", {"name": "fine-tune", "run": str(tmp_path / "runs" / "gone")})
    with pytest.raises(
        ConfigError,
        match=r"recipe .*ft\.yaml cannot be deployed:\n  `run: .*gone` is not a "
        r"`tunesmith train` run directory.*train it",
    ) as info:
        deploy_alias(db, settings, "bot", str(path), "me", allow_run_dirs=True)
    assert "the alias was not changed" in info.value.hint


def test_every_unservable_part_of_a_recipe_is_listed(store, tmp_path):
    db, settings = store
    data = {
        "name": "x",
        "model": "/models/other",
        "few_shot": {"examples": str(tmp_path / "no-train.jsonl"), "k": 2},
        "rag": {"docs": str(tmp_path / "no-docs.jsonl")},
        "json_schema": {"type": "strnig"},
    }
    path = write_yaml(tmp_path / "x.yaml", data)
    with pytest.raises(ConfigError, match="cannot be deployed") as info:
        deploy_alias(db, settings, "bot", str(path), "me", allow_run_dirs=True)
    message = info.value.message
    for part in ("few_shot.examples: ", "no-train.jsonl", "rag.docs: ", "json_schema: ", "--model /models/other"):
        assert part in message


def test_a_deployed_recipe_is_a_frozen_copy_with_rollback(store, tmp_path, monkeypatch):
    db, settings = store
    monkeypatch.chdir(tmp_path)
    write_shots(tmp_path / "train.jsonl")
    path = tmp_path / "structured.yaml"
    # relative paths are read from the working directory, as in every tunesmith config
    save_recipe(Recipe(name="structured", json_schema=SCHEMA, few_shot=FewShotRecipe(examples="train.jsonl")), path)
    first = deploy_alias(db, settings, "bot", "structured.yaml", "me", allow_run_dirs=True).to_target
    assert first.startswith("recipe:" + str(settings.data_dir / "recipes" / "structured-"))
    assert deploy_alias(db, settings, "bot", str(path), "me", allow_run_dirs=True).to_target == first  # same content
    target = resolve_target(db, settings, "bot")
    assert (target.name, target.base, target.adapter) == ("bot", "smollm2-135m-instruct", None)
    assert target.recipe == first.removeprefix("recipe:")
    frozen = yaml.safe_load(Path(target.recipe).read_text(encoding="utf-8"))
    assert frozen["few_shot"]["examples"] == str(tmp_path / "train.jsonl")

    save_recipe(Recipe(name="structured", max_tokens=5), path)  # editing the file changes nothing deployed ...
    assert resolve_target(db, settings, "bot").recipe == target.recipe
    second = deploy_alias(db, settings, "bot", str(path), "me", allow_run_dirs=True).to_target  # ... until deployed
    assert second != first
    assert repo.rollback_alias(db, "bot", "me").to_target == first


def test_a_recipe_on_a_run_answers_with_the_runs_adapter(store, tmp_path):
    db, settings = store
    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text("{}")
    (run / "run.json").write_text(json.dumps({"status": "succeeded", "model": "smollm2-135m-instruct"}))
    save_recipe(Recipe(name="fine-tune+structured", run=run, json_schema=SCHEMA), tmp_path / "ft.yaml")
    deploy_alias(db, settings, "ft", str(tmp_path / "ft.yaml"), "me", allow_run_dirs=True)
    target = resolve_target(db, settings, "ft")
    assert (target.base, target.adapter) == ("smollm2-135m-instruct", str((run / "adapter").resolve()))
    (run / "run.json").unlink()  # the run went away after deploying: a request is told what to do
    with pytest.raises(ModelError, match=r"recipe 'fine-tune\+structured': `run: .*run` is not a `tunesmith train`"):
        resolve_target(db, settings, "ft")


def test_clients_cannot_name_a_recipe_path(store, tmp_path):
    db, settings = store
    path = tmp_path / "r.yaml"
    save_recipe(Recipe(name="r"), path)
    with pytest.raises(ModelError, match="does not exist"):  # the HTTP endpoint does not take files
        deploy_alias(db, settings, "bot", str(path), "remote")
    target = deploy_alias(db, settings, "bot", str(path), "me", allow_run_dirs=True).to_target
    with pytest.raises(ModelError, match="does not exist"):  # nor the stored target itself
        resolve_target(db, settings, target)
    deploy_alias(db, settings, "prod", "bot", "remote")  # an alias of the recipe alias is fine
    assert resolve_target(db, settings, "prod").recipe == target.removeprefix("recipe:")


def test_server_applies_the_recipe_prompt_format_and_budget(tmp_path, tiny_model_dir, smol_tokenizer):
    from tunesmith.models.template import prompt_ids

    docs = tmp_path / "docs.jsonl"
    rows = [
        {"id": "otters", "text": "Sea otters hold hands while they sleep so they do not drift apart."},
        {"id": "volcano", "text": "Mount Etna is an active volcano on the east coast of Sicily."},
    ]
    docs.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    recipe = Recipe(
        name="rag",
        model=str(tiny_model_dir),
        system_prompt="Answer from the context.",
        json_schema=SCHEMA,
        rag=RagSettings(docs=docs, k=1),
        index_dir=tmp_path / "index",
        max_tokens=16,
    )
    save_recipe(recipe, tmp_path / "rag.yaml")
    settings = ServeSettings(data_dir=tmp_path / "data", api_keys=[API_KEY], port=0, base_models=[str(tiny_model_dir)])
    messages = [{"role": "system", "content": "ignored"}, {"role": "user", "content": "Where is Mount Etna?"}]
    with serve_app(settings) as api:
        deploy_alias(api.ctx.db, settings, "kb", str(tmp_path / "rag.yaml"), "me", allow_run_dirs=True)
        reply = api.client.chat.completions.create(model="kb", messages=messages, temperature=0)
        free = api.client.chat.completions.create(
            model="kb", messages=messages, temperature=0, max_tokens=3, response_format={"type": "text"}
        )
        stream = api.client.chat.completions.create(model="kb", messages=messages, temperature=0, stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        alias = api.client.get("/aliases/kb", cast_to=object)
        listed = [m.id for m in api.client.models.list()]

    expected = RecipePrompter(recipe).prepare([messages])[0]
    assert "Sicily" in expected[-1]["content"] and "otters" not in expected[-1]["content"]  # the top passage
    assert expected[0] == {"role": "system", "content": "Answer from the context."}
    assert reply.model == "kb" and free.model == "kb"  # the name the client sent, as for every alias
    assert reply.usage.prompt_tokens == len(prompt_ids(smol_tokenizer, expected))
    assert json.loads(reply.choices[0].message.content)["sentiment"] in ("positive", "negative")  # recipe schema
    assert reply.usage.completion_tokens <= 16  # the recipe's max_tokens
    assert streamed == reply.choices[0].message.content
    assert free.usage.completion_tokens <= 3 and free.usage.prompt_tokens == reply.usage.prompt_tokens
    assert alias["recipe"]["name"] == "rag" and "top-1 bm25 passages from docs.jsonl" in alias["recipe"]["description"]
    assert "kb" in listed
