"""The job worker: a thread in the server process that runs each queued job as a `tunesmith train` subprocess.

Training never runs in the web process. Each tick the worker validates new jobs' files, supervises running
processes (metrics.jsonl rows -> ``metrics`` events, checkpoint dirs -> checkpoints, cancel/pause -> stop the
process group) and starts queued jobs, oldest first. On start it re-queues jobs a previous server left
``running``, to resume from their last checkpoint. A trainer never outlives its server (Linux: the kernel kills
it when the server dies; elsewhere the next server kills it on start).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tunesmith.core.config import save_config
from tunesmith.core.errors import TunesmithError
from tunesmith.data.load import load_examples
from tunesmith.serve.job_progress import ingest_progress, read_json, read_log, save_results_file
from tunesmith.serve.mapping import (
    build_train_config,
    failure_message,
    fine_tuned_model_name,
    resolve_auto_hyperparameters,
)
from tunesmith.serve.settings import ServeSettings
from tunesmith.serve.trainer_process import die_with_parent, kill_orphan, stop_process
from tunesmith.store import repo
from tunesmith.store.db import Database

log = logging.getLogger("tunesmith.worker")


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
        cmd = [sys.executable, "-m", "tunesmith", "train", str(work / "config.yaml")] + (["--resume"] if resume else [])
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


def check_dataset(path: str | Path, kind: str) -> int:
    """The number of examples; raise DatasetError when the file does not load as ``kind`` (chat or preference)."""
    return len(load_examples(path, kind=kind))
