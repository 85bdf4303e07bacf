"""The committed countries example (examples/countries): loadable, grounded in its documents, split by country."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.advise.decide import recommend
from tunesmith.advise.profile import TaskProfile
from tunesmith.core.config import load_config
from tunesmith.data.load import load_examples

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "countries"
SPLITS = ("train", "val", "test")


def read_jsonl(path: Path) -> list[dict]:
    """Every JSON line of ``path``."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def docs() -> dict[str, dict]:
    return {d["id"]: d for d in read_jsonl(EXAMPLE / "docs.jsonl")}


@pytest.fixture(scope="module")
def records() -> dict[str, list[dict]]:
    return {name: read_jsonl(EXAMPLE / f"{name}.jsonl") for name in SPLITS}


@pytest.mark.parametrize("split", SPLITS)
def test_split_loads_with_tunesmith_loader(split: str, records: dict[str, list[dict]]) -> None:
    examples = load_examples(EXAMPLE / f"{split}.jsonl")
    assert len(examples) == len(records[split]) > 0
    assert [m.role for m in examples[0].messages] == ["system", "user", "assistant"]


def test_documents_are_unique_and_complete(docs: dict[str, dict]) -> None:
    lines = read_jsonl(EXAMPLE / "docs.jsonl")
    assert len(docs) == len(lines) == 249
    assert all(set(d) == {"id", "title", "text"} and d["title"] and d["text"] for d in lines)


def test_every_answer_is_in_its_gold_document(docs: dict[str, dict], records: dict[str, list[dict]]) -> None:
    for split, rows in records.items():
        for row in rows:
            meta, answer = row["metadata"], row["messages"][-1]["content"]
            assert meta["source"] in docs, (split, meta)
            assert answer in docs[meta["source"]]["text"], (split, answer)
            assert meta["value"] in answer and meta["entity"] in row["messages"][1]["content"]


def test_no_country_in_two_splits(records: dict[str, list[dict]]) -> None:
    countries = {name: {r["metadata"]["source"] for r in rows} for name, rows in records.items()}
    assert not countries["train"] & countries["test"]
    assert not countries["train"] & countries["val"]
    assert not countries["val"] & countries["test"]


def test_manifest_matches_the_files(records: dict[str, list[dict]]) -> None:
    manifest = json.loads((EXAMPLE / "manifest.json").read_text(encoding="utf-8"))
    assert {name: manifest["counts"][name]["total"] for name in SPLITS} == {n: len(r) for n, r in records.items()}
    assert set(manifest["overlap_countries"].values()) == {0}
    assert len(manifest["source"]["sha256"]) == 64
    assert all(r["messages"][0]["content"] == manifest["system_prompt"] for rows in records.values() for r in rows)


def test_profile_advises_rag() -> None:
    profile = load_config(TaskProfile, EXAMPLE / "profile.yaml")
    assert profile.changing_knowledge
    assert recommend(profile).approach == "RAG"
