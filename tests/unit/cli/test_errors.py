"""The CLI prints message + hint and exits 1 without a traceback; --debug shows it."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tunesmith", *args], capture_output=True, text=True, timeout=120)


def test_error_quoting_markup_like_text_prints_it_verbatim(tmp_path):
    bad = tmp_path / "[bold]x[/INST].yaml"
    proc = run_cli("train", str(bad))
    assert proc.returncode == 1
    assert "[/INST]" in proc.stderr and "does not exist" in proc.stderr and "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback(tmp_path):
    proc = run_cli("--debug", "train", str(tmp_path / "missing.yaml"))
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "ConfigError" in proc.stderr


def test_version_and_help():
    assert run_cli("--version").stdout.startswith("tunesmith ")
    for cmd in ([], ["data"], ["train"], ["eval"], ["serve"], ["demo"], ["jobs"]):
        proc = run_cli(*cmd, "--help")
        assert proc.returncode == 0 and "Usage" in proc.stdout, cmd


def run_wide(*args: str, **env: str) -> subprocess.CompletedProcess:
    """The CLI with a wide terminal, so rich does not fold long paths inside the message."""
    env = {**os.environ, "COLUMNS": "1000", **env}
    return subprocess.run(
        [sys.executable, "-m", "tunesmith", *args], capture_output=True, text=True, timeout=120, env=env
    )


def test_missing_price_file_prints_message_and_hint(tmp_path):
    proc = run_wide("costs", "--prices", str(tmp_path / "prices.yaml"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "prices.yaml (from --prices" in proc.stderr and "no such file" in proc.stderr and "hint:" in proc.stderr


def test_invalid_price_file_from_the_environment_fails_data_stats_cleanly(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n')
    prices = tmp_path / "prices.yaml"
    prices.write_text("models: [1, 2\n")
    proc = run_wide("data", "stats", str(data), TUNESMITH_PRICES=str(prices))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "is not valid YAML" in proc.stderr and "hint:" in proc.stderr


def test_an_unknown_serve_engine_names_the_choices_before_anything_starts(tmp_path):
    proc = run_wide("serve", "--engine", "tgi", "--data-dir", str(tmp_path / "serve"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "engine: Input should be 'continuous', 'static' or 'vllm'" in proc.stderr and "hint:" in proc.stderr
    assert not (tmp_path / "serve").exists()
