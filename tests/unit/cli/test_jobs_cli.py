"""`tunesmith jobs ...`: the errors raised before any request name the flag or file to fix."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tunesmith.cli import app
from tunesmith.core.errors import DatasetError, ServeError


def test_jobs_list_without_a_key_names_the_flag(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result = CliRunner().invoke(app, ["jobs", "list", "--base-url", "http://127.0.0.1:9/v1"])
    assert isinstance(result.exception, ServeError)
    assert "no API key" in result.exception.message and "--api-key" in result.exception.hint


def test_jobs_create_checks_the_training_file_before_uploading(tmp_path):
    args = [
        "jobs",
        "create",
        str(tmp_path / "missing.jsonl"),
        "--api-key",
        "k",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--no-wait",
    ]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, DatasetError)
    with pytest.raises(DatasetError, match="missing.jsonl: no such file"):
        raise result.exception
