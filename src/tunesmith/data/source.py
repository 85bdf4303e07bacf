"""Where a dataset comes from and how to read it: a path, its format, its kind and the format's options.

Every data step (validate, stats, dedup, split, convert, prepare) reads through :meth:`DataSource.records`, so
the rule "OpenAI-format files decide chat or preference per line, other formats are chat" lives here only.
:func:`detect_kind` is the one file-level preference (DPO) detector.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tunesmith.core.records import Record
from tunesmith.data.formats import FormatName, LoadOptions, _first_json_value, detect_format
from tunesmith.data.formats.openai import is_preference
from tunesmith.data.load import iter_records

Kind = Literal["auto", "chat", "preference"]


class DataSource(BaseModel):
    """A dataset file and how to read it (the ``source`` section of a data config)."""

    model_config = ConfigDict(extra="forbid")
    path: Path = Field(description="The dataset file (OpenAI JSONL, JSON array, Alpaca, ShareGPT, CSV/TSV, logs).")
    format: FormatName = Field(
        default="auto",
        description="File format: auto (detected from the extension and keys), openai, alpaca, sharegpt, csv, logs.",
    )
    kind: Kind = Field(
        default="auto",
        description="chat (SFT) or preference (DPO) records; auto: preference when an OpenAI-format file's first "
        "record has preferred_output (its lines are then read per line), else chat.",
    )
    options: LoadOptions = Field(
        default_factory=LoadOptions, description="Format options: CSV column mapping, log splitting."
    )

    @classmethod
    def of(cls, path: str | Path, fmt: str = "auto", options: LoadOptions | None = None) -> DataSource:
        """A source for ``path`` read as ``fmt`` (the CLI's ``FILE --format`` pair)."""
        return cls(path=Path(path), format=fmt, options=options or LoadOptions())  # type: ignore[arg-type]

    def record_kind(self) -> str:
        """The kind the format loaders get, for every command alike: ``auto`` (per line) for preference data
        (by the configured kind, else by the file's first record), else ``chat``."""
        return "auto" if self.detect_kind() == "preference" else "chat"

    def records(self, kind: str | None = None) -> Iterator[Record]:
        """Stream the records (bad ones included, each with its problems); ``kind`` overrides the loader kind.

        Raises:
            DatasetError: the file is missing or cannot be read at all.
        """
        return iter_records(self.path, kind=kind or self.record_kind(), fmt=self.format, options=self.options)

    def detect_kind(self) -> str:
        """``chat`` or ``preference``: the configured kind, else what the first record looks like."""
        return self.kind if self.kind != "auto" else detect_kind(self.path, self.format)


def detect_kind(path: str | Path, fmt: str = "auto") -> str:
    """``preference`` when ``path`` is OpenAI-format data whose first record is a DPO record, else ``chat``."""
    if not Path(path).is_file():
        return "chat"  # reading the records raises the missing-file error with its hint
    if (fmt if fmt != "auto" else detect_format(path)) != "openai":
        return "chat"
    obj = _first_json_value(Path(path))
    return "preference" if isinstance(obj, dict) and is_preference(obj) else "chat"
