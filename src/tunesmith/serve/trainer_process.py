"""The training subprocess's life: it dies with the server (Linux), stops by process group, and a trainer a
crashed server left behind is killed on the next start."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

STOP_GRACE_S = 5.0
PR_SET_PDEATHSIG = 1  # linux/prctl.h


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
