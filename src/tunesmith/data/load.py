"""Entry point for reading a dataset file of any supported format into the internal schema.

``load_examples`` is what other stages call (training, the server's upload check, evaluation): it reads the
whole file, and raises one ``DatasetError`` listing every bad record with file, line and field.
``iter_records`` streams any format as :class:`~tunesmith.core.records.Record` objects (line-numbered, bad
records included), which is what ``tunesmith data validate`` / ``stats`` / ``split`` build on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from tunesmith.core.errors import DatasetError
from tunesmith.core.records import Record
from tunesmith.core.schema import ChatExample, PreferenceExample
from tunesmith.data.formats import LoadOptions, iter_format_records


def iter_records(
    path: str | Path, kind: str = "chat", fmt: str = "auto", options: LoadOptions | None = None
) -> Iterator[Record]:
    """Stream any supported format as Records (bad ones included), detecting the format unless given.

    Args:
        path: the dataset file.
        kind: ``chat`` or ``preference`` (OpenAI format only; other formats are chat).
        fmt: ``auto``, ``openai``, ``alpaca``, ``sharegpt``, ``csv`` or ``logs``.
        options: a :class:`tunesmith.data.formats.LoadOptions` (CSV columns, log splitting).
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file", "check the path")
    yield from iter_format_records(path, kind=kind, fmt=fmt, options=options)


def load_examples(
    path: str | Path, kind: str = "chat", fmt: str = "auto", options: LoadOptions | None = None
) -> list[ChatExample | PreferenceExample]:
    """Read every example of ``path``; raise one DatasetError naming every bad record.

    Args:
        path: a dataset file.
        kind: ``chat`` (SFT) or ``preference`` (DPO).
        fmt: the file format (``auto`` detects it; see :func:`iter_records`).
        options: format options (:class:`tunesmith.data.formats.LoadOptions`).

    Raises:
        DatasetError: the file is missing, or some records are invalid (all are listed, with line and field).
    """
    return [example for _, example in load_numbered_examples(path, kind, fmt, options)]


def load_numbered_examples(
    path: str | Path, kind: str = "chat", fmt: str = "auto", options: LoadOptions | None = None
) -> list[tuple[int, ChatExample | PreferenceExample]]:
    """Like :func:`load_examples`, each example with the line its record starts on (for provenance).

    Raises:
        DatasetError: the file is missing, or some records are invalid (all are listed, with line and field).
    """
    path = Path(path)
    examples, bad = [], []
    for rec in iter_records(path, kind, fmt, options):
        if rec.example is not None:
            examples.append((rec.line, rec.example))
        else:
            bad.append(rec)
    if bad:
        lines = "\n".join(f"  {r.where()}: {r.error}" for r in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        raise DatasetError(
            f"{path}: {len(bad)} invalid record(s):\n{lines}{more}",
            f"run `tunesmith data validate {path}` for every problem and fix",
        )
    if not examples:
        raise DatasetError(f"{path}: no examples", "the file is empty; add examples, one JSON object per line")
    return examples
