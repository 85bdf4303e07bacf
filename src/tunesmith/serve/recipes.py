"""Recipes behind aliases: a deployed recipe answers requests that name its alias, as it was measured.

`tunesmith deploy RECIPE.yaml --alias NAME` freezes a copy of the recipe in ``<data_dir>/recipes/`` (named by
its content's hash) and points the alias at ``recipe:<absolute path of the copy>``. A request whose ``model``
ends at such a target gets the recipe's prompt (system prompt, few-shot turns, retrieved context, built by the
same :class:`~tunesmith.evaluate.recipe.RecipePrompter` evaluation used), and the recipe's ``response_format``
and ``max_tokens`` unless the request sets its own.
"""

from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunesmith.core.errors import ConfigError, ModelError, TunesmithError
from tunesmith.evaluate.recipe import Recipe, RecipePrompter, load_recipe, save_recipe
from tunesmith.models.structured import StructuredOutputError, grammar_for
from tunesmith.serve.chat_schemas import ChatCompletionCreate
from tunesmith.serve.schemas import RecipeSummary

RECIPE_PREFIX = "recipe:"  # an alias target ``recipe:/abs/data_dir/recipes/<name>-<hash>.yaml``
RECIPE_SUFFIXES = (".yaml", ".yml")
REDEPLOY_HINT = "deploy the recipe again: `tunesmith deploy RECIPE.yaml --alias NAME`"
Messages = list[dict[str, Any]]


def is_recipe_file(model: str) -> bool:
    """Whether a deploy target names a recipe YAML file (rather than a model)."""
    return Path(model).suffix.lower() in RECIPE_SUFFIXES


def recipe_path(target: str) -> str | None:
    """The frozen recipe file an alias target names, or None for any other target."""
    return target[len(RECIPE_PREFIX) :] if target.startswith(RECIPE_PREFIX) else None


def with_absolute_paths(recipe: Recipe, base: Path) -> Recipe:
    """``recipe`` with its relative paths (run, few_shot.examples, rag.docs, index_dir) resolved against ``base``."""

    def absolute(p: Path | None) -> Path | None:
        return None if p is None else (base / p.expanduser()).resolve()

    update: dict[str, Any] = {"run": absolute(recipe.run), "index_dir": absolute(recipe.index_dir)}
    if recipe.few_shot is not None:
        update["few_shot"] = recipe.few_shot.model_copy(update={"examples": absolute(recipe.few_shot.examples)})
    if recipe.rag is not None:
        update["rag"] = recipe.rag.model_copy(update={"docs": absolute(recipe.rag.docs)})
    return recipe.model_copy(update=update)


def recipe_file_problems(recipe: Recipe) -> list[str]:
    """What in ``recipe`` cannot be served, besides its model: missing files, a schema that does not compile."""
    problems = []
    if recipe.few_shot is not None and not recipe.few_shot.examples.is_file():
        problems.append(f"few_shot.examples: {recipe.few_shot.examples} does not exist")
    if recipe.rag is not None and not recipe.rag.docs.exists():
        problems.append(f"rag.docs: {recipe.rag.docs} does not exist")
    try:
        grammar_for(recipe.response_format)
    except StructuredOutputError as exc:
        problems.append(f"json_schema: {exc}")
    return problems


def freeze_recipe(recipe: Recipe, data_dir: Path) -> Path:
    """Save ``recipe`` under ``data_dir/recipes/`` named by its content (an existing equal copy is reused)."""
    text = yaml.safe_dump(recipe.model_dump(mode="json", exclude_none=True), sort_keys=False, allow_unicode=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", recipe.name)[:40].lstrip(".") or "recipe"
    path = Path(data_dir) / "recipes" / f"{slug}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_recipe(recipe, path)
    return path


def read_deployed(path: str) -> Recipe:
    """Load a frozen recipe an alias points at.

    Raises:
        ModelError: the copy is missing or no longer valid (edited by hand, or from an incompatible version).
    """
    try:
        return load_recipe(Path(path))
    except ConfigError as exc:
        raise ModelError(f"the deployed recipe {path} cannot be read: {exc.message}", REDEPLOY_HINT) from exc


@dataclass
class DeployedRecipe:
    """A loaded recipe and its one prompter (few-shot embeddings and the RAG index load on first use)."""

    recipe: Recipe
    prompter: RecipePrompter
    lock: threading.Lock = field(default_factory=threading.Lock)

    def prepare(self, messages: Messages) -> Messages:
        """The prompt the recipe sends for ``messages`` (the prompter's lazy loading is not thread-safe).

        Raises:
            ModelError: a file the recipe reads (shots, documents) is gone or unreadable.
        """
        with self.lock:
            try:
                return self.prompter.prepare([messages])[0]
            except TunesmithError as exc:
                raise ModelError(
                    f"recipe {self.recipe.name!r} cannot build its prompt: {exc.message}",
                    "restore the files the recipe names, or " + REDEPLOY_HINT,
                    param="model",
                ) from exc


class RecipeBook:
    """The server's deployed recipes by path, each read once (the copies are immutable, so never stale)."""

    def __init__(self) -> None:
        self._entries: dict[str, DeployedRecipe] = {}
        self._lock = threading.Lock()

    def get(self, path: str) -> DeployedRecipe:
        """The deployed recipe at ``path``, loaded on first use.

        Raises:
            ModelError: the copy is missing or invalid.
        """
        with self._lock:
            entry = self._entries.get(path)
            if entry is None:
                recipe = read_deployed(path)
                entry = self._entries[path] = DeployedRecipe(recipe, RecipePrompter(recipe))
            return entry


def apply_recipe(
    deployed: DeployedRecipe, body: ChatCompletionCreate, messages: Messages
) -> tuple[ChatCompletionCreate, Messages]:
    """The request as the recipe sends it: its prompt, and its response_format, max_tokens and temperature
    unless the request sets them (a recipe is measured greedy: temperature 0 unless the recipe says otherwise)."""
    recipe, update = deployed.recipe, {}
    if body.temperature is None:
        update["temperature"] = recipe.temperature
    if body.response_format is None and recipe.response_format is not None:
        update["response_format"] = recipe.response_format
    if body.requested_tokens() is None:
        update["max_completion_tokens"] = recipe.max_tokens
    return body.model_copy(update=update), deployed.prepare(messages)


def summarize(recipe: Recipe) -> RecipeSummary:
    """What a recipe applies, in one line (``2 nearest shots from train.jsonl; JSON schema; max_tokens 12``)."""
    parts = []
    if recipe.system_prompt is not None:
        parts.append("system prompt")
    if recipe.few_shot is not None:
        parts.append(f"{recipe.few_shot.k} {recipe.few_shot.selection} shots from {recipe.few_shot.examples.name}")
    if recipe.json_schema is not None:
        parts.append("JSON schema")
    if recipe.rag is not None:
        parts.append(f"top-{recipe.rag.k} {recipe.rag.method} passages from {recipe.rag.docs.name}")
    parts.append(f"max_tokens {recipe.max_tokens}")
    model = str(recipe.run) if recipe.run is not None else recipe.model
    return RecipeSummary(name=recipe.name, model=model, description="; ".join(parts))
