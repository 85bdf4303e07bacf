"""`tunesmith data ...` through typer's CliRunner: exit codes and printed results."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from tests.unit.data.conftest import DATA
from tunesmith.cli import app
from tunesmith.core.errors import DatasetError

runner = CliRunner()


def test_validate_ok_and_failing_files(tmp_path):
    ok = runner.invoke(app, ["data", "validate", str(DATA / "valid.jsonl"), "--no-tokens"])
    assert ok.exit_code == 0 and "OK" in ok.output and "few_examples" in ok.output
    bad = runner.invoke(
        app,
        [
            "data",
            "validate",
            str(DATA / "unknown_role.jsonl"),
            "--no-tokens",
            "--rejects",
            str(tmp_path / "r.jsonl"),
        ],
    )
    assert bad.exit_code == 1 and isinstance(bad.exception, DatasetError)
    assert "unknown_role.jsonl:4 messages.0.role" in bad.output
    assert json.loads((tmp_path / "r.jsonl").read_text())["line"] == 4


def test_validate_json_output():
    r = runner.invoke(app, ["data", "validate", str(DATA / "truncated_line.jsonl"), "--no-tokens", "--json"])
    start = r.output.index("{")
    data = json.loads(r.output[start:])
    assert r.exit_code == 1 and data["counts"] == {"truncated_line": 1, "few_examples": 1}


def test_validate_with_model_finds_special_tokens():
    r = runner.invoke(
        app,
        [
            "data",
            "validate",
            str(DATA / "special_token_in_content.jsonl"),
            "--model",
            "smollm2-135m-instruct",
        ],
    )
    assert r.exit_code == 0 and "special_token_in_content" in r.output


def test_stats_split_convert_preview(tmp_path):
    src = str(DATA / "valid.jsonl")
    s = runner.invoke(app, ["data", "stats", src, "--epochs", "2", "--plot", str(tmp_path / "h.png")])
    assert s.exit_code == 0 and "gpt-4o-mini" in s.output and "█" in s.output and (tmp_path / "h.png").exists()
    sp = runner.invoke(app, ["data", "split", src, "--seed", "3", "--out", str(tmp_path / "sp")])
    assert sp.exit_code == 0 and "train=" in sp.output and (tmp_path / "sp" / "manifest.json").exists()
    bad = runner.invoke(app, ["data", "split", src, "--train", "0.9"])
    assert bad.exit_code == 1 and "must be 1" in str(bad.exception)
    c = runner.invoke(app, ["data", "convert", src, "--to", "sharegpt", "--out", str(tmp_path / "s.jsonl")])
    assert c.exit_code == 0 and "wrote 12 record(s)" in c.output
    p = runner.invoke(app, ["data", "preview", src, "-n", "1"])
    assert p.exit_code == 0 and "line 1:" in p.output and "trained" in p.output
    d = runner.invoke(app, ["data", "dedup", str(DATA / "exact_duplicate.jsonl"), "--out", str(tmp_path / "d.jsonl")])
    assert d.exit_code == 0 and "removed 1 exact" in d.output
