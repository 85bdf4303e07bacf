"""`tunesmith deploy` / `rollback` on a server data dir (real SQLite), and their errors."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tunesmith.cli import app
from tunesmith.store import repo
from tunesmith.store.db import Database, default_database_url


def test_deploy_records_changes_and_rollback_restores_the_previous_target(tmp_path):
    Database(default_database_url(tmp_path)).close()  # what `tunesmith serve --data-dir` creates
    runner = CliRunner()
    first = runner.invoke(app, ["deploy", "smollm2-135m-instruct", "--alias", "prod", "--data-dir", str(tmp_path)])
    assert first.exit_code == 0, first.output
    second = runner.invoke(app, ["deploy", "smollm2", "--alias", "prod", "--data-dir", str(tmp_path)])
    assert "prod -> smollm2 (was smollm2-135m-instruct)" in second.output
    back = runner.invoke(app, ["rollback", "prod", "--data-dir", str(tmp_path)])
    assert back.exit_code == 0 and "prod -> smollm2-135m-instruct" in back.output
    db = Database(default_database_url(tmp_path))
    assert repo.get_alias(db, "prod").target == "smollm2-135m-instruct"
    assert [c.action for c in repo.alias_history(db, "prod")] == ["deploy", "deploy", "rollback"]


def test_deploying_an_unknown_model_or_without_a_database_fails_clearly(tmp_path):
    from tunesmith.core.errors import ModelError, ServeError
    from tunesmith.serve.deploy import deploy_alias, open_store

    with pytest.raises(ServeError, match="has no tunesmith.db"):
        open_store(tmp_path / "nowhere", None)
    Database(default_database_url(tmp_path)).close()
    db, settings = open_store(tmp_path, None)
    with pytest.raises(ModelError, match="does not exist"):
        deploy_alias(db, settings, "prod", "ft:nope::ftjob-0", "me")
    with pytest.raises(ServeError, match="cannot point at itself"):
        deploy_alias(db, settings, "prod", "prod", "me")
