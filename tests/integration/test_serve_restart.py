"""A server killed while a job trains: its trainer stops with it; on restart the job resumes from its last
checkpoint and succeeds."""

from __future__ import annotations

import time

import openai
import psutil
import pytest

from tests.integration.conftest import running_server, stop_server
from tests.integration.serve_data import TINY_TRAINING, wait_for, write_train_file
from tunesmith.store import repo
from tunesmith.store.db import Database, default_database_url

pytestmark = pytest.mark.integration


def test_a_running_job_resumes_after_the_server_is_killed(tmp_path):
    data_dir = tmp_path / "data"
    with running_server(data_dir) as (handle, proc):
        client = openai.OpenAI(base_url=handle.base_url, api_key=handle.api_key, max_retries=0, timeout=60)
        train = client.files.create(file=write_train_file(tmp_path / "t.jsonl").open("rb"), purpose="fine-tune")
        job = client.fine_tuning.jobs.create(
            model="smollm2-135m-instruct",
            training_file=train.id,
            extra_body={"training_config": {**TINY_TRAINING, "max_steps": 3, "save_steps": 1}},
        )
        deadline = time.monotonic() + 240
        while not client.fine_tuning.jobs.checkpoints.list(job.id).data:
            assert time.monotonic() < deadline, "no checkpoint appeared"
            assert client.fine_tuning.jobs.retrieve(job.id).status in (
                "validating_files",
                "queued",
                "running",
            )
            time.sleep(0.5)
        db = Database(default_database_url(data_dir))
        pid = repo.get_job(db, job.id).pid
        db.close()
        assert pid, "the job is not running"
        trainer = psutil.Process(pid)
        stop_server(proc, hard=True)  # SIGKILL: no shutdown hooks run
    assert trainer_exits(trainer, within_s=10), "the trainer kept training after its server died"
    with running_server(data_dir) as (handle, _proc):
        client = openai.OpenAI(base_url=handle.base_url, api_key=handle.api_key, max_retries=0, timeout=60)
        done = wait_for(client, job.id, ("succeeded",))
        messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100).data]
        assert any("Server restarted" in m for m in messages)
        assert "Resuming from the last checkpoint" in messages
        assert done.fine_tuned_model.endswith(job.id)


def trainer_exits(proc: psutil.Process, within_s: float) -> bool:
    """Whether ``proc`` is gone (or a zombie nobody reaped) within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False
