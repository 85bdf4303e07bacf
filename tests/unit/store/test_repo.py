"""Repository functions on a real SQLite database."""

from __future__ import annotations

import pytest

from tunesmith.errors import ServeError
from tunesmith.store import repo
from tunesmith.store.db import Database, default_database_url
from tunesmith.store.tables import EventRow, SchemaVersion


@pytest.fixture
def db(tmp_path):
    database = Database(default_database_url(tmp_path))
    yield database
    database.close()


def make_job(db, **kw):
    fields = dict(
        id=repo.new_id("ftjob"),
        model="m",
        training_file="file-1",
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
    assert [j.id for j in repo.list_jobs(db, statuses=("validating_files",), oldest_first=True)][0] == jobs[
        0
    ].id


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
