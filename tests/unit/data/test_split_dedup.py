"""Split determinism and duplicate grouping, dedup, stats and preview on small real files."""

from __future__ import annotations

import json

import pytest

from tunesmith.core.errors import TunesmithError
from tunesmith.data.dedup import dedup_file
from tunesmith.data.near_dup import normalize
from tunesmith.data.preview import preview_examples
from tunesmith.data.split import SplitConfig, split_dataset
from tunesmith.data.stats import compute_stats, save_histogram_png

BASE = "Please summarise the customer review about the {} we sold in one sentence keeping the tone and key {}"


def _rows(n: int = 40) -> list[dict]:
    rows = []
    for i in range(n):
        label = "pos" if i % 4 else "neg"
        user = BASE.format(f"item{i}", f"complaint{i}")
        rows.append({"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": label}]})
        if i % 5 == 0:  # a near-duplicate (case/punctuation) of the same example
            rows.append(
                {
                    "messages": [
                        {"role": "user", "content": user.upper() + "!!"},
                        {"role": "assistant", "content": label},
                    ]
                }
            )
    return rows


@pytest.fixture()
def data_file(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in _rows()), encoding="utf-8")
    return path


def _read(path):
    return [json.loads(line) for line in open(path, encoding="utf-8")]


def test_split_is_deterministic_and_keeps_near_duplicates_together(data_file, tmp_path):
    cfg = SplitConfig(train=0.6, val=0.2, test=0.2, seed=7)
    a = split_dataset(data_file, cfg, tmp_path / "a")
    b = split_dataset(data_file, cfg, tmp_path / "b")
    c = split_dataset(data_file, cfg.model_copy(update={"seed": 8}), tmp_path / "c")
    files = {s: _read(tmp_path / "a" / f"{s}.jsonl") for s in ("train", "val", "test")}
    assert all(_read(tmp_path / "b" / f"{s}.jsonl") == files[s] for s in files)
    assert _read(tmp_path / "c" / "train.jsonl") != files["train"]
    assert sum(a.counts.values()) == 48 and a.counts == b.counts
    where = {normalize(r["messages"][0]["content"]): s for s, rows in files.items() for r in rows}
    for s, rows in files.items():
        for r in rows:
            assert where[normalize(r["messages"][0]["content"])] == s
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["seed"] == 7 and manifest["counts"] == a.counts and len(manifest["source_sha256"]) == 64
    assert c.counts["train"] > c.counts["val"]


def test_stratified_split_keeps_label_shares(data_file, tmp_path):
    r = split_dataset(data_file, SplitConfig(train=0.5, val=0.5, test=0.0, seed=1, stratify="label"), tmp_path / "s")
    labels = {s: [x["messages"][-1]["content"] for x in _read(tmp_path / "s" / f"{s}.jsonl")] for s in ("train", "val")}
    assert abs(labels["train"].count("neg") - labels["val"].count("neg")) <= 2
    assert r.counts["test"] == 0


def test_split_rejects_bad_input(data_file, tmp_path):
    with pytest.raises(ValueError, match="must be 1"):
        SplitConfig(train=0.5, val=0.1, test=0.1)
    with pytest.raises(TunesmithError, match="have no such key"):
        split_dataset(data_file, SplitConfig(stratify="topic"), tmp_path / "x")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"messages": []}\n', encoding="utf-8")
    with pytest.raises(TunesmithError, match="1 invalid record"):
        split_dataset(bad, SplitConfig(), tmp_path / "y")


def test_dedup_drops_duplicates_and_writes_them_to_rejects(data_file, tmp_path):
    r = dedup_file(data_file, tmp_path / "out.jsonl")
    assert (r.kept, r.removed_near, r.removed_exact) == (40, 8, 0)
    removed = _read(r.rejects)
    assert len(removed) == 8 and all("near duplicate of line" in x["reason"] for x in removed)
    assert len(_read(r.out)) + len(removed) == 48


def test_stats_counts_tokens_with_the_real_tokenizer(data_file, smol_tokenizer, tmp_path):
    s = compute_stats(data_file, tokenizer=smol_tokenizer, epochs=2)
    assert s.n_examples == 48 and s.roles == {"user": 48, "assistant": 48}
    assert 0 < s.trained_tokens.min <= s.trained_tokens.max < s.tokens.min
    assert s.billed_tokens == s.tokens.total * 2
    by_model = {c.model: c for c in s.costs}
    assert by_model["gpt-4o-mini"].usd == pytest.approx(s.billed_tokens * 3.0 / 1e6)
    assert sum(c for _, _, c in s.histogram) == 48
    png = save_histogram_png(s, tmp_path / "h.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(TunesmithError, match="must be at least 1"):
        compute_stats(data_file, tokenizer=smol_tokenizer, epochs=0)


def test_preview_marks_only_the_answer_as_trained(data_file, smol_tokenizer):
    (p,) = preview_examples(data_file, n=1, tokenizer=smol_tokenizer)
    trained = "".join(t for t, on in p.segments if on)
    assert trained.startswith("neg") and "<|im_end|>" in trained and "summarise" not in trained
    assert 0 < p.n_trained < p.n_tokens


def test_a_long_shared_system_prompt_does_not_make_examples_near_duplicates():
    from tunesmith.core.schema import ChatExample
    from tunesmith.data.near_dup import DuplicateIndex

    system = " ".join(f"rule{i} applies to every answer you give" for i in range(40))  # ~280 words
    questions = [
        "what is the capital of france",
        "how do i boil an egg",
        "name three prime numbers please",
        "who wrote the odyssey originally",
        "why is the sky blue at noon",
    ]
    index = DuplicateIndex()
    for q in questions:
        index.add(
            ChatExample.model_validate(
                {
                    "messages": [
                        {"role": "system", "content": system},
                        {"role": "user", "content": q},
                        {"role": "assistant", "content": f"an answer about {q}"},
                    ]
                }
            )
        )
    groups = index.groups()
    assert groups.near == [] and groups.exact == []
