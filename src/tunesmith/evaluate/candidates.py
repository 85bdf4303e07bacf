"""Test items and candidates' prompts: zero-shot, few-shot (fixed or nearest), custom system prompt, runs."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunesmith.data.load import load_examples
from tunesmith.data.schema import ChatExample
from tunesmith.errors import DatasetError, EvalError
from tunesmith.evaluate.config import CandidateSpec


@dataclass
class TestItem:
    """One test example split into the prompt conversation and the reference answer."""

    index: int
    messages: list[dict[str, Any]]
    reference: str
    question: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def split_example(example: ChatExample, index: int, where: str) -> TestItem:
    """Split off the final assistant turn as the reference; the rest is the prompt."""
    msgs = example.for_template()
    if not msgs or msgs[-1]["role"] != "assistant" or not msgs[-1].get("content"):
        raise DatasetError(
            f"{where}: example {index + 1} does not end with an assistant answer",
            "each test example needs the reference answer as its last (assistant) message",
        )
    prompt = msgs[:-1]
    question = next((m.get("content") or "" for m in reversed(prompt) if m["role"] == "user"), "")
    return TestItem(index, prompt, msgs[-1]["content"], question)


def load_items(path: Path, limit: int | None = None) -> list[TestItem]:
    """Test (or training) items from a chat JSONL file; every bad example is reported at once."""
    examples = load_examples(path)
    if limit is not None:
        examples = examples[:limit]
    items, problems = [], []
    for i, ex in enumerate(examples):
        try:
            items.append(split_example(ex, i, str(path)))
        except DatasetError as exc:
            problems.append(exc.message)
    if problems:
        raise DatasetError(
            "\n".join(problems[:20]), "end every example with the assistant's reference answer"
        )
    return items


def fixed_shots(train: list[TestItem], k: int, seed: int) -> list[TestItem]:
    """``k`` training items drawn once with a seeded RNG (the same shots for every query)."""
    return random.Random(seed).sample(train, min(k, len(train)))


def nearest_shots(train: list[TestItem], items: list[TestItem], k: int) -> list[list[TestItem]]:
    """For each test item, the ``k`` training items whose questions are most similar (most similar last)."""
    from tunesmith.evaluate.embeddings import embed

    train_vecs = embed([t.question for t in train])
    test_vecs = embed([t.question for t in items])
    sims = test_vecs @ train_vecs.T  # (n_test, n_train); vectors are L2-normalized
    out = []
    for row in sims:
        top = row.argsort()[::-1][: min(k, len(train))]
        out.append([train[i] for i in reversed(top)])
    return out


def with_shots(item: TestItem, shots: list[TestItem]) -> list[dict[str, Any]]:
    """The item's prompt with the shots inserted as prior user/assistant turns after the system prompt."""
    system = [m for m in item.messages if m["role"] == "system"][:1]
    rest = [m for m in item.messages if m not in system]
    turns: list[dict[str, Any]] = []
    for shot in shots:
        turns += [m for m in shot.messages if m["role"] != "system"]
        turns.append({"role": "assistant", "content": shot.reference})
    return system + turns + rest


def with_system(item: TestItem, prompt: str) -> list[dict[str, Any]]:
    """The item's prompt with its system message replaced by ``prompt``."""
    return [{"role": "system", "content": prompt}] + [m for m in item.messages if m["role"] != "system"]


def build_prompts(
    spec: CandidateSpec, items: list[TestItem], train: list[TestItem] | None, seed: int
) -> list[list[dict[str, Any]]]:
    """The message list each test item is sent as, for one candidate."""
    if spec.kind == "few-shot":
        assert train is not None  # EvalConfig requires train_file for few-shot
        if spec.selection == "nearest":
            return [
                with_shots(it, shots)
                for it, shots in zip(items, nearest_shots(train, items, spec.k), strict=True)
            ]
        shots = fixed_shots(train, spec.k, seed)
        return [with_shots(it, shots) for it in items]
    if spec.kind == "system":
        text = spec.prompt if spec.prompt else Path(spec.prompt_file).read_text(encoding="utf-8").strip()
        return [with_system(it, text) for it in items]
    return [list(it.messages) for it in items]


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
        raise EvalError(
            f"run directory {path} does not exist", "pass a directory written by `tunesmith train`"
        )
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
