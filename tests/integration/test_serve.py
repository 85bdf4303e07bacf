"""The server end to end over real HTTP with the official openai SDK and the bundled model."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.integration.serve_data import TINY_TRAINING, wait_for, write_train_file

pytestmark = pytest.mark.integration
BASE = "smollm2-135m-instruct"


def test_requests_without_a_valid_key_get_401_with_an_openai_error_body(live_server):
    bad = openai.OpenAI(base_url=live_server.base_url, api_key="wrong-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as info:
        bad.models.list()
    assert info.value.status_code == 401
    assert info.value.body["code"] == "invalid_api_key"
    assert "Authorization" in info.value.body["message"]
    bare = httpx.get(f"{live_server.base_url}/files")
    assert bare.status_code == 401 and bare.json()["error"]["type"] == "authentication_error"
    assert httpx.get(live_server.base_url.removesuffix("/v1") + "/health").json()["status"] == "ok"


def test_a_malformed_fine_tune_upload_is_refused_with_line_numbers(openai_client, tmp_path):
    good = '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}'
    bad = tmp_path / "bad.jsonl"
    bad.write_text(f'{good}\nnot json at all\n{good}\n{{"messages": [{{"role": "robot", "content": "x"}}]}}\n')
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.files.create(file=bad.open("rb"), purpose="fine-tune")
    message = info.value.body["message"]
    assert "line 2" in message and "line 4" in message and "at least 10" in message
    assert info.value.body["param"] == "file"
    assert all(f.filename != "bad.jsonl" for f in openai_client.files.list().data)


def test_files_upload_list_retrieve_content_delete(openai_client, tmp_path):
    path = write_train_file(tmp_path / "../../etc-passwd.jsonl", n=10)  # the name is metadata, never a path
    uploaded = openai_client.files.create(file=path.open("rb"), purpose="fine-tune")
    assert uploaded.bytes == path.stat().st_size and uploaded.status == "processed"
    assert uploaded.id in {f.id for f in openai_client.files.list().data}
    assert openai_client.files.retrieve(uploaded.id).filename == "etc-passwd.jsonl"
    assert openai_client.files.content(uploaded.id).read() == path.read_bytes()
    assert openai_client.files.delete(uploaded.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        openai_client.files.retrieve(uploaded.id)


def test_fine_tune_follow_checkpoints_chat_alias_and_delete(openai_client, live_server, tmp_path):
    train = openai_client.files.create(file=write_train_file(tmp_path / "train.jsonl").open("rb"), purpose="fine-tune")
    job = openai_client.fine_tuning.jobs.create(
        model=BASE,
        training_file=train.id,
        suffix="sentiment",
        seed=7,
        method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 1, "batch_size": 4}}},
        extra_body={"training_config": TINY_TRAINING},
    )
    assert job.status == "validating_files" and job.hyperparameters.batch_size == 4
    done = wait_for(openai_client, job.id, ("succeeded",))
    assert done.fine_tuned_model == f"ft:{BASE}:sentiment:{job.id}"
    assert done.trained_tokens and done.trained_tokens > 0 and done.finished_at

    events = openai_client.fine_tuning.jobs.list_events(job.id, limit=100).data
    metrics = [e.data for e in events if e.type == "metrics"]
    assert metrics and all("step" in m and "train_loss" in m for m in metrics)
    assert "The job has successfully completed" in [e.message for e in events]

    checkpoints = openai_client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == sorted((c.step_number for c in checkpoints), reverse=True)
    assert checkpoints and checkpoints[0].metrics.train_loss is not None

    ask = [
        {"role": "system", "content": "Classify the sentiment of the review as positive or negative."},
        {"role": "user", "content": "The staff were wonderful"},
    ]
    reply = openai_client.chat.completions.create(
        model=done.fine_tuned_model, messages=ask, max_tokens=8, temperature=0
    )
    assert reply.model == done.fine_tuned_model and reply.choices[0].message.content
    assert reply.usage.completion_tokens >= 1 and reply.usage.prompt_tokens > 10
    streamed = openai_client.chat.completions.create(
        model=done.fine_tuned_model, messages=ask, max_tokens=8, temperature=0, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == reply.choices[0].message.content  # greedy: streaming and not agree
    ckpt_reply = openai_client.chat.completions.create(
        model=checkpoints[-1].fine_tuned_model_checkpoint, messages=ask, max_tokens=4, temperature=0
    )
    assert ckpt_reply.choices[0].message.content is not None

    auth = {"Authorization": f"Bearer {live_server.api_key}"}
    alias = httpx.post(
        f"{live_server.base_url}/aliases",
        json={"name": "sentiment-prod", "model": done.fine_tuned_model},
        headers=auth,
    )
    assert alias.status_code == 200 and alias.json()["history"][-1]["to_target"] == done.fine_tuned_model
    via_alias = openai_client.chat.completions.create(model="sentiment-prod", messages=ask, max_tokens=8, temperature=0)
    assert via_alias.choices[0].message.content == reply.choices[0].message.content

    assert done.fine_tuned_model in {m.id for m in openai_client.models.list().data}
    assert openai_client.models.delete(done.fine_tuned_model).deleted is True
    assert done.fine_tuned_model not in {m.id for m in openai_client.models.list().data}
    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(model=done.fine_tuned_model, messages=ask, max_tokens=2)


def test_cancel_stops_a_running_job_and_leaves_no_artifacts(openai_client, live_server, tmp_path):
    train = openai_client.files.create(file=write_train_file(tmp_path / "t.jsonl").open("rb"), purpose="fine-tune")
    job = openai_client.fine_tuning.jobs.create(
        model=BASE,
        training_file=train.id,
        extra_body={"training_config": {**TINY_TRAINING, "max_steps": 200}},
    )
    wait_for(openai_client, job.id, ("running",))
    cancelled = openai_client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled"
    output = live_server.data_dir / "jobs" / job.id / "output"
    import time

    deadline = time.monotonic() + 15
    while output.exists() and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not output.exists()
    assert openai_client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    assert openai_client.fine_tuning.jobs.checkpoints.list(job.id).data == []
    with pytest.raises(openai.APIStatusError) as info:
        openai_client.fine_tuning.jobs.cancel(job.id)
    assert info.value.status_code == 409
