"""Database engine and sessions: SQLite in the data dir by default, any SQLAlchemy URL (PostgreSQL)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, select
from sqlalchemy.exc import DataError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from tunesmith.core.errors import ServeError
from tunesmith.store.tables import SCHEMA_VERSION, Base, SchemaVersion


def default_database_url(data_dir: str | Path) -> str:
    """``sqlite:///<data_dir>/tunesmith.db``."""
    return f"sqlite:///{Path(data_dir).resolve() / 'tunesmith.db'}"


def make_engine(url: str) -> Engine:
    """Create an engine and the schema (``create_all`` plus a ``schema_version`` row).

    Raises:
        ServeError: the database cannot be reached or was created by a newer tunesmith.
    """
    is_sqlite = url.startswith("sqlite")
    sqlite_args = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    kwargs = sqlite_args if is_sqlite else {"pool_pre_ping": True}
    try:
        engine = create_engine(url, json_serializer=dumps_json, **kwargs)
        if is_sqlite:
            event.listen(engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(engine)
        _check_version(engine)
    except SQLAlchemyError as exc:
        raise ServeError(
            f"cannot open the database {url}: {exc.__class__.__name__}: {exc}",
            "check --database-url (e.g. postgresql+psycopg://user:pw@host/db) or --data-dir",
            param="database_url",
        ) from exc
    return engine


def dumps_json(value: Any) -> str:
    """JSON for a JSON column, non-finite floats (a diverged run's NaN loss) stored as null.

    PostgreSQL's json type rejects ``NaN``/``Infinity``, and a NaN read back from SQLite cannot be sent in a
    JSON response, so both backends store null.
    """
    return json.dumps(_finite(value))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets the web process read while the worker thread (or `tunesmith deploy`) writes.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _check_version(engine: Engine) -> None:
    with Session(engine) as s, s.begin():
        row = s.scalars(select(SchemaVersion)).first()
        if row is None:
            s.add(SchemaVersion(version=SCHEMA_VERSION))
        elif row.version > SCHEMA_VERSION:
            raise ServeError(
                f"the database has schema version {row.version}, newer than this tunesmith ({SCHEMA_VERSION})",
                "upgrade tunesmith or point --database-url elsewhere",
            )


class Database:
    """A session factory over one engine; objects stay readable after commit (no lazy reloads)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on clean exit, rolled back on error."""
        try:
            with self._factory() as s, s.begin():
                yield s
        except DataError as exc:
            # The database refused a value (PostgreSQL: a string longer than its column, a NUL character;
            # SQLite accepts both): the request's data is at fault, so a 400 rather than a 500.
            reason = str(exc.orig).splitlines()[0] if exc.orig is not None else exc.__class__.__name__
            raise ServeError(
                f"the database refused a value: {reason}",
                "shorten the value or remove NUL characters from it",
            ) from exc

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()
