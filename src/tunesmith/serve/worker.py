"""The job worker: a thread in the server process that runs each queued job as a `tunesmith train` subprocess.

Training never runs in the web process. Each tick the worker validates new jobs' files, supervises running
processes (metrics.jsonl rows -> ``metrics`` events, checkpoint dirs -> checkpoints, cancel/pause -> stop the
process group) and starts queued jobs, oldest first. On start it re-queues jobs a previous server left
``running``, to resume from their last checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tunesmith.config import save_config
from tunesmith.errors import TunesmithError
from tunesmith.serve.mapping import build_train_config, checkpoint_model_name, fine_tuned_model_name
from tunesmith.serve.settings import ServeSettings
from tunesmith.store import repo
from tunesmith.store.db import Database

log = logging.getLogger("tunesmith.worker")
STOP_GRACE_S = 5.0


class JobWorker:
    """Supervises training subprocesses (``settings.max_concurrent_jobs`` at a time)."""

    def __init__(self, db: Database, settings: ServeSettings) -> None:
        self.db, self.settings = db, settings
        self.procs: dict[str, subprocess.Popen] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Recover jobs left by a previous server, then start the supervising thread."""
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="tunesmith-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and the training processes; their jobs stay ``running`` and resume on restart."""
        self._stop.set()
        self._wake.set()
        if self._thread:
            self._thread.join(timeout=10)
        for proc in list(self.procs.values()):
            stop_process(proc)
        self.procs.clear()

    def wake(self) -> None:
        """Run a tick now (after a create, cancel, pause or resume)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # the worker must outlive one bad job; the error is logged with its traceback
                log.exception("worker tick failed")
            self._wake.wait(self.settings.poll_interval_s)
            self._wake.clear()

    def tick(self) -> None:
        """One pass: validate new jobs, supervise running ones, start queued ones."""
        for job in repo.list_jobs(self.db, limit=1000, statuses=("validating_files",), oldest_first=True):
            self.validate(job.id)
        for job_id in list(self.procs):
            self.supervise(job_id)
        free = self.settings.max_concurrent_jobs - len(self.procs)
        if free > 0 and not self._stop.is_set():
            for job in repo.list_jobs(self.db, limit=free, statuses=("queued",), oldest_first=True):
                self.launch(job.id)

    # ------------------------------------------------------------ steps

    def recover(self) -> None:
        """Re-queue jobs a previous server left running (killing orphaned trainers first)."""
        for job in repo.list_jobs(self.db, limit=1000, statuses=("running",), oldest_first=True):
            kill_orphan(job.pid, Path(job.work_dir) / "config.yaml")
            repo.update_job(
                self.db,
                job.id,
                "Server restarted; the job will resume from its last checkpoint",
                status="queued",
                resume=True,
                pid=None,
            )

    def validate(self, job_id: str) -> None:
        """Check the job's files; ``queued`` when they load, ``failed`` with the first problems otherwise."""
        job = repo.get_job(self.db, job_id)
        kind = "preference" if job.method["type"] == "dpo" else "chat"
        for param in ("training_file", "validation_file"):
            file_id = getattr(job, param)
            if file_id is None:
                continue
            try:
                check_dataset(repo.get_file(self.db, file_id).path, kind)
            except TunesmithError as exc:
                error = {"code": f"invalid_{param}", "message": exc.message, "param": param}
                repo.set_job_status_if(
                    self.db,
                    job_id,
                    ("validating_files",),
                    "failed",
                    f"{param} {file_id} is invalid",
                    error=error,
                    finished_at=repo.now(),
                )
                return
        repo.set_job_status_if(
            self.db, job_id, ("validating_files",), "queued", "Files validated; job queued"
        )

    def launch(self, job_id: str) -> None:
        """Write the job's TrainConfig and start `tunesmith train` in its own process group."""
        job = repo.get_job(self.db, job_id)
        work = Path(job.work_dir)
        output = work / "output"
        try:
            cfg = build_train_config(
                job_dict(job),
                Path(repo.get_file(self.db, job.training_file).path),
                Path(repo.get_file(self.db, job.validation_file).path) if job.validation_file else None,
                output,
                self.settings.train_defaults,
            )
        except TunesmithError as exc:
            self._fail(job_id, "invalid_hyperparameters", exc.message, exc.param)
            return
        resume = job.resume and any((output / "checkpoints").glob("checkpoint-*"))
        cmd = [sys.executable, "-m", "tunesmith", "train", str(work / "config.yaml")] + (
            ["--resume"] if resume else []
        )
        try:
            save_config(cfg, work / "config.yaml")
            with open(work / "train.log", "ab") as logf:
                proc = subprocess.Popen(
                    cmd,
                    cwd=work,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )  # own process group: cancel kills trainer + children
        except OSError as exc:  # disk full, permissions...: fail the job instead of retrying it every tick
            self._fail(job_id, "launch_failed", f"could not start training: {exc}", None)
            return
        started = repo.set_job_status_if(
            self.db,
            job_id,
            ("queued",),
            "running",
            "Resuming from the last checkpoint" if resume else "Fine-tuning job started",
            pid=proc.pid,
            metrics_lines=job.metrics_lines if resume else 0,  # a fresh run starts a new metrics.jsonl
        )
        if started is None:  # cancelled or paused between the query and now
            stop_process(proc)
            return
        self.procs[job_id] = proc

    def supervise(self, job_id: str) -> None:
        """Stop a cancelled/paused job's process, ingest progress, finish the job when its process exits."""
        proc, job = self.procs[job_id], repo.get_job(self.db, job_id)
        output = Path(job.work_dir) / "output"
        if job.status in ("cancelled", "paused"):
            stop_process(proc)
            del self.procs[job_id]
            if job.status == "cancelled":  # no half-written adapter, checkpoint or metrics stays behind
                shutil.rmtree(output, ignore_errors=True)
                repo.delete_checkpoints(self.db, job_id)
            return
        ingest_progress(self.db, job, output)
        if proc.poll() is not None:
            del self.procs[job_id]
            self.finish(job_id, proc.returncode, output)

    def finish(self, job_id: str, returncode: int, output: Path) -> None:
        """Mark an exited job ``succeeded`` (run.json says so, adapter/ exists) or ``failed``."""
        job = repo.get_job(self.db, job_id)
        ingest_progress(self.db, job, output)
        run = read_json(output / "run.json")
        if returncode == 0 and run.get("status") == "succeeded" and (output / "adapter").is_dir():
            repo.set_job_status_if(
                self.db,
                job_id,
                ("running",),
                "succeeded",
                "The job has successfully completed",
                finished_at=repo.now(),
                fine_tuned_model=fine_tuned_model_name(job.model, job.suffix, job.id),
                trained_tokens=run.get("trained_tokens"),
                estimated_finish=None,
                pid=None,
            )
        else:
            tail = log_tail(Path(job.work_dir) / "train.log")
            self._fail(job_id, "training_failed", f"training exited with code {returncode}: {tail}", None)

    def _fail(self, job_id: str, code: str, message: str, param: str | None) -> None:
        repo.set_job_status_if(
            self.db,
            job_id,
            ("queued", "running"),
            "failed",
            f"Job failed: {message}",
            error={"code": code, "message": message, "param": param},
            finished_at=repo.now(),
            estimated_finish=None,
            pid=None,
        )


def job_dict(job: Any) -> dict[str, Any]:
    """The job fields :func:`build_train_config` reads."""
    return {
        "model": job.model,
        "seed": job.seed,
        "method": job.method,
        "train_overrides": job.train_overrides,
    }


def check_dataset(path: str | Path, kind: str) -> None:
    """Raise DatasetError when the file does not load as ``kind`` (chat or preference)."""
    from tunesmith.data.load import load_examples

    load_examples(path, kind=kind)


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
    for step, path in find_checkpoints(output / "checkpoints"):
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
    with open(path, encoding="utf-8") as f:
        lines = f.readlines()
    complete = [ln for ln in lines if ln.endswith("\n")]  # a line still being written is read next tick
    rows = []
    for ln in complete[skip:]:
        with contextlib.suppress(json.JSONDecodeError):
            rows.append(json.loads(ln))
    return rows, len(complete)


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


def log_tail(path: Path, n_chars: int = 1500) -> str:
    """The end of a log file (where a traceback's last line is)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace")[-n_chars:].strip()
    except OSError:
        return "(no log)"


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM the process group, SIGKILL it after a grace period."""
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def kill_orphan(pid: int | None, config_path: Path) -> None:
    """Kill a trainer left by a crashed server, if ``pid`` is still that trainer (not a reused pid)."""
    if not pid:
        return
    import psutil

    try:
        proc = psutil.Process(pid)
        if str(config_path) not in " ".join(proc.cmdline()):
            return
        os.killpg(pid, signal.SIGKILL)
        proc.wait(STOP_GRACE_S)
    except (psutil.Error, ProcessLookupError, PermissionError):
        return
