"""The one writer of rejected records: every record a data step drops goes to a JSONL file with its reason.

Each line is ``{"file", "line", "reason", "raw"}``: where the record was, why it was dropped, and its source
text verbatim, so nothing disappears silently and a fixed line can be pasted back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from tunesmith.core.atomic import atomic_open
from tunesmith.core.records import Problem, Record


class RejectWriter:
    """Append rejected records to an open text file; ``count`` says how many were written."""

    def __init__(self, file: IO[str]) -> None:
        self._file = file
        self.count = 0

    def write(self, rec: Record, reason: str) -> None:
        """Write one rejected record with its reason."""
        row = {"file": rec.path, "line": rec.line, "reason": reason, "raw": rec.raw}
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self.count += 1


@contextmanager
def open_rejects(path: str | Path) -> Iterator[RejectWriter]:
    """A :class:`RejectWriter` on ``path``, written atomically (the file appears whole on a clean exit)."""
    with atomic_open(path) as f:
        yield RejectWriter(f)


def problems_reason(problems: list[Problem]) -> str:
    """``code: message (field); ...`` for a record's problems (the reason of an invalid record)."""
    return "; ".join(f"{p.code}: {p.message}" + (f" ({p.field})" if p.field else "") for p in problems)
