"""What the worker reads from a running job's run directory: new metrics.jsonl rows become ``metrics`` events
and update the ETA, checkpoint directories become checkpoints, and a finished run's metrics become its results
file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tunesmith.core.atomic import atomic_open
from tunesmith.core.jsonl import parse_lines, split_torn_tail
from tunesmith.serve.mapping import checkpoint_model_name, fine_tuned_model_name, results_csv
from tunesmith.store import repo
from tunesmith.store.db import Database


def ingest_progress(db: Database, job: Any, output: Path) -> None:
    """Turn new metrics.jsonl rows into events, new checkpoint dirs into checkpoints, update the ETA."""
    rows, lines_seen = read_new_rows(output / "metrics.jsonl", job.metrics_lines)
    if rows:
        repo.add_metrics_events(db, job.id, rows, lines_seen)
        last = rows[-1]
        eta = estimate_finish(last)
        if eta is not None:
            repo.update_job(db, job.id, estimated_finish=eta)
    all_rows, _ = read_new_rows(output / "metrics.jsonl", 0)
    found = find_checkpoints(output / "checkpoints")
    # Checkpoints the trainer removed (save_total_limit) are no longer listed.
    repo.delete_checkpoints(db, job.id, keep_paths={str(path) for _, path in found})
    for step, path in found:
        metrics = metrics_at(all_rows, step)
        repo.upsert_checkpoint(
            db,
            job.id,
            step,
            checkpoint_model_name(fine_tuned_model_name(job.model, job.suffix, job.id), step),
            str(path),
            metrics,
        )


def read_new_rows(path: Path, skip: int) -> tuple[list[dict[str, Any]], int]:
    """Complete JSON lines of ``path`` after the first ``skip``; returns (rows, lines seen in total)."""
    if not path.exists():
        return [], skip
    complete, _ = split_torn_tail(path.read_bytes())  # a line still being written is read next tick
    text = complete.decode("utf-8", errors="replace")
    rows = [row for lineno, row in parse_lines(path, text, skip_bad=True) if lineno > skip]
    return rows, text.count("\n")


def estimate_finish(row: dict[str, Any]) -> int | None:
    """Unix time the run should end, from a metrics row's elapsed_s, step and total_steps."""
    step, total, elapsed = row.get("step"), row.get("total_steps"), row.get("elapsed_s")
    if not step or not total or elapsed is None:
        return None
    return int(time.time() + elapsed / step * max(total - step, 0))


def metrics_at(rows: list[dict[str, Any]], step: int) -> dict[str, Any]:
    """Metrics as of ``step``: the latest value of each metric logged at or before it."""
    keys = ("train_loss", "train_mean_token_accuracy", "valid_loss", "valid_mean_token_accuracy")
    out: dict[str, Any] = {"step": step}
    for row in rows:
        if row.get("step", 0) <= step:
            out.update({k: row[k] for k in keys if row.get(k) is not None})
    return out


def find_checkpoints(root: Path) -> list[tuple[int, Path]]:
    """Complete ``checkpoint-<step>`` adapter dirs under ``root``, by step."""
    found = []
    for path in root.glob("checkpoint-*") if root.is_dir() else []:
        step = path.name.removeprefix("checkpoint-")
        if step.isdigit() and (path / "adapter_config.json").exists() and any(path.glob("adapter_model.*")):
            found.append((int(step), path))
    return sorted(found)


def read_json(path: Path) -> dict[str, Any]:
    """A JSON file's object, or {} when missing or unreadable."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def save_results_file(db: Database, files_dir: Path, job_id: str, output: Path) -> Any:
    """Write the job's results CSV as a ``fine-tune-results`` file; returns its file row."""
    file_id = repo.new_id("file")
    path = files_dir / f"{file_id}.csv"
    data = results_csv(read_new_rows(output / "metrics.jsonl", 0)[0]).encode("utf-8")
    with atomic_open(path, "wb") as f:
        f.write(data)
    return repo.add_file(
        db, id=file_id, filename="step_metrics.csv", purpose="fine-tune-results", bytes=len(data), path=str(path)
    )


def read_log(path: Path) -> str:
    """A log file's text ("" when missing)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
