"""Issue 16 over real HTTP (uvicorn in a thread, the official openai SDK): bad input gets a 4xx OpenAI error
body, never a 500; names never become paths; keys are checked before bodies are read."""

from __future__ import annotations

import io

import httpx
import openai
import pytest
from starlette.formparsers import MultiPartParser

from tests.unit.serve.conftest import serve_app, write_chat_file
from tunesmith.serve.settings import ServeSettings
from tunesmith.store import repo

BASE = "smollm2-135m-instruct"


def upload(api, tmp_path, name="train.jsonl", n=10):
    return api.client.files.create(file=write_chat_file(tmp_path / name, n).open("rb"), purpose="fine-tune")


def error_of(response: httpx.Response) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    return response.json()["error"]


def test_an_alias_cycle_is_refused_and_a_name_never_becomes_a_path(api, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where `./evil/adapter` would have been loaded from
    (tmp_path / "evil" / "adapter").mkdir(parents=True)
    (tmp_path / "evil" / "adapter" / "adapter_config.json").write_text("{}")
    (tmp_path / "evil" / "run.json").write_text(f'{{"status": "succeeded", "model": "{BASE}"}}')

    def deploy(name, model):
        return httpx.post(f"{api.base_url}/aliases", json={"name": name, "model": model}, headers=api.auth)

    for name, model in (("evil", BASE), ("cb", "evil"), ("ca", "cb")):
        assert deploy(name, model).status_code == 200
    closing = deploy("evil", "ca")
    err = error_of(closing)
    assert closing.status_code == 400 and err["param"] == "model" and "cycle" in err["message"]
    assert repo.get_alias(api.ctx.db, "evil").target == BASE  # nothing was written

    with api.ctx.db.session() as s:  # a cycle written behind the API's back (e.g. an older server)
        from tunesmith.store.tables import AliasRow

        s.get(AliasRow, "evil").target = "ca"
    with pytest.raises(openai.BadRequestError) as info:
        api.client.chat.completions.create(model="cb", messages=[{"role": "user", "content": "hi"}])
    assert "cycle" in info.value.body["message"] and info.value.body["param"] == "model"

    for bad in (".", "..", ".hidden", "a/b"):
        err = error_of(deploy(bad, BASE))
        assert err["param"] == "name"


def test_a_rollback_that_would_close_a_cycle_is_refused(api):
    def deploy(name, model):
        return httpx.post(f"{api.base_url}/aliases", json={"name": name, "model": model}, headers=api.auth)

    assert deploy("a", BASE).status_code == 200
    assert deploy("b", "a").status_code == 200
    assert deploy("b", "smollm2").status_code == 200
    assert deploy("a", "b").status_code == 200  # a -> b -> smollm2
    back = httpx.post(f"{api.base_url}/aliases/b/rollback", headers=api.auth)  # b -> a would loop
    assert back.status_code == 400 and "cycle" in back.json()["error"]["message"]


def test_deleting_a_file_an_unfinished_job_needs_is_a_409(api, tmp_path):
    train, valid = upload(api, tmp_path), upload(api, tmp_path, "valid.jsonl")
    job = api.client.fine_tuning.jobs.create(model=BASE, training_file=train.id, validation_file=valid.id)
    for file_id in (train.id, valid.id):
        with pytest.raises(openai.ConflictError) as info:
            api.client.files.delete(file_id)
        assert info.value.body["code"] == "file_in_use" and job.id in info.value.body["message"]
    for status in ("queued", "running", "paused"):
        repo.update_job(api.ctx.db, job.id, status=status)
        with pytest.raises(openai.ConflictError):
            api.client.files.delete(train.id)
    api.client.fine_tuning.jobs.cancel(job.id)
    assert api.client.files.delete(train.id).deleted is True


def test_suffix_is_validated_and_seed_bounded_without_leaving_a_job_directory(api, tmp_path):
    train = upload(api, tmp_path)
    for suffix in ("a:b", "x" * 65, "sp ace", "a/b"):
        with pytest.raises(openai.BadRequestError) as info:
            api.client.fine_tuning.jobs.create(model=BASE, training_file=train.id, suffix=suffix)
        assert info.value.body["param"] == "suffix"
    for seed in (2**70, -1, 2**31):
        with pytest.raises(openai.BadRequestError) as info:
            api.client.fine_tuning.jobs.create(model=BASE, training_file=train.id, seed=seed)
        assert info.value.body["param"] == "seed"
    jobs_dir = api.ctx.settings.data_dir / "jobs"
    assert not jobs_dir.exists() or not any(jobs_dir.iterdir())
    job = api.client.fine_tuning.jobs.create(model=BASE, training_file=train.id, suffix="v1.2_b-c", seed=2**31 - 1)
    assert job.seed == 2**31 - 1 and (jobs_dir / job.id).is_dir()


def test_a_non_ascii_api_key_gets_a_401_and_a_non_ascii_key_can_be_configured(api, tmp_path):
    for header in ("Bearer ключ".encode(), b"Bearer \xff\xfe", "Bearer sk-unit-tunesmith\u00e9".encode()):
        r = httpx.get(f"{api.base_url}/models", headers={"Authorization": header})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    settings = ServeSettings(data_dir=tmp_path / "d2", api_keys=["clé-ключ"], port=0)
    with serve_app(settings) as other:
        ok = httpx.get(f"{other.base_url}/models", headers={"Authorization": "Bearer clé-ключ".encode()})
        assert ok.status_code == 200


def test_list_limits_out_of_range_are_400_on_every_list_route(api, tmp_path):
    job = api.client.fine_tuning.jobs.create(model=BASE, training_file=upload(api, tmp_path).id)
    jobs = f"fine_tuning/jobs/{job.id}"
    routes = ["files", "fine_tuning/jobs", f"{jobs}/events", f"{jobs}/checkpoints"]
    for route in routes:
        for limit in (10**20, 2**63 - 1, -1, 0):
            r = httpx.get(f"{api.base_url}/{route}", params={"limit": limit}, headers=api.auth)
            err = error_of(r)
            assert r.status_code == 400 and err["param"] == "limit", (route, limit, r.text)
    with pytest.raises(openai.BadRequestError):
        api.client.fine_tuning.jobs.list(limit=-1)


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "\\udc80", "training_file": "file-x"}',
        b'{"model": "smollm2-135m-instruct", "training_file": "file-x", "suffix": "\\udc80"}',
        b'{"model": "smollm2-135m-instruct", "training_file": "file-x", "metadata": {"k": "\\udc80"}}',
        b'{"model": "smollm2-135m-instruct", "training_file": "file-x", "metadata": {"\\udc80": 1}}',
    ],
)
def test_lone_surrogates_in_a_json_body_are_400(api, body):
    r = httpx.post(
        f"{api.base_url}/fine_tuning/jobs", content=body, headers={**api.auth, "content-type": "application/json"}
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] != "server_error"


def test_lone_surrogates_in_alias_and_chat_model_names_are_400(api):
    headers = {**api.auth, "content-type": "application/json"}
    for path, body in (
        ("aliases", b'{"name": "ok", "model": "\\udc80"}'),
        ("chat/completions", b'{"model": "\\ud800x", "messages": [{"role": "user", "content": "hi"}]}'),
    ):
        r = httpx.post(f"{api.base_url}/{path}", content=body, headers=headers)
        assert r.status_code == 400, (path, r.text)
    emoji = b'{"name": "ok", "model": "\\ud83d\\ude00"}'  # a valid surrogate pair is just text
    assert httpx.post(f"{api.base_url}/aliases", content=emoji, headers=headers).status_code == 404


def test_json_errors_name_no_offset_as_param_and_4xx_codes_are_never_server_error(api, tmp_path):
    bad = httpx.post(
        f"{api.base_url}/fine_tuning/jobs", content=b"{bad", headers={**api.auth, "content-type": "application/json"}
    )
    err = error_of(bad)
    assert bad.status_code == 400 and err["param"] is None and "JSON" in err["message"]
    purpose = httpx.post(
        f"{api.base_url}/files", files={"file": ("a.txt", b"x")}, data={"purpose": "nope"}, headers=api.auth
    )
    assert error_of(purpose)["code"] not in (None, "server_error")
    missing = httpx.get(f"{api.base_url}/no/such/route", headers=api.auth)
    assert missing.status_code == 404 and error_of(missing)["code"] not in (None, "server_error")


def test_an_unauthenticated_upload_is_refused_before_its_body_is_read(api, monkeypatch):
    parsed = []
    original = MultiPartParser.parse

    async def spy(self):
        parsed.append(1)
        return await original(self)

    monkeypatch.setattr(MultiPartParser, "parse", spy)
    anonymous = openai.OpenAI(base_url=api.base_url, api_key="wrong", max_retries=0, timeout=60)
    with pytest.raises(openai.AuthenticationError):
        anonymous.files.create(file=("big.jsonl", io.BytesIO(b"x" * 50_000_000)), purpose="user_data")
    assert parsed == []  # no multipart parsing (and so no spooled temp file) happened
    assert api.client.files.create(file=("s.txt", io.BytesIO(b"x")), purpose="user_data").bytes == 1
    assert parsed == [1]
    assert httpx.get(api.base_url.removesuffix("/v1") + "/health").status_code == 200  # still public
