"""Aliases may point at a local training run directory; clients can never name server paths themselves."""

from __future__ import annotations

import json

import pytest

from tunesmith.core.errors import ModelError, ServeError
from tunesmith.serve.deploy import deploy_alias
from tunesmith.serve.names import resolve_target


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


def test_only_an_absolute_run_dir_target_is_ever_read_as_a_path(store, tmp_path, monkeypatch):
    from tunesmith.store import repo

    db, settings = store
    make_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    change = deploy_alias(db, settings, "cli", "run", "me", allow_run_dirs=True)  # relative, as typed
    assert change.to_target == str((tmp_path / "run").resolve())
    repo.set_alias(db, "sneaky", "run", "someone")  # a relative target (never written by the API) ...
    with pytest.raises(ModelError, match="does not exist"):  # ... is a name, not ./run
        resolve_target(db, settings, "sneaky")
    with pytest.raises(ServeError, match="alias name '..' is not allowed"):
        deploy_alias(db, settings, "..", "smollm2-135m-instruct", "me")


def test_resolution_refuses_a_stored_cycle_instead_of_treating_a_name_as_a_path(store, tmp_path, monkeypatch):
    from tunesmith.store import repo
    from tunesmith.store.tables import AliasRow

    db, settings = store
    run = make_run(tmp_path)
    run.rename(tmp_path / "evil")
    monkeypatch.chdir(tmp_path)
    for name, target in (("evil", "smollm2-135m-instruct"), ("cb", "evil"), ("ca", "cb")):
        repo.set_alias(db, name, target, "me")
    with db.session() as s:
        s.get(AliasRow, "evil").target = "ca"
    with pytest.raises(repo.AliasError, match="cycle") as info:
        resolve_target(db, settings, "cb")
    assert info.value.status_code == 400
