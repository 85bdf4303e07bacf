"""A byte-based progress bar for streaming a file (rich), or a no-op."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path


@contextlib.contextmanager
def file_progress(path: Path, label: str, enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n_bytes)``; shows a rich progress bar over the file's size when ``enabled``."""
    if not enabled or not Path(path).is_file():  # a missing file: reading it raises the error with its hint
        yield lambda _n: None
        return
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task(label, total=Path(path).stat().st_size)
        pending = 0

        def advance(n: int) -> None:
            nonlocal pending
            pending += n
            if pending >= 1 << 20:  # update the bar per MiB: a call per record would cost more than the work
                bar.advance(task, pending)
                pending = 0

        yield advance
