"""Candidates as recipes: zero-shot, system prompt, few-shot (fixed or nearest), structured, RAG, fine-tuned runs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

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


@dataclass
class ResolvedRun:
    """What a run directory holds: the base model, and the adapter to attach (None for merged models)."""

    model: str
    adapter: Path | None
    metrics_file: Path | None
    trained_tokens: float | None


def resolve_run(path: Path) -> ResolvedRun:
    """Find the model of a training run directory (``adapter/`` + base model, or a merged ``model/``).

    Raises:
        EvalError: the directory is missing or holds neither.
    """
    path = Path(path)
    if not path.is_dir():
        raise EvalError(f"run directory {path} does not exist", "pass a directory written by `tunesmith train`")
    info = _read_json(path / "run.json")
    metrics = path / "metrics.jsonl"
    extra = (metrics if metrics.exists() else None, info.get("trained_tokens"))
    if (path / "model" / "config.json").exists():
        return ResolvedRun(str(path / "model"), None, *extra)
    adapter = path / "adapter" if (path / "adapter" / "adapter_config.json").exists() else None
    if adapter is None and (path / "adapter_config.json").exists():
        adapter = path
    if adapter is None:
        raise EvalError(
            f"{path} has neither adapter/ (with adapter_config.json) nor model/ (with config.json)",
            "point to the output_dir of `tunesmith train`, or export a merged model first",
        )
    base = info.get("model") or _config_model(path / "config.yaml")
    base = base or _read_json(adapter / "adapter_config.json").get("base_model_name_or_path")
    if not base:
        raise EvalError(
            f"{path}: cannot tell the base model of the adapter",
            "add `model:` to the run's config.yaml or run.json",
        )
    return ResolvedRun(str(base), adapter, *extra)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise EvalError(f"{path}: not valid JSON ({exc})", "repair or remove the file") from exc
    return data if isinstance(data, dict) else {}


def _config_model(path: Path) -> str | None:
    if not path.exists():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return data.get("model") if isinstance(data, dict) else None
