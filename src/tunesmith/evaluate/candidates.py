"""Candidates as recipes: zero-shot, system prompt, few-shot (fixed or nearest), structured, RAG, fine-tuned runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tunesmith.core.errors import EvalError
from tunesmith.evaluate.config import CandidateSpec
from tunesmith.evaluate.infer_schema import infer_schema
from tunesmith.evaluate.items import TestItem
from tunesmith.evaluate.recipe import FewShotRecipe, Recipe


def resolve_schema(spec: CandidateSpec, train: list[TestItem] | None) -> dict[str, Any] | None:
    """The JSON Schema a candidate answers under: read from ``json_schema`` or inferred from training answers.

    Raises:
        EvalError: the schema file is missing or not JSON, or the training answers are free text.
    """
    if spec.json_schema is None:
        return None
    if spec.json_schema != "infer":
        path = Path(spec.json_schema)
        if not path.is_file():
            raise EvalError(f"{spec.label}: json_schema file {path} does not exist", "pass a JSON Schema file")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise EvalError(f"{path}: not valid JSON ({exc})", "fix the schema file") from exc
    schema = infer_schema([t.reference for t in train or []])
    if schema is None:
        raise EvalError(
            f"{spec.label}: the training answers are free text, so no JSON Schema can be inferred",
            "give `json_schema: FILE`, or drop the structured candidate for this task",
        )
    return schema


def recipe_for(
    spec: CandidateSpec,
    schema: dict[str, Any] | None,
    train_file: Path | None,
    seed: int,
    max_tokens: int,
    index_dir: Path | None = None,
) -> Recipe:
    """The recipe a (local) candidate answers with: the same object `decide` saves and `deploy` serves."""
    system = None
    if spec.kind == "system":
        system = spec.prompt if spec.prompt else Path(spec.prompt_file).read_text(encoding="utf-8").strip()
    few_shot = None
    if spec.kind == "few-shot":
        assert train_file is not None  # EvalConfig requires train_file for few-shot
        few_shot = FewShotRecipe(examples=Path(train_file).resolve(), k=spec.k, selection=spec.selection, seed=seed)
    return Recipe(
        name=spec.label,
        model=spec.model,
        run=Path(spec.path).resolve() if spec.kind == "run" and spec.path else None,
        system_prompt=system,
        few_shot=few_shot,
        json_schema=schema,
        rag=spec.rag.model_copy(update={"docs": spec.rag.docs.resolve()}) if spec.rag else None,
        index_dir=index_dir.resolve() if index_dir and spec.rag else None,
        max_tokens=max_tokens,
    )
