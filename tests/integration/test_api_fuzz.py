"""Fuzz a real `tunesmith serve` over its own OpenAPI schema with schemathesis.

Every operation gets schema-valid and schema-violating requests (with the API key). The server must never
answer 5xx, every 4xx must carry OpenAI's error body, and nothing may be written outside its data dir.
The server runs the tiny random Llama (``tiny_model_dir``) so training and chat cost seconds, from a working
directory of its own so a stray relative write shows up. It is seeded with a file, a succeeded job and an
alias, and every other schema-valid request names them, so requests reach past "no such id" to the real work.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import httpx
import openai
import pytest

from tests.integration.conftest import API_KEY, free_port, start_server, stop_server, wait_healthy
from tests.integration.serve_data import SYSTEM, wait_for, write_train_file

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is a dev extra: `make setup` installs it")
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

pytestmark = pytest.mark.integration
# Requests per operation and mode (schema-valid, schema-violating): most where the server does real work.
EXAMPLES = {"POST /v1/chat/completions": 80, "POST /v1/fine_tuning/jobs": 24, "POST /v1/files": 16}
DEFAULT_EXAMPLES = 10
# A deeper hunt by hand: TUNESMITH_FUZZ_SCALE=20 multiplies every count above (the default run takes ~45 s).
SCALE = int(os.environ.get("TUNESMITH_FUZZ_SCALE", "1"))
REQUEST_TIMEOUT_S = 60
MAX_NEW_TOKENS = 8  # generated tokens per fuzzed chat request that names a real model (the tiny model: ~ms each)
ERROR_KEYS = {"message", "type", "param", "code"}
AUTH = {"Authorization": f"Bearer {API_KEY}"}
# Jobs the fuzzer creates are cancelled at once; these keep any that start training tiny.
TRAIN_DEFAULTS = ["--set", "train_defaults.max_steps=1", "--set", "train_defaults.max_seq_length=64"]


class Known(NamedTuple):
    """Things that exist on the fuzzed server, substituted into generated requests."""

    base_model: str
    ft_model: str
    file_id: str
    job_id: str
    alias: str
    train_bytes: bytes


class FuzzServer(NamedTuple):
    """A fuzzed server: its URL, the folder it may not write outside of (``box``) and what it may write there."""

    base_url: str
    box: Path
    data_dir: Path
    log: Path
    allowed: frozenset[Path]
    known: Known


def files_under(root: Path, skip: Path) -> set[Path]:
    """Every file and folder under ``root``, not looking inside ``skip``."""
    found = set()
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if here / d != skip]
        found.update(here / name for name in [*dirnames, *filenames])
    return found


def seed_server(base_url: str, base_model: str, work: Path) -> Known:
    """Upload a training file, fine-tune the tiny model one step, alias it, and chat once (loads the adapter)."""
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0, timeout=REQUEST_TIMEOUT_S)
    train = write_train_file(work / "train.jsonl")
    upload = client.files.create(file=train.open("rb"), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model=base_model,
        training_file=upload.id,
        suffix="fuzz",
        extra_body={"training_config": {"max_steps": 1, "save_steps": 1}},
    )
    ft_model = wait_for(client, job.id, ("succeeded",), timeout_s=120).fine_tuned_model
    alias = httpx.post(f"{base_url}/v1/aliases", json={"name": "fuzz-prod", "model": ft_model}, headers=AUTH)
    assert alias.status_code == 200, alias.text
    client.chat.completions.create(model="fuzz-prod", messages=[{"role": "user", "content": SYSTEM}], max_tokens=2)
    return Known(base_model, ft_model, upload.id, job.id, "fuzz-prod", train.read_bytes())


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, tiny_model_dir) -> Iterator[FuzzServer]:
    """`tunesmith serve` on the tiny model, cwd and TMPDIR in a fresh box, its data dir three levels down."""
    box, work = tmp_path_factory.mktemp("fuzz-box"), tmp_path_factory.mktemp("fuzz-work")
    cwd = box / "a" / "b" / "cwd"  # room above it, so a `../..` write would still land inside the box
    data_dir, tmp, log = cwd / "data", box / "tmp", box / "server.log"
    for folder in (cwd, tmp):
        folder.mkdir(parents=True)
    allowed = frozenset({log, tmp, data_dir, *(p for p in data_dir.parents if box in p.parents)})
    port = free_port()
    server = ("--model", str(tiny_model_dir), *TRAIN_DEFAULTS)
    proc = start_server(data_dir, port, *server, cwd=cwd, log=log, env={"TMPDIR": str(tmp)})
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_healthy(proc, base_url, log)
        known = seed_server(base_url, str(tiny_model_dir), work)
        yield FuzzServer(base_url, box, data_dir, log, allowed, known)
    finally:
        stop_server(proc)


def name_known_things(case, known: Known) -> None:
    """Point a generated request at the seeded file, job, models and alias; keep chat generation short."""
    path_params = case.path_parameters or {}
    for key, value in {
        "file_id": known.file_id,
        "fine_tuning_job_id": known.job_id,
        "model": known.ft_model,
        "name": known.alias,
    }.items():
        if key in path_params:
            path_params[key] = value
    body = case.body
    if not isinstance(body, dict):
        return
    if case.path.endswith("/files") and "file" in body:
        body.update(file=known.train_bytes, purpose="fine-tune")
    if "input_file_id" in body:
        body["input_file_id"] = known.file_id
    if "training_file" in body:
        body.update(model=known.base_model, training_file=known.file_id)
    elif "model" in body:
        body["model"] = known.alias if "messages" in body else known.ft_model
    if "messages" in body:
        limits = [k for k in ("max_tokens", "max_completion_tokens") if isinstance(body.get(k), int)]
        for key in limits:
            body[key] = min(body[key], MAX_NEW_TOKENS)
        if not limits:
            body["max_tokens"] = MAX_NEW_TOKENS


def failure_kind(response) -> str | None:
    """What is wrong with a response (a 5xx, a 4xx without OpenAI's error body), or None."""
    if response.status_code >= 500:
        return f"{response.status_code} {response.text[:160]}"
    if response.status_code < 400:
        return None
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} body is not JSON: {response.text[:120]!r}"
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict) or not error.keys() >= ERROR_KEYS:
        return f"{response.status_code} not an OpenAI error body: {str(body)[:120]}"
    if not isinstance(error["message"], str) or not error["message"]:
        return f"{response.status_code} error.message is empty or not a string"
    return None


def fuzz_operation(operation, mode, server: FuzzServer, failures: dict[tuple[str, str], str]) -> None:
    """Send generated requests (``EXAMPLES``); record each distinct failure with one curl repro."""
    sent = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES.get(operation.label, DEFAULT_EXAMPLES) * SCALE,
        deadline=None,
        database=None,
        derandomize=True,  # the same requests on every run: a red CI is reproducible, never a fluke
        phases=[Phase.explicit, Phase.generate],  # failures are recorded, not raised: nothing to shrink
        suppress_health_check=list(HealthCheck),
    )
    def send(case) -> None:
        sent.append(case)
        if mode.is_positive and len(sent) % 2:
            name_known_things(case, server.known)
        response = case.call(base_url=server.base_url, headers=AUTH, timeout=REQUEST_TIMEOUT_S)
        if (kind := failure_kind(response)) is not None:
            failures.setdefault((operation.label, kind), case.as_curl_command(headers=AUTH))
        if response.status_code == 200 and case.path.endswith("/fine_tuning/jobs") and case.method == "POST":
            cancel_job(server.base_url, response.json().get("id"))

    try:
        send()
    except Unsatisfiable:
        # an operation without inputs (GET /v1/models) has no schema-violating requests to send
        assert not mode.is_positive, f"{operation.label}: no schema-valid request could be generated"


def cancel_job(base_url: str, job_id: Any) -> None:
    """Cancel a job the fuzzer created, so no fuzzed job trains alongside the fuzzing."""
    if isinstance(job_id, str):
        httpx.post(f"{base_url}/v1/fine_tuning/jobs/{job_id}/cancel", headers=AUTH, timeout=REQUEST_TIMEOUT_S)


def test_fuzzed_requests_get_no_5xx_and_openai_error_bodies(fuzz_server):
    config = schemathesis.Config.from_dict({"output": {"sanitization": {"enabled": False}}})  # keep max_tokens
    schema = schemathesis.openapi.from_url(f"{fuzz_server.base_url}/openapi.json", config=config)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 10, [op.label for op in operations]
    operations.sort(key=lambda op: op.method.upper() == "DELETE")  # deletions last: the seeded ids live longest
    failures: dict[tuple[str, str], str] = {}
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            fuzz_operation(operation, mode, fuzz_server, failures)
    report = "\n\n".join(f"{label}: {kind}\n  {curl}" for (label, kind), curl in sorted(failures.items()))
    assert not failures, f"{len(failures)} distinct failures (server log: {fuzz_server.log}):\n\n{report}"


def test_fuzzing_wrote_nothing_outside_the_data_dir(fuzz_server):
    """Runs after the fuzz test (file order): the box holds only the data dir, the server log and empty TMPDIR."""
    stray = files_under(fuzz_server.box, skip=fuzz_server.data_dir) - fuzz_server.allowed
    assert not stray, f"written outside the data dir: {sorted(map(str, stray))}"
