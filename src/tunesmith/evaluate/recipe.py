"""A recipe: base model (or fine-tuned run) + system prompt + few-shot selection + JSON schema + RAG index.

Every rung of the decision ladder is a recipe, and a recipe is deployable: `tunesmith eval`/`decide` build each
prompt with :class:`RecipePrompter`, and the server applies the same prompter to a request whose model is an
alias of a recipe, so a deployed recipe answers exactly as it was measured (same prompt tokens, same grammar).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from tunesmith.core.atomic import write_text_atomic
from tunesmith.core.config import load_config
from tunesmith.core.errors import ConfigError
from tunesmith.evaluate.items import TestItem, fixed_shots, load_items, nearest_by_question
from tunesmith.evaluate.retrieval import RagSettings
from tunesmith.models.bundled import BUNDLED_NAME

Messages = list[dict[str, Any]]


class FewShotRecipe(BaseModel):
    """Training examples shown as prior turns."""

    model_config = ConfigDict(extra="forbid")
    examples: Path = Field(description="Chat JSONL the shots are drawn from (the training split).")
    k: int = Field(default=4, ge=1, le=64, description="Number of examples shown.")
    selection: Literal["fixed", "nearest"] = Field(
        default="fixed", description="`fixed` (seeded, the same for every query) or `nearest` (MiniLM similarity)."
    )
    seed: int = Field(default=0, description="Seed of the fixed selection.")


class Recipe(BaseModel):
    """A deployable prompting strategy over a base model or a fine-tuned run (YAML keys are these fields)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(description="The rung's name (e.g. `structured`, `rag`, `fine-tune`).")
    model: str = Field(default=BUNDLED_NAME, description="Base model (bundled name, HF directory).")
    run: Path | None = Field(default=None, description="A `tunesmith train` run directory to answer with.")
    system_prompt: str | None = Field(
        default=None, description="Replaces the request's system message (None: keep the request's own)."
    )
    few_shot: FewShotRecipe | None = Field(default=None, description="Shots placed before the question.")
    json_schema: dict[str, Any] | None = Field(
        default=None, description="Answers are constrained to this JSON Schema (structured output)."
    )
    rag: RagSettings | None = Field(default=None, description="Retrieved passages placed in the question.")
    index_dir: Path | None = Field(default=None, description="Where the RAG index is cached.")
    max_tokens: int = Field(default=64, ge=1, description="Answer length limit.")
    temperature: float = Field(
        default=0.0, ge=0, description="Sampling temperature a request gets when it sets none (0 = greedy)."
    )

    @property
    def response_format(self) -> dict[str, Any] | None:
        """The OpenAI ``response_format`` this recipe answers under (None: free text)."""
        if self.json_schema is None:
            return None
        return {"type": "json_schema", "json_schema": {"name": "answer", "schema": self.json_schema, "strict": True}}


class RecipePrompter:
    """Turns conversations into the prompts a recipe sends (loads shots, embeddings and the index lazily)."""

    def __init__(self, recipe: Recipe, shots: list[TestItem] | None = None) -> None:
        """``shots``: the few-shot pool when the caller has loaded it already (else read from the recipe)."""
        self.recipe = recipe
        self._shots = shots
        self._shot_vecs: Any = None
        self._index: Any = None

    def prepare(self, conversations: list[Messages]) -> list[Messages]:
        """The prompt of each conversation: system prompt, then shots, then retrieved context."""
        return self.prepare_with_passages(conversations)[0]

    def prepare_with_passages(self, conversations: list[Messages]) -> tuple[list[Messages], list[list[Any]] | None]:
        """The prompts, and the passages retrieved for each (None without RAG) for callers that score retrieval."""
        r = self.recipe
        out = [with_system(m, r.system_prompt) if r.system_prompt is not None else list(m) for m in conversations]
        if r.few_shot is not None:
            out = [insert_shots(m, shots) for m, shots in zip(out, self.shots_for(out), strict=True)]
        passages = None
        if r.rag is not None:
            from tunesmith.evaluate.retrieval import with_context

            passages = self.retrieve(out)
            out = [with_context(m, p, r.rag.template) for m, p in zip(out, passages, strict=True)]
        return out, passages

    def retrieve(self, conversations: list[Messages]) -> list[list[Any]]:
        """The top-k passages for each conversation's last user message."""
        from tunesmith.evaluate.retrieval import build_index

        assert self.recipe.rag is not None
        if self._index is None:
            cache = self.recipe.index_dir or self.recipe.rag.docs.parent / ".tunesmith-index"
            self._index = build_index(self.recipe.rag, cache)
        return self._index.search_many([last_user(m) for m in conversations], self.recipe.rag.k)

    def shots_for(self, conversations: list[Messages]) -> list[list[Messages]]:
        """For each conversation, the example conversations (each ending with its answer) to show."""
        fs = self.recipe.few_shot
        assert fs is not None
        if self._shots is None:
            self._shots = load_items(fs.examples)
        if fs.selection == "fixed":
            shots = fixed_shots(self._shots, fs.k, fs.seed)
            return [[shot_turns(s) for s in shots] for _ in conversations]
        if self._shot_vecs is None:
            from tunesmith.evaluate.embeddings import embed

            self._shot_vecs = embed([s.question for s in self._shots])
        questions = [last_user(m) for m in conversations]
        chosen = nearest_by_question(self._shots, questions, fs.k, self._shot_vecs)
        return [[shot_turns(s) for s in row] for row in chosen]


def shot_turns(item: TestItem) -> Messages:
    """A training item as turns to show: its non-system messages and its answer."""
    return [m for m in item.messages if m["role"] != "system"] + [{"role": "assistant", "content": item.reference}]


def insert_shots(messages: Messages, shots: list[Messages]) -> Messages:
    """``messages`` with the shots' turns inserted after the system prompt."""
    system = [m for m in messages if m["role"] == "system"][:1]
    rest = [m for m in messages if m not in system]
    return system + [turn for shot in shots for turn in shot] + rest


def with_system(messages: Messages, prompt: str) -> Messages:
    """``messages`` with the system message replaced by ``prompt``."""
    return [{"role": "system", "content": prompt}] + [m for m in messages if m["role"] != "system"]


def last_user(messages: Messages) -> str:
    """The content of the last user message ('' if none)."""
    return next((str(m.get("content") or "") for m in reversed(messages) if m["role"] == "user"), "")


def save_recipe(recipe: Recipe, path: Path) -> None:
    """Write a recipe as YAML (atomically), paths absolute so it deploys from any working directory."""
    data = recipe.model_dump(mode="json", exclude_none=True)
    write_text_atomic(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def load_recipe(path: Path) -> Recipe:
    """Read a recipe YAML.

    Raises:
        ConfigError: missing file, bad YAML or invalid fields (all listed).
    """
    if not Path(path).is_file():
        raise ConfigError(f"recipe {path} does not exist", "pass a recipe YAML written by `tunesmith decide`")
    return load_config(Recipe, Path(path))
