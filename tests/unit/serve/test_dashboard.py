"""The dashboard's session cookie and how the auth middleware treats pages, the API and static files."""

from __future__ import annotations

import re

import httpx

from tests.unit.serve.conftest import API_KEY, serve_app
from tunesmith.serve.dashboard.session import (
    SESSION_MAX_AGE_S,
    cookie_value,
    csrf_matches,
    issue_cookie,
    verify_cookie,
)
from tunesmith.serve.settings import ServeSettings


def test_a_cookie_verifies_only_with_its_key_and_only_until_it_expires():
    cookie = issue_cookie("sk-a", now=1000)
    session = verify_cookie(cookie, ["sk-b", "sk-a"], now=1001)
    assert session is not None and session.actor == "dashboard:...sk-a"
    assert "sk-a" not in cookie  # the key itself never travels in the cookie
    assert verify_cookie(cookie, ["sk-b"], now=1001) is None  # key removed from --api-key: signed out
    assert verify_cookie(cookie, ["sk-a"], now=1000 + SESSION_MAX_AGE_S + 1) is None
    assert verify_cookie(cookie, ["sk-a"], now=999 - 60) is None  # issued in the future
    issued, nonce, sig = cookie.split(".")
    tampered = sig[:-1] + ("1" if sig[-1] == "0" else "0")
    assert verify_cookie(f"{issued}.{nonce}.{tampered}", ["sk-a"], now=1001) is None
    assert verify_cookie(f"{int(issued) + 1}.{nonce}.{sig}", ["sk-a"], now=1001) is None
    for junk in ("", "x", "1.2", "a.b.c", "1.é.3"):
        assert verify_cookie(junk, ["sk-a"]) is None


def test_each_session_has_its_own_csrf_token():
    a = verify_cookie(issue_cookie("sk-a"), ["sk-a"])
    b = verify_cookie(issue_cookie("sk-a"), ["sk-a"])
    assert a.csrf != b.csrf
    assert csrf_matches(a.csrf, a) and not csrf_matches(b.csrf, a) and not csrf_matches("", a)
    assert not csrf_matches("é", a)


def test_the_cookie_is_found_among_others():
    assert cookie_value(b"a=1; tunesmith_session=v.w.x; b=2") == "v.w.x"
    assert cookie_value(b"a=1") == ""


def test_pages_redirect_api_refuses_and_the_cookie_needs_the_csrf_header(api):
    root = api.base_url.removesuffix("/v1")
    with httpx.Client(base_url=root, follow_redirects=False) as web:
        assert web.get("/ui/jobs").headers["location"] == "/ui/login"
        assert web.get("/ui/static/style.css").status_code == 200
        assert web.get("/ui/login").status_code == 200
        assert web.post("/ui/login", data={"api_key": "nope"}).status_code == 401
        assert web.post("/ui/login", data={"api_key": API_KEY}).status_code == 303
        page = web.get("/ui/jobs")
        assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
        csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text).group(1)
        assert web.get("/v1/models").status_code == 401
        assert web.get("/v1/models", headers={"X-CSRF-Token": "0" * 64}).status_code == 401
        assert web.get("/v1/models", headers={"X-CSRF-Token": csrf}).status_code == 200
        deploy = {"name": "prod", "model": "smollm2-135m-instruct"}
        r = web.post("/v1/aliases", json=deploy, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        assert r.json()["history"][0]["actor"] == f"dashboard:...{API_KEY[-4:]}"
        assert web.get("/ui/nothing").status_code == 404
        assert web.post("/ui/logout", data={"csrf": "bad"}).status_code == 403
        out = web.post("/ui/logout", data={"csrf": csrf})
        assert out.status_code == 303 and 'tunesmith_session=""' in out.headers["set-cookie"]


def test_without_api_keys_the_dashboard_needs_no_sign_in(tmp_path):
    with serve_app(ServeSettings(data_dir=tmp_path / "data", api_keys=[], port=0)) as handle:
        root = handle.base_url.removesuffix("/v1")
        with httpx.Client(base_url=root, follow_redirects=False) as web:
            assert web.get("/ui/jobs").status_code == 200
            assert web.get("/ui/login").headers["location"] == "/ui/jobs"
            assert web.get("/").headers["location"] == "/ui/jobs"
