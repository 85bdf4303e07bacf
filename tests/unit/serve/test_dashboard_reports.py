"""The dashboard's Reports: published report folders listed from report.json, report.html served sandboxed."""

from __future__ import annotations

import contextlib
import http.client
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from tests.unit.serve.conftest import API_KEY
from tunesmith.cli.demo import publish_report
from tunesmith.evaluate.report.html import render_html
from tunesmith.evaluate.schema import Comparison, CostSpeed, EvalReport, ExampleResult, MetricValue

VERDICT = "fine-tuned beats few-shot on accuracy by +0.50 (95% CI [+0.00, +1.00])"


def tiny_report() -> EvalReport:
    """A two-candidate, two-example report: few-shot gets one right, the fine-tuned model both."""
    cost = CostSpeed(prompt_tokens_mean=20, completion_tokens_mean=3, latency_p50_s=0.1, latency_p95_s=0.2)

    def candidate(name: str, kind: str, right: list[int], value: MetricValue) -> dict:
        examples = [
            ExampleResult(
                index=i,
                output="positive",
                scores={"accuracy": float(i in right)},
                prompt_tokens=20,
                completion_tokens=3,
                latency_s=0.1,
            )
            for i in range(2)
        ]
        return {
            "name": name,
            "kind": kind,
            "model": "smollm2",
            "spec": {},
            "metrics": {"accuracy": value},
            "cost": cost,
            "examples": examples,
        }

    return EvalReport(
        created="2026-11-22T07:00:00",
        test_file="examples/sentiment/test.jsonl",
        n_examples=2,
        task_type="classification",
        primary_metric="accuracy",
        metrics=["accuracy"],
        references=["positive", "negative"],
        questions=["great!", "awful"],
        candidates=[
            candidate("few-shot-k6", "few-shot", [0], MetricValue(value=0.5, low=0.0, high=1.0)),
            candidate("fine-tuned", "run", [0, 1], MetricValue(value=1.0, low=1.0, high=1.0)),
        ],
        comparisons=[
            Comparison(
                finetuned="fine-tuned",
                baseline="few-shot-k6",
                metric="accuracy",
                diff=0.5,
                low=0.0,
                high=1.0,
                p_value=0.5,
                mcnemar={"p_value": 1.0, "only_a": 1, "only_b": 0},
                pass_to_fail=[],
                fail_to_pass=[1],
            )
        ],
        verdict=VERDICT,
        config={},
    )


def write_report_folder(folder: Path) -> Path:
    """What `tunesmith eval` writes (report.json + report.html, via the real writer), in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    report = tiny_report()
    (folder / "report.json").write_text(report.model_dump_json(), encoding="utf-8")
    (folder / "report.html").write_text(render_html(report), encoding="utf-8")
    return folder


def signed_in(api) -> tuple[httpx.Client, str]:
    root = api.base_url.removesuffix("/v1")
    web = httpx.Client(base_url=root, follow_redirects=False, timeout=30)
    assert web.post("/ui/login", data={"api_key": API_KEY}).status_code == 303
    csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', web.get("/ui/reports").text).group(1)
    return web, csrf


def raw_get(web: httpx.Client, path: str) -> tuple[int, str]:
    """GET ``path`` exactly as written (httpx would resolve the ``..`` before sending), with web's cookie."""
    url = urlsplit(str(web.base_url))
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    cookie = "; ".join(f"{k}={v}" for k, v in web.cookies.items())
    try:
        conn.request("GET", path, headers={"Cookie": cookie})
        r = conn.getresponse()
        return r.status, r.read().decode("utf-8", "replace")
    finally:
        conn.close()


def test_a_published_report_is_listed_and_its_html_served_sandboxed(api, tmp_path):
    reports = api.ctx.settings.data_dir / "reports"
    publish_report(write_report_folder(tmp_path / "eval"), reports / "demo-eval")  # as `tunesmith demo` does
    write_report_folder(reports / "2026" / "nested")
    (reports / "broken").mkdir()
    (reports / "broken" / "report.json").write_text("{}", encoding="utf-8")
    write_report_folder(reports / ".demo-eval.x.tmp")  # a copy in progress: not listed
    web, csrf = signed_in(api)
    with contextlib.closing(web):
        r = web.get("/ui/api/reports", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 200, r.text
        rows = {row["id"]: row for row in r.json()["data"]}
        assert set(rows) == {"demo-eval", "2026/nested", "broken"}
        row = rows["demo-eval"]
        assert (row["test_file"], row["n_examples"], row["metric"]) == ("test.jsonl", 2, "accuracy")
        assert [(c["name"], c["value"], c["low"], c["high"]) for c in row["candidates"]] == [
            ("few-shot-k6", 0.5, 0.0, 1.0),
            ("fine-tuned", 1.0, 1.0, 1.0),
        ]
        assert row["verdict"] == VERDICT and row["has_html"] and row["created"].startswith("2026-11-22")
        assert "not a tunesmith report" in rows["broken"]["error"] and not rows["broken"]["has_html"]
        page = web.get("/ui/reports/demo-eval")
        assert page.status_code == 200 and 'sandbox=""' in page.text and "/ui/report-html/demo-eval" in page.text
        html = web.get("/ui/report-html/2026/nested")
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert VERDICT in html.text and "fail → pass" in html.text
        csp = html.headers["content-security-policy"]
        assert csp.startswith("sandbox;") and "default-src 'none'" in csp and "script-src" not in csp


def test_reports_are_addressed_only_by_listed_ids(api, tmp_path):
    reports = api.ctx.settings.data_dir / "reports"
    write_report_folder(reports / "good")
    write_report_folder(tmp_path / "outside")
    (reports / "escape").symlink_to(tmp_path / "outside")  # a listed-looking folder that leads out
    web, _csrf = signed_in(api)
    with contextlib.closing(web):
        assert raw_get(web, "/ui/report-html/good")[0] == 200
        for bad in (
            "../reports/good",
            "good/../good",
            "%2e%2e/good",
            "..%2Fgood",
            "%2Fetc%2Fpasswd",
            "/etc/passwd",
            str(reports / "good"),
            "unknown",
            "escape",
            "",
            "broken",
            ".",
            "good/report.json",
        ):
            for prefix in ("/ui/report-html/", "/ui/reports/"):
                status, text = raw_get(web, prefix + bad)
                assert status == 404 and "tunesmith evaluation" not in text, (prefix, bad, status)


def test_reports_need_the_key(api):
    write_report_folder(api.ctx.settings.data_dir / "reports" / "good")
    root = api.base_url.removesuffix("/v1")
    with httpx.Client(base_url=root, follow_redirects=False) as anon:
        r = anon.get("/ui/api/reports")
        assert r.status_code == 401 and set(r.json()) == {"error"}
        for path in ("/ui/reports", "/ui/reports/good", "/ui/report-html/good"):
            r = anon.get(path)
            assert r.status_code == 303 and r.headers["location"] == "/ui/login" and r.content == b"", path
        assert anon.post("/ui/login", data={"api_key": API_KEY}).status_code == 303
        assert anon.get("/ui/api/reports").status_code == 401  # the cookie alone: no data without CSRF
        assert anon.get("/ui/report-html/good").status_code == 200  # a page: the cookie is enough (an iframe)
        assert anon.get("/ui/api/reports", headers={"Authorization": f"Bearer {API_KEY}"}).status_code == 200
