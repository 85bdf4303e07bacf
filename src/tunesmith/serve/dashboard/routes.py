"""The dashboard: server-rendered pages at ``/`` and ``/ui/...`` whose small JS layer calls the /v1 API.

Pages carry no data of their own: each renders a skeleton plus the session's CSRF token, and ``app.js`` fills
it from the same /v1 endpoints the SDK uses (sent with the session cookie and ``X-CSRF-Token``). Sign-in and
the cookie check live in ``deps.RequireKeyMiddleware``; this module only issues and clears the cookie. The one
exception is a published evaluation report (``reports.py``): its own report.html, served sandboxed.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from tunesmith.serve.dashboard import reports
from tunesmith.serve.dashboard.session import COOKIE_NAME, SESSION_MAX_AGE_S, csrf_matches, issue_cookie
from tunesmith.serve.deps import ServerContext, get_ctx

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
# Everything the pages load is served from here: no inline script, no CDN, no framing by another site.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
# A published report.html is a file someone copied onto the server: it runs in a sandbox (a unique origin, no
# script, no forms, no requests but its own inline CSS and data: images) and only this server may frame it.
REPORT_HEADERS = {
    "Content-Security-Policy": "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    "frame-ancestors 'self'; form-action 'none'; base-uri 'none'",
    "X-Frame-Options": "SAMEORIGIN",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PAGES = {  # path under /ui/ -> (template, nav title)
    "jobs": ("jobs.html", "Jobs"),
    "new": ("new_job.html", "New job"),
    "compare": ("compare.html", "Compare"),
    "playground": ("playground.html", "Playground"),
    "data": ("data.html", "Data"),
    "aliases": ("aliases.html", "Aliases"),
    "reports": ("reports.html", "Reports"),
}

router = APIRouter(include_in_schema=False)


def install_dashboard(app: FastAPI) -> None:
    """Mount the dashboard's pages and static files on ``app``."""
    app.include_router(router)
    app.mount("/ui/static", StaticFiles(directory=HERE / "static"), name="dashboard-static")


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page with the session's CSRF token and the security headers."""
    session = getattr(request.state, "dashboard_session", None)
    auth = bool(request.app.state.ctx.settings.api_keys)
    context = {"csrf": session.csrf if session else "", "auth": auth, "pages": PAGES, **context}
    response = TEMPLATES.TemplateResponse(request, template, context, status_code=status)
    response.headers.update(SECURITY_HEADERS)
    return response


def same_origin(request: Request) -> bool:
    """Whether a form post comes from this server's own page (browsers send ``Origin`` on every POST)."""
    origin = request.headers.get("origin")
    return origin is None or origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


@router.get("/")
def home() -> RedirectResponse:
    """The jobs list."""
    return RedirectResponse("/ui/jobs", status_code=303)


@router.get("/ui/login")
def login_page(request: Request) -> Response:
    """The sign-in form (straight to the jobs when the server has no keys)."""
    if not request.app.state.ctx.settings.api_keys:
        return RedirectResponse("/ui/jobs", status_code=303)
    return render(request, "login.html", page="login", error=None)


@router.post("/ui/login")
async def login(request: Request) -> Response:
    """Check the typed API key; on success set the signed session cookie and go to the jobs list."""
    keys = request.app.state.ctx.settings.api_keys
    form = await request.form()
    typed = str(form.get("api_key", "")).strip().encode("utf-8")
    matched = False
    for key in keys:  # every key compared, no early exit
        matched |= hmac.compare_digest(typed, key.encode("utf-8"))
    if not keys or not matched or not same_origin(request):
        return render(request, "login.html", 401, page="login", error="That is not one of this server's API keys.")
    key = next(k for k in keys if hmac.compare_digest(typed, k.encode("utf-8")))
    response = RedirectResponse("/ui/jobs", status_code=303)
    response.set_cookie(
        COOKIE_NAME,
        issue_cookie(key),
        max_age=SESSION_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    """Forget the session (the form carries the CSRF token)."""
    session = getattr(request.state, "dashboard_session", None)
    form = await request.form()
    if session is not None and not csrf_matches(str(form.get("csrf", "")), session):
        return JSONResponse({"error": {"message": "bad CSRF token", "type": "invalid_request_error"}}, 403)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


@router.get("/ui/jobs/{job_id}")
def job_page(request: Request, job_id: str) -> HTMLResponse:
    """One job: curves, hyperparameters, events, checkpoints, controls (filled by app.js)."""
    return render(request, "job.html", page="job", job_id=job_id)


@router.get("/ui/reports/{report_id:path}")
def report_page(request: Request, report_id: str, ctx: ServerContext = Depends(get_ctx)) -> HTMLResponse:
    """One published report: its own report.html in a sandboxed iframe under the dashboard's header."""
    if reports.find_report_html(reports.reports_root(ctx.settings.data_dir), report_id) is None:
        return render(request, "not_found.html", 404, page="")
    return render(request, "report_view.html", page="report", report_id=report_id)


@router.get("/ui/report-html/{report_id:path}")
def report_html(report_id: str, ctx: ServerContext = Depends(get_ctx)) -> Response:
    """A published report's report.html, addressed by its id in the listing (never by a client path)."""
    path = reports.find_report_html(reports.reports_root(ctx.settings.data_dir), report_id)
    if path is None:
        return PlainTextResponse("no such report", 404, headers=REPORT_HEADERS)
    return FileResponse(path, media_type="text/html; charset=utf-8", headers=REPORT_HEADERS)


@router.get("/ui/{name}")
def page(request: Request, name: str) -> HTMLResponse:
    """One of PAGES."""
    if name not in PAGES:
        return render(request, "not_found.html", 404, page="")
    return render(request, PAGES[name][0], page=name)


@router.get("/ui/api/files/{file_id}/preview")
def preview_file(
    file_id: str,
    model: str | None = Query(None, description="Base model whose chat template renders the examples."),
    n: int = Query(3, ge=1, le=20),
    ctx: ServerContext = Depends(get_ctx),
) -> dict[str, Any]:
    """The first ``n`` examples as (text, trained) segments, as ``tunesmith data preview`` shows them."""
    from tunesmith.data.preview import preview_examples  # loads a tokenizer: only when asked
    from tunesmith.store import repo

    row = repo.get_file(ctx.db, file_id)
    base = model or ctx.settings.base_models[0]
    previews = preview_examples(row.path, model=base, n=n)
    return {"file": file_id, "model": base, "data": [p.model_dump() for p in previews]}


@router.get("/ui/api/reports")
def list_reports(ctx: ServerContext = Depends(get_ctx)) -> dict[str, Any]:
    """The evaluation reports published under ``<data_dir>/reports/``: one summary row each, newest first."""
    return reports.listing(reports.reports_root(ctx.settings.data_dir))
