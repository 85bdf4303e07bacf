"""What several commands share: the consoles and the option aliases (flag, help text) they declare alike."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

# Piped output (make demo | tee, CI logs) has no terminal width; rich would wrap tables at 80 columns.
console = Console(width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 150)
err_console = Console(stderr=True)

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a config key: --set lora.r=8 (repeatable; the value is parsed as YAML)."),
]

# ---------------------------------------------------------------- data files (tunesmith data ...)
FormatOpt = Annotated[
    str,
    typer.Option(
        "--format",
        "-f",
        help="Input format: auto (detected from the extension and keys), openai, alpaca, sharegpt, csv, logs.",
    ),
]
ColumnsOpt = Annotated[
    str | None,
    typer.Option(
        "--columns",
        help="CSV/TSV column mapping, e.g. "
        "user=question,assistant=answer,system=sys (default: guessed "
        "from header names). Other columns become metadata.",
    ),
]
LogsSplitOpt = Annotated[
    str,
    typer.Option(
        "--logs-split",
        help="Conversation logs (--format logs): "
        "`conversation` = one example per conversation; `turn` = one per "
        "assistant turn with its history (earlier turns get weight 0).",
    ),
]
ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Model whose tokenizer, chat template and "
        "context window are used (name or local dir; default: bundled "
        "SmolLM2). "
        "OpenAI models cannot be tokenized offline: tiktoken downloads its "
        "vocabulary, which tunesmith never does.",
    ),
]

# ---------------------------------------------------------------- the server's store and its API
DataDirOption = Annotated[
    Path, typer.Option("--data-dir", help="Server data directory (files, jobs, adapters, tunesmith.db).")
]
DbUrlOption = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL instead of SQLite in --data-dir (e.g. postgresql+psycopg://u:pw@host/db).",
    ),
]
BaseUrlOption = Annotated[
    str | None, typer.Option("--base-url", help="API base URL, e.g. http://127.0.0.1:8000/v1 (default: OpenAI's).")
]
ApiKeyOption = Annotated[str | None, typer.Option("--api-key", help="API key (default: $OPENAI_API_KEY).")]


def as_override(key: str, value: Any) -> str:
    """A ``--set`` string carrying a flag's ``value`` exactly (JSON is YAML, so a path or model named `no`,
    `1e3` or `a: b` stays a string)."""
    return f"{key}={json.dumps(str(value) if isinstance(value, Path) else value, ensure_ascii=False)}"
