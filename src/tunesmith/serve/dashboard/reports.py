"""Published evaluation reports: the ``report.json`` + ``report.html`` folders under ``<data_dir>/reports/``.

A report is published by copying its folder (what `tunesmith eval`, `compare` or `demo` wrote) anywhere under
``<data_dir>/reports/``; its id is that folder's path relative to ``reports/`` (``demo-eval``, ``2026/sentiment``);
folders whose name starts with a dot are skipped (a copy still being written).
The client only ever sends an id, never a path: ``find_report_html`` accepts an id only when the listing holds it
and its files resolve inside ``reports/`` (no ``..``, no absolute path, no symlink leading out).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from tunesmith.evaluate.schema import EvalReport


class CandidateHeadline(BaseModel):
    """One candidate's headline metric with its 95% interval (None when it was not measured)."""

    name: str
    kind: str
    value: float | None = None
    low: float | None = None
    high: float | None = None


class ReportSummary(BaseModel):
    """One row of the Reports page, read from a ``report.json``."""

    id: str
    created: str = ""
    modified: float
    test_file: str = ""
    n_examples: int = 0
    metric: str = ""
    candidates: list[CandidateHeadline] = []
    verdict: str = ""
    has_html: bool = False
    error: str | None = None


def reports_root(data_dir: Path) -> Path:
    """Where a server looks for published reports."""
    return data_dir / "reports"


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` resolves (symlinks followed) to a place under ``root``."""
    return path.resolve().is_relative_to(root.resolve())


def summarize(report_id: str, path: Path) -> ReportSummary:
    """The row of one ``report.json``; a file that is not a tunesmith report gives a row with its error."""
    modified = path.stat().st_mtime
    has_html = (path.parent / "report.html").is_file()
    try:
        report = EvalReport.model_validate_json(path.read_bytes())
    except (ValidationError, ValueError) as exc:
        return ReportSummary(
            id=report_id,
            modified=modified,
            has_html=has_html,
            error=f"not a tunesmith report.json: {str(exc).splitlines()[0]}",
        )
    metric = report.primary_metric
    heads = []
    for c in report.candidates:
        m = c.metrics.get(metric)
        heads.append(CandidateHeadline(name=c.name, kind=c.kind, **(m.model_dump() if m else {})))
    return ReportSummary(
        id=report_id,
        created=report.created,
        modified=modified,
        test_file=Path(report.test_file).name,
        n_examples=report.n_examples,
        metric=metric,
        candidates=heads,
        verdict=report.verdict,
        has_html=has_html,
    )


def report_ids(root: Path) -> list[str]:
    """The id of every ``*/report.json`` under ``root`` (any depth) that resolves inside it."""
    if not root.is_dir():
        return []
    ids = []
    for path in root.rglob("report.json"):
        parts = path.parent.relative_to(root).parts
        # hidden folders are skipped: atomic copies in progress (.name.xxx.tmp) and replaced ones (.name.old)
        if parts and not any(p.startswith(".") for p in parts) and path.is_file() and inside(path, root):
            ids.append("/".join(parts))
    return ids


def list_reports(root: Path) -> list[ReportSummary]:
    """A summary of every published report, newest first; nothing when ``root`` is missing."""
    rows = [summarize(report_id, root / report_id / "report.json") for report_id in report_ids(root)]
    return sorted(rows, key=lambda r: (-r.modified, r.id))


def find_report_html(root: Path, report_id: str) -> Path | None:
    """The ``report.html`` of the listed report ``report_id``, or None (unknown id, no html, or outside root)."""
    if not report_id or report_id.startswith("/") or ".." in report_id.split("/"):
        return None
    if report_id not in report_ids(root):
        return None
    html = root / report_id / "report.html"
    return html if html.is_file() and inside(html, root) else None


def listing(root: Path) -> dict[str, Any]:
    """The ``GET /ui/api/reports`` body."""
    rows = list_reports(root)
    for row in rows:
        row.created = row.created or dt.datetime.fromtimestamp(row.modified, dt.UTC).isoformat(timespec="seconds")
    return {"object": "list", "data": [r.model_dump() for r in rows]}
