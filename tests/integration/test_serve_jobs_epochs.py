"""One real fine-tuning job through the server, checked the way OpenAI's API describes it: a checkpoint per
epoch with metrics, a results CSV file, resolved "auto" hyperparameters, metadata and integrations kept."""

from __future__ import annotations

import csv
import io

import pytest

from tests.integration.serve_data import wait_for, write_train_file

pytestmark = pytest.mark.integration
BASE = "smollm2-135m-instruct"


def test_a_one_epoch_job_has_one_checkpoint_a_results_file_and_resolved_hyperparameters(openai_client, tmp_path):
    train = openai_client.files.create(
        file=write_train_file(tmp_path / "train.jsonl", n=10).open("rb"), purpose="fine-tune"
    )
    valid = openai_client.files.create(
        file=write_train_file(tmp_path / "valid.jsonl", n=10).open("rb"), purpose="fine-tune"
    )
    job = openai_client.fine_tuning.jobs.create(
        model=BASE,
        training_file=train.id,
        validation_file=valid.id,
        suffix="epochs.v1",
        metadata={"team": "nlp"},
        integrations=[{"type": "wandb", "wandb": {"project": "tunesmith-test"}}],
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1}}},
        extra_body={
            "training_config": {
                "max_seq_length": 96,
                "logging_steps": 1,
                "warmup_ratio": 0.0,
                "early_stopping_patience": 2,  # with a validation file: accepted (issue 11 bug 2)
            }
        },
    )
    assert job.hyperparameters.batch_size == "auto"
    done = wait_for(openai_client, job.id, ("succeeded",), timeout_s=600)
    assert done.fine_tuned_model == f"ft:{BASE}:epochs.v1:{job.id}"
    hp = done.hyperparameters
    assert (hp.n_epochs, hp.batch_size, hp.learning_rate_multiplier) == (1, 8, 1.0)
    assert done.metadata == {"team": "nlp"} and done.integrations[0].wandb.project == "tunesmith-test"
    assert done.estimated_finish is None and done.error is None

    events = openai_client.fine_tuning.jobs.list_events(job.id, limit=100).data
    final_step = max(e.data["step"] for e in events if e.type == "metrics")
    assert any(e.level == "warn" and "wandb" in e.message for e in events)

    checkpoints = openai_client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [final_step]  # one epoch: one checkpoint, at its end
    ckpt = checkpoints[0]
    assert ckpt.id.startswith("ftckpt_")
    assert ckpt.fine_tuned_model_checkpoint == f"{done.fine_tuned_model}:ckpt-step-{final_step}"
    assert ckpt.metrics.train_loss is not None and ckpt.metrics.valid_loss is not None

    assert len(done.result_files) == 1
    assert openai_client.files.retrieve(done.result_files[0]).purpose == "fine-tune-results"
    text = openai_client.files.content(done.result_files[0]).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert text.startswith("step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy\n")
    assert int(rows[-1]["step"]) == final_step and rows[-1]["valid_loss"] != ""
    assert all(r["train_loss"] for r in rows)
