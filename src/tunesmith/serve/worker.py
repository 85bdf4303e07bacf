"""The job worker: a thread in the server process that runs each queued job as a `tunesmith train` subprocess.

Training never runs in the web process. Each tick the worker validates new jobs' files, supervises running
processes (metrics.jsonl rows -> ``metrics`` events, checkpoint dirs -> checkpoints, cancel/pause -> stop the
process group) and starts queued jobs, oldest first. On start it re-queues jobs a previous server left
``running``, to resume from their last checkpoint. A trainer never outlives its server (Linux: the kernel kills
it when the server dies; elsewhere the next server kills it on start).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
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

from tunesmith.atomic import atomic_open
from tunesmith.config import save_config
from tunesmith.errors import TunesmithError
from tunesmith.serve.mapping import (
    build_train_config,
    checkpoint_model_name,
    failure_message,
    fine_tuned_model_name,
    resolve_auto_hyperparameters,
    results_csv,
)
from tunesmith.serve.settings import ServeSettings
from tunesmith.store import repo
from tunesmith.store.db import Database

log = logging.getLogger("tunesmith.worker")
STOP_GRACE_S = 5.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


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
        self.stop_processes()

    def stop_processes(self) -> None:
        """Stop every training process (the worker thread does it as it ends: see :func:`die_with_parent`)."""
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
        self.stop_processes()  # from this thread: its end is what the trainers' parent-death signal watches

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
        """Check the job's files; ``queued`` with its "auto" hyperparameters resolved when they load, ``failed``
        with the first problems otherwise."""
        job = repo.get_job(self.db, job_id)
        kind = "preference" if job.method["type"] == "dpo" else "chat"
        counts = {}
        for param in ("training_file", "validation_file"):
            file_id = getattr(job, param)
            if file_id is None:
                continue
            try:
                counts[param] = check_dataset(repo.get_file(self.db, file_id).path, kind)
            except TunesmithError as exc:
                error = {"code": f"invalid_{param}", "message": exc.message, "param": param}
                repo.set_job_status_if(
                    self.db,
                    job_id,
                    ("validating_files",),
                    "failed",
                    f"{param} {file_id} is invalid: {exc.message}",
                    level="error",
                    error=error,
                    finished_at=repo.now(),
                )
                return
        overrides = {**self.settings.train_defaults, **(job.train_overrides or {})}
        method = resolve_auto_hyperparameters(job.method, overrides, counts["training_file"])
        queued = repo.set_job_status_if(
            self.db, job_id, ("validating_files",), "queued", "Files validated; job queued", method=method
        )
        if queued is not None and wandb_requested(job) and not wandb_available():
            repo.add_event(
                self.db,
                job_id,
                "W&B integration requested, but the wandb package is not installed on the server: metrics "
                "are not reported to W&B (install wandb where the server runs and restart it)",
                level="warn",
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
            work.mkdir(parents=True, exist_ok=True)
            save_config(cfg, work / "config.yaml")
            with open(work / "train.log", "ab") as logf:
                proc = subprocess.Popen(
                    cmd,
                    cwd=work,
                    stdout=logf,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # own process group: cancel kills trainer + children
                    env={**os.environ, **wandb_env(job)},
                    preexec_fn=die_with_parent(),
                )
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
            results = save_results_file(self.db, self.settings.data_dir / "files", job_id, output)
            done = repo.set_job_status_if(
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
                result_files=[results.id],
            )
            if done is None:  # cancelled meanwhile: the results file belongs to no job
                repo.delete_file(self.db, results.id)
                Path(results.path).unlink(missing_ok=True)
        else:
            reason = failure_message(read_log(Path(job.work_dir) / "train.log"))
            self._fail(job_id, "training_failed", f"training exited with code {returncode}: {reason}", None)

    def _fail(self, job_id: str, code: str, message: str, param: str | None) -> None:
        repo.set_job_status_if(
            self.db,
            job_id,
            ("queued", "running"),
            "failed",
            f"Job failed: {message}",
            level="error",
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
        "report_to": ["wandb"] if wandb_requested(job) and wandb_available() else [],
    }


def wandb_requested(job: Any) -> bool:
    """Whether the job asks for the W&B integration."""
    return any(i.get("type") == "wandb" for i in job.integrations or [])


def wandb_available() -> bool:
    """Whether the trainer can report to W&B (the ``wandb`` package is importable)."""
    return importlib.util.find_spec("wandb") is not None


def wandb_env(job: Any) -> dict[str, str]:
    """WANDB_* variables for the trainer from the job's W&B integration (the run is named after the job)."""
    spec = next((i["wandb"] for i in job.integrations or [] if i.get("type") == "wandb"), None)
    if spec is None:
        return {}
    env = {"WANDB_PROJECT": spec["project"], "WANDB_NAME": spec.get("name") or job.id}
    if spec.get("entity"):
        env["WANDB_ENTITY"] = spec["entity"]
    if spec.get("tags"):
        env["WANDB_TAGS"] = ",".join(spec["tags"])
    return env


def die_with_parent() -> Any:
    """A ``preexec_fn`` making Linux SIGKILL the trainer when the thread that started it (the worker's) ends,
    which includes the server being killed; None elsewhere.

    ``prctl`` is looked up here, before the fork; the child only calls it, then exits at once if the server
    already died (the signal is only sent for a parent that dies after the call).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl, parent = ctypes.CDLL(None, use_errno=True).prctl, os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


def check_dataset(path: str | Path, kind: str) -> int:
    """The number of examples; raise DatasetError when the file does not load as ``kind`` (chat or preference)."""
    from tunesmith.data.load import load_examples

    return len(load_examples(path, kind=kind))


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
