"""The web dashboard in a real browser: Playwright drives Debian's Chromium against a real `tunesmith serve`.

One fine-tuning job (TINY_TRAINING, created through the New-job form) is shared by the browser tests. Each
test saves a screenshot under its tmp_path; set DASHBOARD_SCREENSHOTS=DIR to also keep them there (the
README's images come from that). The no-key test needs no browser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

try:
    from playwright.sync_api import expect
except ImportError:  # the browser tests skip; the no-key test still runs
    expect = None

from tests.integration.conftest import API_KEY, ServerHandle, running_server
from tests.integration.serve_data import TINY_TRAINING, write_train_file
from tests.unit.serve.test_dashboard_reports import VERDICT, write_report_folder

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAGES = [
    "/",
    "/ui/jobs",
    "/ui/jobs/ftjob-x",
    "/ui/new",
    "/ui/compare",
    "/ui/playground",
    "/ui/data",
    "/ui/aliases",
    "/ui/reports",
    "/ui/reports/x",
    "/ui/report-html/x",
]
VIEWPORT = {"width": 1200, "height": 800}
JOB_TIMEOUT_MS = 300_000
UPLOAD_TIMEOUT_MS = 120_000  # the server validates an upload before it answers; slow on 2 busy cores


def root_url(handle: ServerHandle) -> str:
    return handle.base_url.removesuffix("/v1")


@pytest.fixture(scope="module")
def dash_server(tmp_path_factory) -> Iterator[ServerHandle]:
    """A server for this module (its own data dir, so the job list holds only this module's jobs)."""
    with running_server(tmp_path_factory.mktemp("dash-data")) as (handle, _proc):
        yield handle


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium through Playwright (skipped where either is missing)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (make chromium); Playwright's own download is unreachable")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield b
        b.close()


@pytest.fixture
def page(browser, dash_server):
    """A fresh browser context, signed in through the form."""
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    sign_in(pg, root_url(dash_server))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def sign_in(pg, root: str) -> None:
    pg.goto(f"{root}/ui/jobs")
    assert pg.url.endswith("/ui/login")
    pg.fill("#api_key", API_KEY)
    pg.click("button[type=submit]")
    pg.wait_for_url(re.compile(r".*/ui/jobs$"))


def open_page(pg, url: str) -> None:
    """Go to a dashboard page and wait until its script has loaded its data and wired its controls."""
    pg.goto(url)
    pg.wait_for_selector("body[data-ready]", timeout=UPLOAD_TIMEOUT_MS)


def shoot(pg, tmp_path: Path, name: str) -> Path:
    """Save a screenshot (and a copy under $DASHBOARD_SCREENSHOTS when set)."""
    path = tmp_path / f"{name}.png"
    pg.screenshot(path=str(path))
    assert path.stat().st_size > 5000
    if os.environ.get("DASHBOARD_SCREENSHOTS"):
        keep = Path(os.environ["DASHBOARD_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, keep / path.name)
    return path


@pytest.fixture(scope="module")
def ui_job(browser, dash_server, tmp_path_factory) -> str:
    """Upload a file and create a job through the New-job form; returns the job id."""
    root, tmp = root_url(dash_server), tmp_path_factory.mktemp("ui-job")
    context = browser.new_context(viewport=VIEWPORT)
    pg = context.new_page()
    sign_in(pg, root)
    open_page(pg, f"{root}/ui/new")
    bad = tmp / "bad.jsonl"
    bad.write_text('{"messages": [{"role": "user", "content": "hi"}]}\nnot json\n', encoding="utf-8")
    pg.set_input_files("#train-file", str(bad))
    pg.wait_for_selector("#upload-problems li", timeout=UPLOAD_TIMEOUT_MS)
    problems = pg.inner_text("#upload-problems")
    assert "line 2" in problems, problems
    shoot(pg, tmp, "new_job_problems")
    pg.set_input_files("#train-file", str(write_train_file(tmp / "train.jsonl")))
    expect(pg.locator("#train-file-id")).to_have_value(re.compile("^file-"), timeout=UPLOAD_TIMEOUT_MS)
    pg.select_option("#valid-file-id", pg.input_value("#train-file-id"))  # validated each epoch: valid curves
    pg.select_option("#method", "supervised")
    pg.fill("#suffix", "ui")
    pg.click("details summary")
    pg.fill("#training-config", json.dumps(TINY_TRAINING))
    pg.click("#create-job")
    pg.wait_for_url(re.compile(r".*/ui/jobs/ftjob-[^/]+$"))
    job_id = pg.url.rsplit("/", 1)[1]
    context.close()
    return job_id


@pytest.fixture(scope="module")
def tuned_model(ui_job, dash_server) -> str:
    """The shared job's fine-tuned model, once it succeeded."""
    deadline = time.monotonic() + JOB_TIMEOUT_MS / 1000
    headers = {"Authorization": f"Bearer {API_KEY}"}
    while time.monotonic() < deadline:
        job = httpx.get(f"{dash_server.base_url}/fine_tuning/jobs/{ui_job}", headers=headers).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            assert job["status"] == "succeeded", job
            return job["fine_tuned_model"]
        time.sleep(1)
    pytest.fail(f"{ui_job} did not finish in {JOB_TIMEOUT_MS / 1000}s")


def test_pause_resume_and_cancel_a_queued_job_from_its_page(page, dash_server, ui_job, tmp_path):
    # runs while the shared job trains (one training process at a time), so this one stays queued: no cost
    headers = {"Authorization": f"Bearer {API_KEY}"}
    shared = httpx.get(f"{dash_server.base_url}/fine_tuning/jobs/{ui_job}", headers=headers).json()
    body = {"model": shared["model"], "training_file": shared["training_file"], "training_config": TINY_TRAINING}
    job = httpx.post(f"{dash_server.base_url}/fine_tuning/jobs", json=body, headers=headers).json()
    page.on("dialog", lambda dialog: dialog.accept())
    open_page(page, f"{root_url(dash_server)}/ui/jobs/{job['id']}")
    status = page.locator("#job-status")
    expect(status).to_have_text(re.compile("queued|running"), timeout=60_000)
    page.click("#btn-pause")
    expect(status).to_have_text("paused", timeout=60_000)
    expect(page.locator("#btn-resume")).to_be_enabled()
    page.click("#btn-resume")
    expect(status).to_have_text(re.compile("queued|running"), timeout=60_000)
    page.click("#btn-cancel")
    expect(status).to_have_text("cancelled", timeout=60_000)
    expect(page.locator("#btn-cancel")).to_be_disabled()
    events = page.inner_text("#job-events")
    assert "paused" in events.lower() and "cancel" in events.lower(), events
    shoot(page, tmp_path, "job_controls")


def test_sign_in_upload_create_job_and_watch_the_loss_curve_until_it_succeeds(page, dash_server, ui_job, tmp_path):
    root = root_url(dash_server)
    open_page(page, f"{root}/ui/jobs/{ui_job}")
    page.wait_for_selector("#chart-loss svg polyline.series", timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#job-status")).to_have_text("succeeded", timeout=JOB_TIMEOUT_MS)
    page.wait_for_selector("#ckpt-table tbody tr a.try")
    first_ckpt = page.inner_text("#ckpt-table tbody tr:first-child code")
    assert first_ckpt in unquote(page.get_attribute("#ckpt-table tbody tr:first-child a.try", "href"))
    for chart in ("#chart-loss", "#chart-acc"):  # train and valid curves
        assert page.locator(f"{chart} polyline.series").count() == 2, page.inner_html(chart)[:500]
    assert "n_epochs" in page.inner_text("#job-hparams")
    assert "succeeded" in page.inner_text("#job-events").lower() or page.locator("#job-events li").count() > 3
    assert page.is_disabled("#btn-cancel")
    shoot(page, tmp_path, "job")
    open_page(page, f"{root}/ui/jobs")
    page.wait_for_selector(f"tr[data-job='{ui_job}'] .badge.succeeded")
    assert "100%" in page.inner_text(f"tr[data-job='{ui_job}']")
    shoot(page, tmp_path, "jobs")


def test_the_playground_answers_with_the_fine_tuned_model(page, dash_server, tuned_model, tmp_path):
    open_page(page, f"{root_url(dash_server)}/ui/playground?model={tuned_model}")
    assert page.input_value("#model-a") == tuned_model
    page.fill("#system", "Classify the sentiment of the review as positive or negative.")
    page.fill("#prompt", "Great value and fast delivery")
    page.click("#send")
    page.wait_for_selector("#pane-a .msg.assistant[data-done='1']", timeout=120_000)
    answer = page.inner_text("#pane-a .msg.assistant .content")
    assert answer.strip(), "the model streamed no text"
    shoot(page, tmp_path, "playground")


def test_two_models_side_by_side_on_the_same_prompt(page, dash_server, tuned_model, tmp_path):
    open_page(page, f"{root_url(dash_server)}/ui/playground?model={tuned_model}")
    page.check("#side-by-side")
    base = page.input_value("#model-b")
    assert base and base != tuned_model
    page.fill("#system", "Classify the sentiment of the review as positive or negative.")
    page.fill("#prompt", "The soup was cold and bland")
    page.click("#send")
    for pane in ("#pane-a", "#pane-b"):
        page.wait_for_selector(f"{pane} .msg.assistant[data-done='1']", timeout=120_000)
        assert page.inner_text(f"{pane} .msg.assistant .content").strip()
    assert page.inner_text("#pane-a .pane-model") == tuned_model
    assert page.inner_text("#pane-b .pane-model") == base
    shoot(page, tmp_path, "playground_side_by_side")


def test_compare_draws_the_curves_of_the_checked_jobs(page, dash_server, tuned_model, ui_job, tmp_path):
    open_page(page, f"{root_url(dash_server)}/ui/compare?jobs={ui_job}")
    page.wait_for_selector("#chart-compare polyline.series")
    assert page.locator("#chart-compare polyline.series").count() == 1
    page.select_option("#compare-metric", "train_mean_token_accuracy")
    expect(page.locator("#compare-title")).to_contain_text("accuracy")
    shoot(page, tmp_path, "compare")


def test_deploy_an_alias_and_roll_it_back(page, dash_server, tuned_model, tmp_path):
    open_page(page, f"{root_url(dash_server)}/ui/aliases")
    base = "smollm2-135m-instruct"
    for target in (base, tuned_model):
        page.fill("#alias-name", "prod")
        page.fill("#alias-model", target)
        page.click("#deploy")
        expect(page.locator("[data-alias=prod] .target")).to_have_text(target)
    assert page.locator("[data-alias=prod] tbody tr").count() == 2
    page.click("[data-alias=prod] button.rollback")
    expect(page.locator("[data-alias=prod] .target")).to_have_text(base)
    assert "rollback" in page.inner_text("[data-alias=prod] tbody tr:first-child")
    assert "dashboard:" in page.inner_text("[data-alias=prod] tbody")
    shoot(page, tmp_path, "aliases")


def test_data_page_previews_trained_tokens(page, dash_server, ui_job, tmp_path):
    open_page(page, f"{root_url(dash_server)}/ui/data")
    page.click("tr:has-text('train.jsonl') .preview-btn")
    page.wait_for_selector("#preview-body mark.trained", timeout=60_000)
    assert page.locator("#preview-body mark.trained").first.inner_text().strip()
    shoot(page, tmp_path, "data")


def test_reports_page_lists_a_published_report_and_opens_it(page, dash_server, tmp_path):
    # published as docs/dashboard.md says: its folder copied under <data-dir>/reports/
    write_report_folder(dash_server.data_dir / "reports" / "sentiment-eval")
    open_page(page, f"{root_url(dash_server)}/ui/reports")
    row = page.locator("tr[data-report='sentiment-eval']")
    expect(row).to_contain_text("test.jsonl")
    expect(row.locator(".headline").nth(1)).to_have_text("accuracy 1.000 [1.000, 1.000]")
    expect(row.locator("td.verdict")).to_have_text(VERDICT)
    shoot(page, tmp_path, "reports")
    row.locator("a.open-report").click()
    page.wait_for_url(re.compile(r".*/ui/reports/sentiment-eval$"))
    assert page.get_attribute("#report-frame", "sandbox") == ""
    report = page.frame_locator("#report-frame")
    expect(report.locator("h1")).to_have_text("tunesmith evaluation")
    expect(report.locator(".verdict")).to_have_text(VERDICT)
    expect(report.locator("h4").first).to_contain_text("fail → pass")
    expect(page.locator("header nav a.active")).to_have_text("Reports")
    assert page.locator("#toast").is_hidden(), page.inner_text("#toast")  # no script error shown either
    shoot(page, tmp_path, "report")


def test_no_page_or_data_endpoint_answers_without_the_key(dash_server):
    root, v1 = root_url(dash_server), dash_server.base_url
    with httpx.Client(follow_redirects=False, timeout=30) as anon:
        for path in PAGES:
            r = anon.get(root + path)
            assert r.status_code == 303 and r.headers["location"] == "/ui/login", (path, r.status_code)
            assert r.content == b"", path
        data = [
            ("GET", "/fine_tuning/jobs"), ("GET", "/fine_tuning/jobs/ftjob-x"),
            ("GET", "/fine_tuning/jobs/ftjob-x/events"),
            ("GET", "/fine_tuning/jobs/ftjob-x/checkpoints"), ("POST", "/fine_tuning/jobs/ftjob-x/cancel"),
            ("POST", "/fine_tuning/jobs/ftjob-x/pause"), ("POST", "/fine_tuning/jobs/ftjob-x/resume"),
            ("POST", "/fine_tuning/jobs"), ("GET", "/files"), ("POST", "/files"), ("GET", "/models"),
            ("GET", "/aliases/prod"), ("POST", "/aliases"), ("POST", "/aliases/prod/rollback"),
            ("POST", "/chat/completions"),
        ]  # fmt: skip
        for method, path in data:
            r = anon.request(method, v1 + path)
            assert r.status_code == 401 and set(r.json()) == {"error"}, (method, path, r.text)
        for path in ("/ui/api/files/file-x/preview", "/ui/api/reports"):
            r = anon.get(root + path)
            assert r.status_code == 401 and set(r.json()) == {"error"}, path
        # a wrong key is refused; the right one gives a cookie that opens pages but not the API without CSRF
        assert anon.post(f"{root}/ui/login", data={"api_key": "sk-wrong"}).status_code == 401
        cross_site = {"Origin": "http://evil.example"}
        assert anon.post(f"{root}/ui/login", data={"api_key": API_KEY}, headers=cross_site).status_code == 401
        login = anon.post(f"{root}/ui/login", data={"api_key": API_KEY})
        assert login.status_code == 303 and "httponly" in login.headers["set-cookie"].lower()
        assert "samesite=strict" in login.headers["set-cookie"].lower()
        assert anon.get(f"{root}/ui/jobs").status_code == 200
        assert anon.get(f"{v1}/fine_tuning/jobs").status_code == 401  # the cookie alone: no data
        csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', anon.get(f"{root}/ui/jobs").text).group(1)
        assert anon.get(f"{v1}/fine_tuning/jobs", headers={"X-CSRF-Token": csrf}).status_code == 200
        anon.cookies.clear()
        anon.cookies.set("tunesmith_session", "1.2.3")
        assert anon.get(f"{root}/ui/jobs").status_code == 303
        # static files hold code, no data, and are public
        assert anon.get(f"{root}/ui/static/app.js").status_code == 200
