"""Aliases may point at a local training run directory; clients can never name server paths themselves."""

from __future__ import annotations

import json

import pytest

from tunesmith.errors import ModelError
from tunesmith.serve.deploy import deploy_alias
from tunesmith.serve.names import resolve_target
from tunesmith.serve.settings import ServeSettings
from tunesmith.store.db import Database


@pytest.fixture()
def store(tmp_path):
    settings = ServeSettings(data_dir=tmp_path / "data")
    settings.data_dir.mkdir()
    db = Database(settings.resolved_database_url())
    yield db, settings
    db.close()


def make_run(tmp_path, model="smollm2-135m-instruct"):
    run = tmp_path / "run"
    (run / "adapter").mkdir(parents=True)
    (run / "adapter" / "adapter_config.json").write_text("{}")
    (run / "run.json").write_text(json.dumps({"status": "succeeded", "model": model}))
    return run


def test_alias_to_a_run_dir_resolves_to_its_adapter_on_its_base(store, tmp_path):
    db, settings = store
    run = make_run(tmp_path)
    deploy_alias(db, settings, "sentiment", str(run), "me", allow_run_dirs=True)
    target = resolve_target(db, settings, "sentiment")
    assert target.name == "sentiment" and target.base == "smollm2-135m-instruct"
    assert target.adapter == str((run / "adapter").resolve())


def test_a_client_cannot_name_a_server_path_as_model(store, tmp_path):
    db, settings = store
    run = make_run(tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        resolve_target(db, settings, str(run))
    with pytest.raises(ModelError, match="does not exist"):  # the HTTP endpoint does not allow run dirs
        deploy_alias(db, settings, "x", str(run), "remote")


def test_run_on_a_base_the_server_does_not_offer_is_refused(store, tmp_path):
    db, settings = store
    run = make_run(tmp_path, model="/models/other")
    with pytest.raises(ModelError, match="start the server with --model /models/other|does not offer"):
        deploy_alias(db, settings, "x", str(run), "me", allow_run_dirs=True)
