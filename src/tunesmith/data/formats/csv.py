"""CSV/TSV with a column mapping (``user=question,assistant=answer,system=sys``).

Without a mapping, common header names are recognised (user/prompt/question/instruction/input,
assistant/completion/answer/response/output, system). Unmapped columns are kept as string ``metadata``
(so ``data split --stratify label`` can use a ``label`` column). Line numbers are the physical line where each
row starts (quoted fields may span lines).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from tunesmith.core.errors import DatasetError
from tunesmith.core.records import Record, validate_into
from tunesmith.core.schema import ChatExample

GUESSES = {
    "user": ("user", "prompt", "question", "instruction", "input", "query"),
    "assistant": ("assistant", "completion", "answer", "response", "output", "reply"),
    "system": ("system", "system_prompt", "sys"),
}


def guess_columns(header: list[str]) -> dict[str, str]:
    """A role -> column mapping from common header names (raises when user/assistant are not found)."""
    lower = {h.strip().lower(): h for h in header}
    mapping = {role: lower[name] for role, names in GUESSES.items() for name in names[::-1] if name in lower}
    if "user" not in mapping or "assistant" not in mapping:
        raise DatasetError(
            f"cannot tell which columns hold the user and assistant text (header: {header})",
            "pass --columns user=COLUMN,assistant=COLUMN[,system=COLUMN]",
            param="columns",
        )
    return mapping


def iter_records(path: str | Path, columns: dict[str, str] | None = None) -> Iterator[Record]:
    """Stream a CSV/TSV file as Records (``.tsv`` or a tab in the header means tab-separated)."""
    path = Path(path)
    with open(path, "rb") as fb:
        text_stream = io.TextIOWrapper(fb, encoding="utf-8", newline="")
        try:
            header_line = text_stream.readline()
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{path} line 1: invalid UTF-8 in the header", "re-encode the file as UTF-8") from exc
        delim = "\t" if path.suffix.lower() == ".tsv" or "\t" in header_line else ","
        header = next(csv.reader([header_line], delimiter=delim), [])
        mapping = columns or guess_columns(header)
        missing = [c for c in mapping.values() if c not in header]
        if missing:
            raise DatasetError(
                f"{path} line 1: column(s) {missing} not in the header {header}",
                "fix --columns to name existing columns",
                param="columns",
            )
        yield from _rows(path, text_stream, header, mapping, delim)


def _rows(path: Path, stream, header: list[str], mapping: dict[str, str], delim: str) -> Iterator[Record]:
    reader = csv.reader(stream, delimiter=delim)
    start = 2
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            yield Record(str(path), start, "").add_problem(
                "invalid_utf8", f"invalid UTF-8 ({exc.reason})", hint="re-encode the file as UTF-8"
            )
            return
        except csv.Error as exc:
            yield Record(str(path), start, "").add_problem(
                "invalid_csv", f"malformed CSV ({exc})", hint="check quoting on this row"
            )
            return
        line, start = start, reader.line_num + 2
        if not any(cell.strip() for cell in row):
            continue
        yield _row_record(str(path), line, row, header, mapping, delim)


def _row_record(path: str, line: int, row: list[str], header: list[str], mapping: dict[str, str], delim: str) -> Record:
    rec = Record(path, line, delim.join(row))
    if len(row) != len(header):
        return rec.add_problem(
            "wrong_column_count",
            f"{len(row)} columns, the header has {len(header)}",
            hint="check the delimiter and quoting of this row",
        )
    values = dict(zip(header, row, strict=True))
    msgs = []
    for role in ("system", "user", "assistant"):
        col = mapping.get(role)
        if col is not None and (role != "system" or values[col]):
            msgs.append({"role": role, "content": values[col]})
    meta = {k: v for k, v in values.items() if k not in mapping.values()}
    obj = {"messages": msgs, **({"metadata": meta} if meta else {})}
    return validate_into(rec, obj, ChatExample)
