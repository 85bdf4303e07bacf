"""Repository functions on a real SQLite database."""

from __future__ import annotations

import pytest

from tunesmith.core.errors import ServeError
from tunesmith.store import repo
from tunesmith.store.db import Database, default_database_url
from tunesmith.store.tables import EventRow, SchemaVersion


@pytest.fixture
def db(tmp_path):
    database = Database(default_database_url(tmp_path))
    yield database
    database.close()


def make_job(db, **kw):
    if "training_file" not in kw:
        kw["training_file"] = repo.add_file(db, filename="t.jsonl", purpose="fine-tune", bytes=1, path="/t").id
    fields = dict(
        id=repo.new_id("ftjob"),
        model="m",
        seed=1,
        method={"type": "supervised", "supervised": {"hyperparameters": {}}},
        train_overrides={},
        work_dir="/tmp/x",
    )
    return repo.add_job(db, **{**fields, **kw})


def test_schema_and_version_row_are_created_once(tmp_path):
    Database(default_database_url(tmp_path)).close()
    db = Database(default_database_url(tmp_path))
    assert repo.count_rows(db, SchemaVersion) == 1


def test_files_round_trip_and_missing_ids_raise_not_found(db):
    row = repo.add_file(db, filename="a.jsonl", purpose="fine-tune", bytes=3, path="/p", kind="chat")
    assert repo.get_file(db, row.id).filename == "a.jsonl"
    assert [f.id for f in repo.list_files(db, "fine-tune")] == [row.id]
    assert repo.list_files(db, "batch") == []
    repo.delete_file(db, row.id)
    with pytest.raises(repo.NotFoundError, match="no file with id"):
        repo.get_file(db, row.id)


def test_jobs_page_newest_first_with_an_after_cursor(db):
    jobs = [make_job(db) for _ in range(3)]
    assert [j.id for j in repo.list_jobs(db)] == [j.id for j in reversed(jobs)]
    assert [j.id for j in repo.list_jobs(db, after=jobs[2].id, limit=1)] == [jobs[1].id]
    assert [j.id for j in repo.list_jobs(db, statuses=("validating_files",), oldest_first=True)][0] == jobs[0].id


def test_status_check_and_set_only_moves_from_expected_states(db):
    job = make_job(db)
    assert repo.set_job_status_if(db, job.id, ("queued",), "running", "x") is None
    moved = repo.set_job_status_if(db, job.id, ("validating_files",), "queued", "queued now")
    assert moved.status == "queued" and repo.get_job(db, job.id).status == "queued"
    messages = [e.message for e in repo.list_events(db, job.id)]
    assert messages[0] == "queued now" and messages[-1].startswith("Created fine-tuning job")


def test_events_newest_first_and_metrics_advance_the_line_cursor(db):
    job = make_job(db)
    repo.add_metrics_events(db, job.id, [{"step": 1, "train_loss": 2.0}, {"step": 2, "train_loss": 1.5}], 2)
    events = repo.list_events(db, job.id, limit=10)
    assert [e.type for e in events] == ["metrics", "metrics", "message"]
    assert events[0].data["step"] == 2 and repo.get_job(db, job.id).metrics_lines == 2
    older = repo.list_events(db, job.id, after=events[0].id, limit=1)
    assert [e.id for e in older] == [events[1].id]
    assert repo.count_rows(db, EventRow) == 3


def test_checkpoints_upsert_by_name_and_list_by_step(db):
    job = make_job(db)
    repo.upsert_checkpoint(db, job.id, 2, "ft:m::j:ckpt-step-2", "/c2", {"step": 2})
    repo.upsert_checkpoint(db, job.id, 4, "ft:m::j:ckpt-step-4", "/c4", {"step": 4})
    repo.upsert_checkpoint(db, job.id, 2, "ft:m::j:ckpt-step-2", "/c2", {"step": 2, "train_loss": 1.0})
    rows = repo.list_checkpoints(db, job.id)
    assert [c.step_number for c in rows] == [4, 2] and rows[1].metrics["train_loss"] == 1.0
    assert repo.find_checkpoint(db, "ft:m::j:ckpt-step-4").path == "/c4"
    assert repo.delete_checkpoints(db, job.id) == 2


def test_alias_changes_are_recorded_and_rollback_walks_back(db):
    repo.set_alias(db, "prod", "model-a", "alice")
    repo.set_alias(db, "prod", "model-b", "bob")
    repo.set_alias(db, "prod", "model-c", "bob")
    back = repo.rollback_alias(db, "prod", "carol")
    assert (back.from_target, back.to_target, back.actor) == ("model-c", "model-b", "carol")
    assert repo.rollback_alias(db, "prod", "carol").to_target == "model-a"
    assert repo.get_alias(db, "prod").target == "model-a"
    history = repo.alias_history(db, "prod")
    assert [(c.action, c.to_target) for c in history][-2:] == [
        ("rollback", "model-b"),
        ("rollback", "model-a"),
    ]
    with pytest.raises(ServeError, match="no earlier target"):
        repo.rollback_alias(db, "prod", "carol")
    with pytest.raises(repo.NotFoundError, match="no alias named"):
        repo.rollback_alias(db, "staging", "carol")


def test_alias_stack_replays_deploys_and_rollbacks():
    assert repo.alias_stack([("deploy", "a"), ("deploy", "b"), ("rollback", "a"), ("deploy", "c")]) == [
        "a",
        "c",
    ]
    assert repo.alias_stack([("deploy", "a"), ("deploy", "a")]) == ["a"]


def test_an_unreachable_database_is_a_clear_error(tmp_path):
    with pytest.raises(ServeError, match="cannot open the database"):
        Database(f"sqlite:///{tmp_path}/missing-dir/x.db")


def test_a_version_1_database_gains_the_columns_added_since(tmp_path):
    import sqlite3

    Database(default_database_url(tmp_path)).close()
    with sqlite3.connect(tmp_path / "tunesmith.db") as con:  # as tunesmith with schema version 1 left it
        con.execute("ALTER TABLE jobs DROP COLUMN result_files")
        con.execute("ALTER TABLE jobs DROP COLUMN integrations")
    db = Database(default_database_url(tmp_path))
    job = make_job(db, integrations=[{"type": "wandb", "wandb": {"project": "p"}}])
    repo.update_job(db, job.id, result_files=["file-r"])
    again = repo.get_job(db, job.id)
    assert again.result_files == ["file-r"] and again.integrations[0]["type"] == "wandb"
    db.close()


def test_a_file_an_unfinished_job_uses_cannot_be_deleted(db):
    job = make_job(db)
    for status in ("validating_files", "queued", "running", "paused"):
        repo.update_job(db, job.id, status=status)
        with pytest.raises(repo.FileInUseError, match=job.id):
            repo.delete_file(db, job.training_file)
    repo.update_job(db, job.id, status="failed")
    assert repo.delete_file(db, job.training_file).id == job.training_file
    with pytest.raises(repo.NotFoundError, match="no file"):  # a job cannot be created on a deleted file
        make_job(db, training_file=job.training_file)


def test_files_page_by_creation_time_with_ties_broken_by_id(db):
    rows = [repo.add_file(db, filename=f"{i}", purpose="batch", bytes=2**40, path="/p") for i in range(5)]
    newest_first = [f.id for f in repo.list_files(db)]
    assert sorted(newest_first) == sorted(r.id for r in rows) and repo.get_file(db, rows[0].id).bytes == 2**40
    pages, after = [], None
    while True:
        page = repo.list_files(db, limit=2, after=after)
        if not page:
            break
        pages += [f.id for f in page]
        after = page[-1].id
    assert pages == newest_first
    assert [f.id for f in repo.list_files(db, order="asc")] == newest_first[::-1]
    with pytest.raises(repo.NotFoundError, match="after="):
        repo.list_files(db, after="file-gone")
    with pytest.raises(repo.NotFoundError, match="after="):
        repo.list_jobs(db, after="ftjob-gone")


def test_alias_changes_that_loop_or_chain_too_long_are_refused(db):
    repo.set_alias(db, "a", "model", "me")
    repo.set_alias(db, "b", "a", "me")
    with pytest.raises(repo.AliasError, match="alias cycle: a -> b -> a"):
        repo.set_alias(db, "a", "b", "me")
    with pytest.raises(repo.AliasError, match="cycle"):
        repo.set_alias(db, "a", "a", "me")
    for name, target in (("c", "b"), ("d", "c")):  # d -> c -> b -> a -> model: 4 hops
        repo.set_alias(db, name, target, "me")
    assert repo.follow_alias(db, "d") == ["d", "c", "b", "a", "model"]
    with pytest.raises(repo.AliasError, match="longer than 4 hops"):
        repo.set_alias(db, "e", "d", "me")
    with pytest.raises(repo.AliasError, match="longer than 4 hops"):  # lengthens d's chain from below
        repo.set_alias(db, "model", "other", "me")
    assert repo.get_alias(db, "a").target == "model" and repo.get_alias(db, "model") is None
