"""JSONL files: one tolerant reader, one durable append-only log, one resumable cache built on that log.

A JSONL file written by an appending process may end in a torn line (the writer is mid-append, or was killed
mid-write). Every reader here skips that last line; any other line that is not a JSON object is an error naming
the file and the line, unless the caller asks to skip it. The log and the cache fsync each append, so a job that
is killed resumes from exactly the rows that are on disk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Hashable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from tunesmith.core.errors import DatasetError

Row = dict[str, Any]


def split_torn_tail(data: bytes) -> tuple[bytes, bytes]:
    """``data`` cut after its last newline: (the complete lines, the torn tail that follows them)."""
    end = data.rfind(b"\n") + 1
    return data[:end], data[end:]


def parse_lines(
    path: str | os.PathLike, text: str, *, skip_bad: bool = False, what: str = "JSON object"
) -> Iterator[tuple[int, Row]]:
    """``(line number, object)`` for each non-blank line of ``text`` (complete lines of ``path``).

    Raises:
        DatasetError: a line is not a JSON object (unless ``skip_bad``); the message names file and line.
    """
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            problem = None if isinstance(row, dict) else f"got {type(row).__name__}"
        except json.JSONDecodeError as exc:
            problem = f"{exc.msg} at column {exc.colno}"
        if problem is None:
            yield lineno, row
        elif not skip_bad:
            raise DatasetError(
                f"{path} line {lineno}: not a {what} ({problem})",
                "fix or remove the line (a file only this tool writes can be deleted and rebuilt)",
            )


def iter_jsonl(path: str | os.PathLike, *, skip_bad: bool = False) -> Iterator[tuple[int, Row]]:
    """``(line number, object)`` per line of a JSONL file; a torn last line (no newline yet) is skipped.

    Args:
        path: the file.
        skip_bad: skip complete lines that are not JSON objects instead of raising.

    Raises:
        DatasetError: the file cannot be read, is not UTF-8, or (unless ``skip_bad``) has a bad line.
    """
    try:
        complete, _ = split_torn_tail(Path(path).read_bytes())
        text = complete.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot be read as UTF-8 JSONL ({exc})", "check the path and the file") from exc
    yield from parse_lines(path, text, skip_bad=skip_bad)


def read_jsonl(path: str | os.PathLike, *, skip_bad: bool = False) -> list[Row]:
    """Every object of a JSONL file, in order (see :func:`iter_jsonl`); ``[]`` when the file does not exist."""
    if not Path(path).exists():
        return []
    return [row for _, row in iter_jsonl(path, skip_bad=skip_bad)]


class DurableLog:
    """An append-only JSONL file whose every append is fsync'd before it returns.

    Opening the log reads the rows on disk and cuts off a torn last line, so the next append starts on a line of
    its own. ``check`` (optional) validates each loaded row; a row it rejects (``KeyError``/``TypeError``/
    ``ValueError``) is an error naming the line.

    Args:
        path: the file (created on first append, its folder too).
        what: what one row is, for error messages ("cache entry").
        check: called on every loaded row.

    Raises:
        DatasetError: a complete line is not a JSON object, or ``check`` rejects it.
    """

    def __init__(self, path: str | os.PathLike, what: str = "JSON object", check: Callable[[Row], Any] | None = None):
        self.path = Path(path)
        self.rows: list[Row] = []
        self.torn_lines = 0  # 1 when a torn last line was cut off on open
        self._file: IO[str] | None = None
        if self.path.exists():
            self._load(what, check)

    def _load(self, what: str, check: Callable[[Row], Any] | None) -> None:
        complete, torn = split_torn_tail(self.path.read_bytes())
        for lineno, row in parse_lines(self.path, complete.decode("utf-8", "replace"), what=what):
            if check is not None:
                try:
                    check(row)
                except (KeyError, TypeError, ValueError) as exc:
                    raise DatasetError(
                        f"{self.path} line {lineno}: not a {what} ({exc!r})",
                        "delete the file (its rows will be computed again)",
                    ) from exc
            self.rows.append(row)
        if torn:
            self.torn_lines = 1
            os.truncate(self.path, len(complete))

    def append(self, row: Row) -> None:
        """Write one row and fsync it."""
        self.extend([row])

    def extend(self, rows: Iterable[Row]) -> None:
        """Write several rows, then fsync once: all of them are on disk when this returns."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across appends
        rows = list(rows)
        self._file.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
        self._file.flush()
        os.fsync(self._file.fileno())
        self.rows.extend(rows)

    def close(self) -> None:
        """Close the file handle (rows are already on disk)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> DurableLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class JsonlCache:
    """A resumable cache: the rows of a :class:`DurableLog` by the value of one field (a later row wins).

    Used for teacher responses (keyed by a request hash) and generated answers (keyed by the example index):
    an interrupted job loses at most the rows in flight, and a rerun answers the rest from disk.

    Args:
        path: the cache file.
        key: the field every row is keyed by.
        what: what a row is, for error messages.
        check: validates each loaded row (see :class:`DurableLog`).

    Raises:
        DatasetError: a complete line is not a JSON object with ``key``, or ``check`` rejects it.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        key: str,
        what: str = "cache entry",
        check: Callable[[Row], Any] | None = None,
    ) -> None:
        self.key = key
        self.log = DurableLog(path, what, lambda row: (row[key], check(row) if check else None))
        self.rows: dict[Hashable, Row] = {row[key]: row for row in self.log.rows}

    @property
    def path(self) -> Path:
        """The cache file."""
        return self.log.path

    @property
    def torn_lines(self) -> int:
        """1 when a torn last line was cut off on open, else 0."""
        return self.log.torn_lines

    def __len__(self) -> int:
        return len(self.rows)

    def __contains__(self, key: Hashable) -> bool:
        return key in self.rows

    def append(self, rows: Iterable[Row]) -> None:
        """Add rows (each with the key field) and make them durable before returning."""
        rows = list(rows)
        self.log.extend(rows)
        self.rows.update((row[self.key], row) for row in rows)

    def close(self) -> None:
        """Close the file handle (rows are already on disk)."""
        self.log.close()
