"""Issue 11 (OpenAI fine-tuning API parity) and the job/model parts of issue 16, over real HTTP with the
official openai SDK; the worker's steps are driven by the test (no training runs)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import openai
import pytest

from tests.unit.serve.conftest import write_chat_file
from tunesmith.serve import job_progress
from tunesmith.serve import worker as worker_module
from tunesmith.store import repo

BASE = "smollm2-135m-instruct"


def upload(api, tmp_path, name="train.jsonl", n=10):
    return api.client.files.create(file=write_chat_file(tmp_path / name, n).open("rb"), purpose="fine-tune")


def test_early_stopping_with_a_validation_file_is_accepted(api, tmp_path):
    train, valid = upload(api, tmp_path), upload(api, tmp_path, "valid.jsonl")
    job = api.client.fine_tuning.jobs.create(
        model=BASE,
        training_file=train.id,
        validation_file=valid.id,
        extra_body={"training_config": {"early_stopping_patience": 2}},
    )
    assert job.status == "validating_files"
    with pytest.raises(openai.BadRequestError, match="needs valid_file"):  # still refused without one
        api.client.fine_tuning.jobs.create(
            model=BASE, training_file=train.id, extra_body={"training_config": {"early_stopping_patience": 2}}
        )


def test_metadata_limits_and_integrations_round_trip(api, tmp_path):
    train = upload(api, tmp_path)
    for metadata in ({f"k{i}": "v" for i in range(17)}, {"k" * 65: "v"}, {"k": "v" * 513}):
        with pytest.raises(openai.BadRequestError) as info:
            api.client.fine_tuning.jobs.create(model=BASE, training_file=train.id, metadata=metadata)
        assert info.value.body["param"] == "metadata"
    with pytest.raises(openai.BadRequestError) as info:
        api.client.fine_tuning.jobs.create(
            model=BASE, training_file=train.id, integrations=[{"type": "mlflow", "mlflow": {}}]
        )
    assert info.value.body["param"].startswith("integrations")
    wandb = [{"type": "wandb", "wandb": {"project": "sentiment", "tags": ["a"]}}]
    metadata = {f"k{i}": "v" * 512 for i in range(15)} | {"k" * 64: "v"}
    job = api.client.fine_tuning.jobs.create(model=BASE, training_file=train.id, metadata=metadata, integrations=wandb)
    again = api.client.fine_tuning.jobs.retrieve(job.id)
    assert again.metadata == metadata
    assert again.integrations[0].type == "wandb" and again.integrations[0].wandb.project == "sentiment"

    api.ctx.worker.validate(job.id)  # wandb is not installed here: a warning event, the job goes on
    events = api.client.fine_tuning.jobs.list_events(job.id).data
    warn = [e for e in events if e.level == "warn"]
    assert warn and "wandb" in warn[0].message and api.client.fine_tuning.jobs.retrieve(job.id).status == "queued"


def test_auto_hyperparameters_show_resolved_numbers_after_validation(api, tmp_path):
    train = upload(api, tmp_path, n=20)
    job = api.client.fine_tuning.jobs.create(model=BASE, training_file=train.id)
    assert job.hyperparameters.n_epochs == "auto" and job.hyperparameters.batch_size == "auto"
    api.ctx.worker.validate(job.id)
    hp = api.client.fine_tuning.jobs.retrieve(job.id).hyperparameters
    assert (hp.n_epochs, hp.batch_size, hp.learning_rate_multiplier) == (5, 8, 1.0)  # 100 // 20 examples
    explicit = api.client.fine_tuning.jobs.create(
        model=BASE,
        training_file=train.id,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}},
        extra_body={"training_config": {"batch_size": 4, "learning_rate": 1e-4}},
    )
    api.ctx.worker.validate(explicit.id)
    hp = api.client.fine_tuning.jobs.retrieve(explicit.id).hyperparameters
    assert (hp.n_epochs, hp.batch_size, hp.learning_rate_multiplier) == (2, 4, 0.5)


def test_jobs_events_and_files_page_with_after_and_has_more(api, tmp_path):
    files = [api.client.files.create(file=(f"f{i}.txt", io.BytesIO(b"x")), purpose="user_data") for i in range(3)]
    first = api.client.files.list(limit=2)
    assert len(first.data) == 2 and first.has_more
    rest = api.client.files.list(limit=2, after=first.data[-1].id)
    assert len(rest.data) == 1 and not rest.has_more
    newest_first = [f.id for f in first.data + rest.data]
    assert sorted(newest_first) == sorted(f.id for f in files)
    assert [f.id for f in api.client.files.list(order="asc").data] == newest_first[::-1]
    assert [f.id for f in api.client.files.list(limit=1)] == newest_first  # the SDK's auto-paging
    with pytest.raises(openai.NotFoundError):
        api.client.files.list(after="file-nope")

    train = upload(api, tmp_path)
    jobs = [api.client.fine_tuning.jobs.create(model=BASE, training_file=train.id) for _ in range(3)]
    page = api.client.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in page.data] == [jobs[2].id, jobs[1].id] and page.has_more
    last = api.client.fine_tuning.jobs.list(limit=2, after=jobs[1].id)
    assert [j.id for j in last.data] == [jobs[0].id] and not last.has_more
    for i in range(3):
        repo.add_event(api.ctx.db, jobs[0].id, f"note {i}")
    events = api.client.fine_tuning.jobs.list_events(jobs[0].id, limit=2)
    assert [e.message for e in events.data] == ["note 2", "note 1"] and events.has_more
    older = api.client.fine_tuning.jobs.list_events(jobs[0].id, limit=10, after=events.data[-1].id)
    assert older.data[0].message == "note 0" and not older.has_more


def succeeded_job(api, tmp_path, steps=(2, 4)):
    """A job row as the worker leaves a finished run: adapter, checkpoints, metrics.jsonl."""
    train = upload(api, tmp_path)
    job = api.client.fine_tuning.jobs.create(model=BASE, training_file=train.id, suffix="s")
    output = Path(repo.get_job(api.ctx.db, job.id).work_dir) / "output"
    for sub in ["adapter"] + [f"checkpoints/checkpoint-{s}" for s in steps]:
        (output / sub).mkdir(parents=True)
        (output / sub / "adapter_config.json").write_text("{}")
        (output / sub / "adapter_model.safetensors").write_bytes(b"x")
    rows = [
        {"step": 1, "train_loss": 2.0, "train_mean_token_accuracy": 0.5},
        {"step": 2, "train_loss": 1.5, "train_mean_token_accuracy": 0.6},
        {"step": 2, "valid_loss": 1.7, "valid_mean_token_accuracy": 0.55},
        {"step": 4, "train_loss": 1.0},
    ]
    (output / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (output / "run.json").write_text(json.dumps({"status": "succeeded", "trained_tokens": 100}))
    repo.update_job(api.ctx.db, job.id, status="running")
    api.ctx.worker.finish(job.id, 0, output)
    return api.client.fine_tuning.jobs.retrieve(job.id), output


def test_a_succeeded_job_has_a_results_csv_file_and_checkpoints_with_metrics(api, tmp_path):
    job, output = succeeded_job(api, tmp_path)
    assert job.status == "succeeded" and len(job.result_files) == 1
    meta = api.client.files.retrieve(job.result_files[0])
    assert meta.purpose == "fine-tune-results" and meta.filename == "step_metrics.csv"
    text = api.client.files.content(job.result_files[0]).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.splitlines()[0] == "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy"
    assert [r["step"] for r in rows] == ["1", "2", "4"]
    assert (rows[1]["train_loss"], rows[1]["train_accuracy"], rows[1]["valid_loss"]) == ("1.5", "0.6", "1.7")
    assert rows[2]["valid_loss"] == ""

    ckpts = api.client.fine_tuning.jobs.checkpoints.list(job.id)
    assert [c.step_number for c in ckpts.data] == [4, 2]
    assert ckpts.data[0].id.startswith("ftckpt_")
    assert ckpts.data[0].fine_tuned_model_checkpoint == f"{job.fine_tuned_model}:ckpt-step-4"
    assert ckpts.data[1].metrics.valid_loss == 1.7 and ckpts.data[1].metrics.train_loss == 1.5
    page = api.client.fine_tuning.jobs.checkpoints.list(job.id, limit=1)
    assert page.has_more and [c.step_number for c in page.data] == [4]
    rest = api.client.fine_tuning.jobs.checkpoints.list(job.id, limit=1, after=page.data[0].id)
    assert not rest.has_more and [c.step_number for c in rest.data] == [2]


def test_checkpoints_whose_directories_are_gone_are_not_listed_and_the_worker_drops_them(api, tmp_path):
    job, output = succeeded_job(api, tmp_path)
    import shutil

    shutil.rmtree(output / "checkpoints" / "checkpoint-2")  # what save_total_limit does
    assert [c.step_number for c in api.client.fine_tuning.jobs.checkpoints.list(job.id).data] == [4]
    job_progress.ingest_progress(api.ctx.db, repo.get_job(api.ctx.db, job.id), output)
    assert [c.step_number for c in repo.list_checkpoints(api.ctx.db, job.id)] == [4]


def test_model_delete_marks_the_job_deleted_before_removing_files(api, tmp_path, monkeypatch):
    job, output = succeeded_job(api, tmp_path)
    seen = []
    real_rmtree = worker_module.shutil.rmtree

    def rmtree(path, *args, **kwargs):
        if Path(path) == output:
            row = repo.get_job(api.ctx.db, job.id)
            seen.append((row.model_deleted, len(repo.list_checkpoints(api.ctx.db, job.id))))
        return real_rmtree(path, *args, **kwargs)

    monkeypatch.setattr("shutil.rmtree", rmtree)
    assert api.client.models.delete(job.fine_tuned_model).deleted is True
    assert seen == [(True, 0)] and not output.exists()
    assert api.client.fine_tuning.jobs.checkpoints.list(job.id).data == []
    with pytest.raises(openai.NotFoundError):
        api.client.models.delete(job.fine_tuned_model)


def test_a_suffix_with_colons_from_an_older_server_still_resolves(api, tmp_path):
    job, _ = succeeded_job(api, tmp_path)
    odd = f"ft:{BASE}:a:b:{job.id}"  # stored before suffixes were validated
    repo.update_job(api.ctx.db, job.id, fine_tuned_model=odd)
    from tunesmith.serve.names import resolve_target

    target = resolve_target(api.ctx.db, api.ctx.settings, odd)
    assert target.adapter and target.adapter.endswith("output/adapter")
    r = httpx.get(f"{api.base_url}/models/{odd}", headers=api.auth)
    assert r.status_code == 200


def test_a_failed_job_reports_the_exception_line_not_the_progress_bars(api, tmp_path):
    train = upload(api, tmp_path)
    job = api.client.fine_tuning.jobs.create(model=BASE, training_file=train.id)
    work = Path(repo.get_job(api.ctx.db, job.id).work_dir)
    bars = "".join(f"\rtrain:  {p}%|##   | {p // 25}/4 [00:0{p // 25}<00:03,  1.0s/step, loss=2.1]" for p in (25, 50))
    (work / "train.log").write_text(
        f'loading model\n{bars}\nTraceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
        "    boom()\nRuntimeError: CUDA out of memory. Tried to allocate 2 GiB\n"
    )
    repo.update_job(api.ctx.db, job.id, status="running")
    api.ctx.worker.finish(job.id, 1, work / "output")
    failed = api.client.fine_tuning.jobs.retrieve(job.id)
    assert failed.status == "failed" and failed.error.code == "training_failed"
    expected = "training exited with code 1: RuntimeError: CUDA out of memory. Tried to allocate 2 GiB"
    assert failed.error.message == expected
    last = api.client.fine_tuning.jobs.list_events(job.id, limit=1).data[0]
    assert last.level == "error" and "CUDA out of memory" in last.message
