"""/v1/batches over real HTTP with the official openai SDK and the bundled model."""

from __future__ import annotations

import json
import time

import openai
import pytest

pytestmark = pytest.mark.integration
BASE = "smollm2-135m-instruct"


def line(custom_id: str, body: dict, url: str = "/v1/chat/completions") -> dict:
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def chat_body(text: str, **extra) -> dict:
    return {"model": BASE, "messages": [{"role": "user", "content": text}], "max_tokens": 5, "temperature": 0, **extra}


def upload(client, tmp_path, rows, name="batch.jsonl"):
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return client.files.create(file=path.open("rb"), purpose="batch")


def wait_batch(client, batch_id: str, statuses: tuple[str, ...], timeout_s: float = 300):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        time.sleep(0.3)
    raise AssertionError(f"batch {batch_id} still {batch.status} after {timeout_s}s")


def read_lines(client, file_id: str) -> dict[str, dict]:
    rows = [json.loads(x) for x in client.files.content(file_id).read().decode().splitlines() if x.strip()]
    return {r["custom_id"]: r for r in rows}


def test_a_batch_answers_like_chat_and_files_failures_apart(openai_client, tmp_path):
    questions = ["Name a fruit.", "Name a colour.", "Say hello.", "Count to three."]
    rows = [line(f"q{i}", chat_body(q)) for i, q in enumerate(questions)]
    rows += [
        line("no-messages", {"model": BASE, "max_tokens": 3}),
        line("no-model", chat_body("hi", model="no-such-model")),
    ]
    batch = openai_client.batches.create(
        input_file_id=upload(openai_client, tmp_path, rows).id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run": "nightly"},
    )
    assert batch.status == "validating" and batch.metadata == {"run": "nightly"}
    done = wait_batch(openai_client, batch.id, ("completed", "failed"))
    assert done.status == "completed", done.errors
    assert (done.request_counts.total, done.request_counts.completed, done.request_counts.failed) == (6, 4, 2)
    assert done.in_progress_at and done.finalizing_at and done.completed_at and done.expires_at
    output = read_lines(openai_client, done.output_file_id)
    assert set(output) == {"q0", "q1", "q2", "q3"}
    for i, q in enumerate(questions):  # the same greedy answer as a live request
        live = openai_client.chat.completions.create(**chat_body(q))
        response = output[f"q{i}"]["response"]
        assert response["status_code"] == 200
        assert response["body"]["choices"][0]["message"]["content"] == live.choices[0].message.content
    errors = read_lines(openai_client, done.error_file_id)
    assert errors["no-messages"]["response"]["status_code"] == 400
    assert errors["no-messages"]["response"]["body"]["error"]["param"] == "messages"
    assert errors["no-model"]["response"]["status_code"] == 404
    assert openai_client.files.retrieve(done.output_file_id).purpose == "batch_output"
    assert batch.id in {b.id for b in openai_client.batches.list(limit=100).data}


def test_an_invalid_input_file_fails_validation_with_line_numbers(openai_client, tmp_path):
    rows = [
        line("a", chat_body("hi")),
        "not json",
        line("a", chat_body("again")),
        line("b", chat_body("hi"), url="/v1/embeddings"),
    ]
    batch = openai_client.batches.create(
        input_file_id=upload(openai_client, tmp_path, rows).id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    failed = wait_batch(openai_client, batch.id, ("failed", "completed"))
    assert failed.status == "failed" and failed.failed_at
    found = {(e.line, e.code) for e in failed.errors.data}
    assert found == {(2, "invalid_request"), (3, "duplicate_custom_id"), (4, "mismatched_endpoint")}

    fine_tune_file = openai_client.files.create(file=(tmp_path / "batch.jsonl").open("rb"), purpose="user_data")
    with pytest.raises(openai.BadRequestError) as info:
        openai_client.batches.create(
            input_file_id=fine_tune_file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
    assert info.value.body["param"] == "input_file_id"
    with pytest.raises(openai.BadRequestError):
        openai_client.batches.create(
            input_file_id=fine_tune_file.id, endpoint="/v1/chat/completions", completion_window="1h"
        )


def test_cancel_stops_a_running_batch_and_keeps_its_answers(openai_client, tmp_path):
    rows = [line(f"r{i}", chat_body(f"Tell me about the number {i}.", max_tokens=24)) for i in range(48)]
    batch = openai_client.batches.create(
        input_file_id=upload(openai_client, tmp_path, rows).id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    wait_batch(openai_client, batch.id, ("in_progress",))
    with pytest.raises(openai.APIStatusError) as info:  # a running batch still reads its input file
        openai_client.files.delete(batch.input_file_id)
    assert info.value.status_code == 409 and info.value.body["code"] == "file_in_use"
    cancelling = openai_client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at
    cancelled = wait_batch(openai_client, batch.id, ("cancelled",))
    assert cancelled.cancelled_at and cancelled.request_counts.completed < 48
    if cancelled.output_file_id:  # answers finished before the cancel are kept
        assert len(read_lines(openai_client, cancelled.output_file_id)) == cancelled.request_counts.completed
    with pytest.raises(openai.APIStatusError) as info:
        openai_client.batches.cancel(batch.id)
    assert info.value.status_code == 409


def test_a_batch_resumes_after_the_server_is_killed(tmp_path):
    from tests.integration.conftest import free_port, running_server, stop_server

    data = tmp_path / "data"
    port = free_port()
    rows = [line(f"r{i}", chat_body(f"Number {i}?", max_tokens=3)) for i in range(12)]
    with running_server(data, port, "--set", "max_batch_size=1") as (handle, proc):  # windows of 4 requests
        client = openai.OpenAI(base_url=handle.base_url, api_key=handle.api_key, max_retries=0, timeout=60)
        batch = client.batches.create(
            input_file_id=upload(client, tmp_path, rows).id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
        )
        deadline = time.monotonic() + 300
        while client.batches.retrieve(batch.id).request_counts.completed < 4:
            assert time.monotonic() < deadline, "the first window never finished"
            time.sleep(0.2)
        stop_server(proc, hard=True)  # SIGKILL: no shutdown, the batch stays in_progress
    with running_server(data, port, "--set", "max_batch_size=1") as (handle, _proc):
        client = openai.OpenAI(base_url=handle.base_url, api_key=handle.api_key, max_retries=0, timeout=60)
        done = wait_batch(client, batch.id, ("completed",))
        assert (done.request_counts.total, done.request_counts.completed) == (12, 12)
        answered = read_lines(client, done.output_file_id)
        assert set(answered) == {f"r{i}" for i in range(12)}
    log = (data / "batches" / batch.id / "results.jsonl").read_text().splitlines()
    assert len(log) == 12  # answers written before the kill were kept, not asked again
