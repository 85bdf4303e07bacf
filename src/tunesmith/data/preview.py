"""``tunesmith data preview``: examples rendered through the model's chat template, with the loss mask."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tunesmith.data.formats import LoadOptions
from tunesmith.data.source import DataSource
from tunesmith.data.tokens import as_chat
from tunesmith.models.bundled import BUNDLED_NAME
from tunesmith.models.template import tokenize_example


class Preview(BaseModel):
    """One rendered example: ``segments`` are (text, trained) pairs in order."""

    line: int
    segments: list[tuple[str, bool]]
    n_tokens: int
    n_trained: int


def preview_examples(
    path: str | Path,
    model: str = BUNDLED_NAME,
    n: int = 3,
    fmt: str = "auto",
    options: LoadOptions | None = None,
    tokenizer: Any = None,
) -> list[Preview]:
    """The first ``n`` valid examples of ``path``, tokenized as training does (``tokenize_example``)."""
    from tunesmith.models.load import load_tokenizer, prepare_tokenizer

    tok = prepare_tokenizer(tokenizer) if tokenizer is not None else load_tokenizer(model)
    records = (r for r in DataSource.of(path, fmt, options).records() if r.example is not None)
    out = []
    for rec in islice(records, max(n, 0)):
        t = tokenize_example(tok, as_chat(rec.example))
        out.append(Preview(line=rec.line, segments=t.segments, n_tokens=t.n_tokens, n_trained=t.n_trained))
    return out
