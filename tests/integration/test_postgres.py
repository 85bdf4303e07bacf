"""`tunesmith serve --database-url postgresql+psycopg://...` end to end against a real PostgreSQL server.

The cluster is Debian's postgresql, started by ``pg_cluster.postgres_cluster`` in a temp dir on 127.0.0.1;
the test is skipped, saying why, where it cannot be installed or started.
"""

from __future__ import annotations

import math

import httpx
import openai
import pytest
from sqlalchemy import create_engine, text

from tests.integration.conftest import running_server
from tests.integration.pg_cluster import postgres_cluster
from tests.integration.serve_data import SYSTEM, TINY_TRAINING, wait_for, write_train_file
from tunesmith.core.errors import ServeError
from tunesmith.store import repo
from tunesmith.store.db import Database

pytestmark = pytest.mark.integration
BASE = "smollm2-135m-instruct"
ASK = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "The staff were wonderful"}]


@pytest.fixture(scope="module")
def pg_url() -> str:
    """A fresh PostgreSQL cluster's URL for this module."""
    with postgres_cluster() as url:
        yield url


def client_for(handle) -> openai.OpenAI:
    """The official SDK pointed at a running server."""
    return openai.OpenAI(base_url=handle.base_url, api_key=handle.api_key, max_retries=0, timeout=120)


def test_files_jobs_chat_and_aliases_live_in_postgres(pg_url, tmp_path):
    data_dir = tmp_path / "data"
    with running_server(data_dir, None, "--database-url", pg_url) as (handle, _proc):
        client = client_for(handle)
        train = client.files.create(file=write_train_file(tmp_path / "train.jsonl").open("rb"), purpose="fine-tune")
        assert [f.id for f in client.files.list().data] == [train.id]
        job = client.fine_tuning.jobs.create(
            model=BASE,
            training_file=train.id,
            suffix="pg",
            method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 4}}},
            extra_body={"training_config": {**TINY_TRAINING, "max_steps": 2}},  # one checkpoint, at step 2
            metadata={"store": "postgres"},
        )
        done = wait_for(client, job.id, ("succeeded",))
        assert done.fine_tuned_model == f"ft:{BASE}:pg:{job.id}" and done.trained_tokens > 0
        assert [j.id for j in client.fine_tuning.jobs.list().data] == [job.id]
        events = client.fine_tuning.jobs.list_events(job.id, limit=100).data
        assert "The job has successfully completed" in [e.message for e in events]
        assert any(e.type == "metrics" and "train_loss" in e.data for e in events)
        checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
        assert checkpoints and checkpoints[0].metrics.train_loss is not None

        reply = client.chat.completions.create(model=done.fine_tuned_model, messages=ASK, max_tokens=6, temperature=0)
        assert reply.model == done.fine_tuned_model and reply.choices[0].message.content
        alias = httpx.post(
            f"{handle.base_url}/aliases",
            json={"name": "sentiment-prod", "model": done.fine_tuned_model},
            headers={"Authorization": f"Bearer {handle.api_key}"},
        )
        assert alias.status_code == 200, alias.text
        via_alias = client.chat.completions.create(model="sentiment-prod", messages=ASK, max_tokens=6, temperature=0)
        assert via_alias.choices[0].message.content == reply.choices[0].message.content

    assert not (data_dir / "tunesmith.db").exists()  # the rows went to PostgreSQL, not the SQLite default
    engine = create_engine(pg_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT status FROM jobs WHERE id = :id"), {"id": job.id}).scalar() == "succeeded"
        assert conn.execute(text("SELECT target FROM aliases")).scalars().all() == [done.fine_tuned_model]
        assert conn.execute(text("SELECT count(*) FROM events WHERE job_id = :id"), {"id": job.id}).scalar() >= 3
    engine.dispose()

    # A second server on the same database sees everything (the schema is created once, its version checked).
    with running_server(data_dir, None, "--database-url", pg_url) as (handle, _proc):
        client = client_for(handle)
        assert client.fine_tuning.jobs.retrieve(job.id).status == "succeeded"
        assert train.id in {f.id for f in client.files.list().data}  # with the job's result file, if any
        assert done.fine_tuned_model in {m.id for m in client.models.list().data}
        assert [c.id for c in client.fine_tuning.jobs.checkpoints.list(job.id).data] == [c.id for c in checkpoints]


def test_values_postgres_refuses_are_request_errors_and_nan_metrics_are_stored_as_null(pg_url):
    db = Database(pg_url)
    try:
        row = repo.add_file(db, filename="t.jsonl", purpose="fine-tune", bytes=10, path="/x")
        job = repo.add_job(
            db,
            id=repo.new_id("ftjob"),
            model="m",
            training_file=row.id,
            seed=1,
            method={"type": "supervised"},
            train_overrides={},
            work_dir="/tmp/x",
        )
        repo.add_event(db, job.id, "step 1", type_="metrics", data={"step": 1, "train_loss": math.nan})
        metrics = [e.data for e in repo.list_events(db, job.id) if e.type == "metrics"]
        assert metrics == [{"step": 1, "train_loss": None}]  # PostgreSQL's json has no NaN
        for filename in ("x" * 600, "nul\x00byte"):  # SQLite stores both; PostgreSQL refuses them
            with pytest.raises(ServeError, match="the database refused a value") as info:
                repo.add_file(db, filename=filename, purpose="fine-tune", bytes=1, path="/x")
            assert info.value.status_code == 400
    finally:
        db.close()
