"""A throwaway PostgreSQL server for tests: Debian's ``initdb``/``pg_ctl`` in a temp dir on 127.0.0.1.

``postgres_cluster()`` yields a SQLAlchemy URL (``postgresql+psycopg://tunesmith@127.0.0.1:PORT/postgres``)
and skips the test, saying why, where PostgreSQL or its Python driver is missing or the server will not start.
``make setup`` installs Debian's ``postgresql`` (where apt-get works) and ``psycopg[binary]`` (dev extras).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import free_port

PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"  # Debian's layout: one folder per major version
PG_USER = "tunesmith"  # the cluster's superuser; trust auth, the server listens on 127.0.0.1 only
START_TIMEOUT_S = 30
# Test-only speed settings: nothing here must survive a crash.
FAST_SETTINGS = "-c fsync=off -c full_page_writes=off -c synchronous_commit=off"


def find_pg_bin() -> Path | None:
    """The newest folder holding ``initdb`` and ``pg_ctl`` (Debian's versioned dirs, then $PATH), or None."""
    versions = sorted(glob.glob(PG_BIN_GLOB), key=lambda p: _major(Path(p).parent.name), reverse=True)
    for folder in versions:
        if Path(folder, "initdb").exists() and Path(folder, "pg_ctl").exists():
            return Path(folder)
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).parent
    return None


def _major(name: str) -> int:
    return int(name) if name.isdigit() else 0


def cluster_owner() -> str | None:
    """The system user to run PostgreSQL as when we are root (``initdb`` refuses root), else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    pytest.skip("running as root and no 'postgres' or 'nobody' user exists to run PostgreSQL as")


def as_user(cmd: list[str], owner: str | None) -> list[str]:
    """``cmd`` run as ``owner`` (runuser, or setpriv where runuser is missing); unchanged when owner is None."""
    if owner is None:
        return cmd
    if shutil.which("runuser"):
        return ["runuser", "-u", owner, "--", *cmd]
    if shutil.which("setpriv"):
        entry = pwd.getpwnam(owner)
        return ["setpriv", f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups", *cmd]
    pytest.skip(f"running as root and neither runuser nor setpriv exists to run PostgreSQL as {owner!r}")


def run_step(cmd: list[str], cwd: Path, what: str) -> None:
    """Run one setup command; skip the test with its output if it fails."""
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        pytest.skip(f"PostgreSQL {what} failed ({' '.join(cmd)}): {(done.stdout + done.stderr)[-1500:]}")


@contextlib.contextmanager
def postgres_cluster() -> Iterator[str]:
    """A fresh PostgreSQL cluster for the block; yields its SQLAlchemy URL, then stops and deletes it."""
    pytest.importorskip("psycopg", reason="the psycopg driver is missing; `make setup` installs the dev extras")
    pg_bin = find_pg_bin()
    if pg_bin is None:
        pytest.skip(
            f"PostgreSQL is not installed (no initdb/pg_ctl under {PG_BIN_GLOB} or on PATH); "
            "`make setup` installs Debian's postgresql where apt-get is available"
        )
    owner = cluster_owner()
    # Not under pytest's tmp_path: its parents are private to root, and the cluster's owner must reach it.
    root = Path(tempfile.mkdtemp(prefix="tunesmith-pg-"))
    if owner is not None:
        shutil.chown(root, user=owner)
    data, port = root / "data", free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} {FAST_SETTINGS}"
    pg_ctl = [str(pg_bin / "pg_ctl"), "-D", str(data)]
    started = False
    try:
        initdb = [str(pg_bin / "initdb"), "-D", str(data), "-U", PG_USER, "-A", "trust", "-E", "UTF8", "--no-sync"]
        run_step(as_user(initdb, owner), root, "initdb")
        start = [*pg_ctl, "-l", str(root / "postgres.log"), "-w", "-t", str(START_TIMEOUT_S), "-o", options, "start"]
        done = subprocess.run(as_user(start, owner), cwd=root, capture_output=True, text=True, timeout=90)
        started = done.returncode == 0
        if not started:
            log_file = root / "postgres.log"
            log = log_file.read_text(errors="replace")[-1500:] if log_file.exists() else ""
            pytest.skip(f"PostgreSQL did not start on 127.0.0.1:{port}: {done.stdout}{done.stderr}{log}")
        yield f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/postgres"
    finally:
        if started:
            # immediate: no shutdown checkpoint, the cluster is deleted next
            subprocess.run(as_user([*pg_ctl, "-m", "immediate", "-w", "stop"], owner), cwd=root, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
