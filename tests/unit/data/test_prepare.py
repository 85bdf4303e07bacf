"""prepare_dataset on a tiny real file: the folder's artifacts, and every error it raises."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunesmith.core.config import load_config
from tunesmith.core.errors import ConfigError, DatasetError
from tunesmith.data.config import DataConfig
from tunesmith.data.near_dup import normalize
from tunesmith.data.prepare import prepare_dataset
from tunesmith.data.source import DataSource, detect_kind

REPO = Path(__file__).parents[3]
TEMPLATE = "Write one line about the {} in the {} room, mentioning its colour and its {} please"


def _row(i: int, user: str | None = None, **meta: object) -> dict:
    user = user or TEMPLATE.format(f"lamp{i}", f"hall{i}", f"size{i}")
    return {
        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": f"answer {i}"}],
        **({"metadata": meta} if meta else {}),
    }


def _write(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), "utf-8")
    return path


@pytest.fixture()
def source(tmp_path) -> Path:
    rows: list = [_row(i, topic="a" if i % 2 else "b") for i in range(30)]
    rows.insert(3, _row(0))  # line 4: exact duplicate of line 1
    rows.insert(10, _row(8, TEMPLATE.format("lamp8", "hall8", "size8").upper() + "!"))  # line 11: near dup of 9
    rows.insert(20, "{not json")  # line 21: invalid
    rows.insert(25, {"messages": [{"role": "user", "content": "hi"}]})  # line 26: no assistant turn
    return _write(tmp_path / "src.jsonl", rows)


def _cfg(src: Path, out: Path, **updates: object) -> DataConfig:
    data = {"source": {"path": str(src)}, "model": None, "output_dir": str(out), **updates}
    return DataConfig.model_validate(data)


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_prepare_writes_leak_free_splits_manifest_report_and_rejects(source, tmp_path):
    out = tmp_path / "prepared"
    result = prepare_dataset(_cfg(source, out, split={"train": 0.6, "val": 0.2, "test": 0.2, "seed": 3}))
    assert result.output_dir == out
    assert sorted(p.name for p in out.iterdir()) == [
        "config.yaml",
        "manifest.json",
        "rejects.jsonl",
        "test.jsonl",
        "train.jsonl",
        "val.jsonl",
        "validation.json",
    ]
    splits = {s: _read(out / f"{s}.jsonl") for s in ("train", "val", "test")}
    assert {s: len(rows) for s, rows in splits.items()} == {"train": 18, "val": 6, "test": 6}
    users = [normalize(r["messages"][0]["content"]) for rows in splits.values() for r in rows]
    assert len(users) == len(set(users)) == 30  # duplicates dropped, nothing else lost

    rejects = _read(out / "rejects.jsonl")
    assert [(r["line"], r["reason"].split(":")[0].split(" of ")[0]) for r in rejects] == [
        (21, "invalid_json"),
        (26, "no_assistant_message"),
        (4, "exact duplicate"),
        (11, "near duplicate"),
    ]
    assert all(r["file"] == str(source) and r["raw"] for r in rejects)
    assert rejects[2]["reason"] == "exact duplicate of line 1"

    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["counts"] == {
        "records": 34,
        "invalid": 2,
        "exact_duplicates": 1,
        "near_duplicates": 1,
        "train": 18,
        "val": 6,
        "test": 6,
    }
    assert manifest["source"]["path"] == str(source) and len(manifest["source"]["sha256"]) == 64
    assert manifest["source"]["kind"] == "chat" and manifest["tokens"] is None
    assert set(manifest["files"]) == {"train.jsonl", "val.jsonl", "test.jsonl", "rejects.jsonl"}
    assert manifest["config"]["split"]["seed"] == 3 and manifest["config"]["dedup"]["threshold"] == 0.85
    report = json.loads((out / "validation.json").read_text("utf-8"))
    assert report["counts"]["invalid_json"] == 1 and report["n_examples"] == 32
    assert load_config(DataConfig, out / "config.yaml") == _cfg(
        source, out, split={"train": 0.6, "val": 0.2, "test": 0.2, "seed": 3}
    )
    assert result.counts == manifest["counts"] and result.files["manifest"] == out / "manifest.json"


def test_same_seed_same_split_and_kept_duplicates_stay_together(source, tmp_path):
    a = prepare_dataset(_cfg(source, tmp_path / "a", dedup={"exact": False, "near": False}))
    b = prepare_dataset(_cfg(source, tmp_path / "b", dedup={"exact": False, "near": False}))
    assert a.counts == b.counts and a.counts["exact_duplicates"] == 0
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in ("train.jsonl",))
    where = {}
    for s in ("train", "val", "test"):
        for r in _read(tmp_path / "a" / f"{s}.jsonl"):
            where.setdefault(normalize(r["messages"][0]["content"]), set()).add(s)
    assert len(where) == 30 and all(len(splits) == 1 for splits in where.values())


def test_group_by_keeps_a_metadata_group_in_one_split(tmp_path):
    rows = [_row(i, conversation=f"c{i // 5}") for i in range(40)]
    src = _write(tmp_path / "g.jsonl", rows)
    prepare_dataset(_cfg(src, tmp_path / "out", split={"group_by": "conversation", "seed": 1}))
    split_of: dict[str, set] = {}
    for s in ("train", "val", "test"):
        for r in _read(tmp_path / "out" / f"{s}.jsonl"):
            split_of.setdefault(r["metadata"]["conversation"], set()).add(s)
    assert len(split_of) == 8 and all(len(v) == 1 for v in split_of.values())


def test_token_counts_per_split_use_the_models_tokenizer(source, tmp_path, smol_tokenizer):
    cfg = _cfg(source, tmp_path / "t").model_copy(update={"model": "smollm2-135m-instruct"})
    result = prepare_dataset(cfg, tokenizer=smol_tokenizer)
    tokens = json.loads(result.files["manifest"].read_text("utf-8"))["tokens"]
    assert set(tokens) == {"train", "val", "test"} and tokens["train"] > tokens["val"] > 0


def test_too_few_valid_examples_is_an_error_and_writes_nothing(tmp_path):
    src = _write(tmp_path / "few.jsonl", [_row(i) for i in range(3)])
    out = tmp_path / "out"
    with pytest.raises(DatasetError, match=r"few\.jsonl: only 3 valid example\(s\); at least 10"):
        prepare_dataset(_cfg(src, out))
    assert not out.exists()


def test_a_missing_source_is_an_error(tmp_path):
    with pytest.raises(DatasetError, match=r"nope\.jsonl: no such file"):
        prepare_dataset(_cfg(tmp_path / "nope.jsonl", tmp_path / "out"))


def test_a_missing_stratify_key_names_the_config_key(source, tmp_path):
    with pytest.raises(ConfigError, match=r"split\.stratify: topic: 2 example\(s\) have no such key") as info:
        rows = [_row(i, topic="x") for i in range(12)] + [_row(12), _row(13)]
        prepare_dataset(_cfg(_write(tmp_path / "s.jsonl", rows), tmp_path / "o", split={"stratify": "topic"}))
    assert info.value.param == "split.stratify"
    assert "s.jsonl lines 13, 14" in str(info.value) and "split.stratify: label" in info.value.hint


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"split: Value error, train \+ val \+ test must be 1"):
        load_config(DataConfig, None, ["source.path=x.jsonl", "split.train=0.9"])
    with pytest.raises(ConfigError, match=r"dedup\.treshold: unknown key"):
        load_config(DataConfig, None, ["source.path=x.jsonl", "dedup.treshold=0.9"])
    with pytest.raises(ConfigError, match=r"source: Field required"):
        load_config(DataConfig, None, [])


def test_the_kind_rule_and_the_preference_detector(assets):
    assert DataSource(path=assets / "preference.jsonl").record_kind() == "auto"  # preference files: per line
    assert DataSource(path=assets / "valid.jsonl").record_kind() == "chat"
    assert DataSource(path=Path("x.csv"), format="csv").record_kind() == "chat"
    assert DataSource(path=Path("x.jsonl"), kind="preference").record_kind() == "auto"
    assert detect_kind(assets / "preference.jsonl") == "preference"
    assert detect_kind(assets / "valid.jsonl") == "chat"


def test_the_shipped_sentiment_config_prepares_the_example_data(tmp_path):
    overrides = ["model=null", f"output_dir={tmp_path / 'sentiment'}"]
    cfg = load_config(DataConfig, REPO / "configs" / "data" / "sentiment.yaml", overrides)
    cfg = cfg.model_copy(update={"source": cfg.source.model_copy(update={"path": REPO / cfg.source.path})})
    result = prepare_dataset(cfg)
    assert result.counts["records"] == 800 and result.counts["invalid"] == 0
    assert result.counts["train"] + result.counts["val"] + result.counts["test"] == 800 - (
        result.counts["exact_duplicates"] + result.counts["near_duplicates"]
    )
    labels = {
        s: [r["messages"][-1]["content"] for r in _read(tmp_path / "sentiment" / f"{s}.jsonl")]
        for s in ("train", "val", "test")
    }
    for answer in set(labels["train"]):  # stratified: each label's share is about equal in every split
        shares = [labels[s].count(answer) / len(labels[s]) for s in labels]
        assert max(shares) - min(shares) < 0.03, answer


def test_the_prepare_command_prints_the_counts_and_fails_on_a_bad_key(source, tmp_path):
    from typer.testing import CliRunner

    from tunesmith.cli import app

    config = tmp_path / "data.yaml"
    config.write_text(f"source:\n  path: {source}\nmodel: null\noutput_dir: {tmp_path / 'out'}\n", "utf-8")
    ok = CliRunner().invoke(app, ["data", "prepare", str(config), "--set", "split.seed=2"])
    assert ok.exit_code == 0, ok.output
    assert "train=24, val=3, test=3" in ok.output and "dropped 2 invalid, 1 exact and 1 near" in ok.output
    assert json.loads((tmp_path / "out" / "manifest.json").read_text("utf-8"))["config"]["split"]["seed"] == 2
    bad = CliRunner().invoke(app, ["data", "prepare", str(config), "--set", "split.sed=2"])
    assert bad.exit_code == 1 and isinstance(bad.exception, ConfigError)
    assert "split.sed: unknown key" in str(bad.exception)


def test_every_command_reads_chat_and_preference_lines_by_one_rule(tmp_path):
    from tunesmith.core.schema import PreferenceExample
    from tunesmith.data.source import DataSource

    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    pref = {
        "input": {"messages": [{"role": "user", "content": "hi"}]},
        "preferred_output": [{"role": "assistant", "content": "hello"}],
        "non_preferred_output": [{"role": "assistant", "content": "go away"}],
    }
    chat_first = [r.example for r in DataSource.of(_write(tmp_path / "c.jsonl", [chat, pref])).records()]
    assert chat_first[0] is not None and chat_first[1] is None  # a chat file: the DPO line is a bad chat record
    pref_first = [r.example for r in DataSource.of(_write(tmp_path / "p.jsonl", [pref, chat])).records()]
    assert isinstance(pref_first[0], PreferenceExample) and pref_first[1] is not None  # preference files: per line
