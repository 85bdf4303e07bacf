"""RAG documents: load a folder of .txt/.md files or a JSONL file of documents, and chunk them into
overlapping word windows (the units the retrieval index searches)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tunesmith.core.errors import ConfigError, DatasetError
from tunesmith.core.records import iter_raw_lines, parse_json_object

DOC_SUFFIXES = (".txt", ".md")
DOCS_HINT = 'give a folder of .txt/.md files or a JSONL file of {"id": ..., "text": ..., "title": ...} lines'


class Document(BaseModel):
    """One source document: an id (used to name it in the prompt and to score retrieval), text, optional title."""

    model_config = ConfigDict(extra="ignore", strict=True)

    id: str = Field(min_length=1, description="Unique document id.")
    text: str = Field(description="The document's text.")
    title: str | None = Field(None, description="A title, prefixed to each of the document's chunks.")


@dataclass(frozen=True)
class Chunk:
    """A window of a document's words (``chunk`` numbers the windows from 0), title included."""

    doc_id: str
    chunk: int
    text: str


def load_documents(path: Path) -> list[Document]:
    """Read a folder of .txt/.md files or a JSONL file of documents.

    Args:
        path: the folder or the JSONL file.

    Returns:
        The documents, folder files in sorted path order, JSONL lines in file order.

    Raises:
        DatasetError: the path does not exist, the folder has no .txt/.md file, a file is not UTF-8, or JSONL
            lines are invalid (every bad line is named) or repeat an id.
    """
    path = Path(path)
    if path.is_dir():
        docs = _load_folder(path)
    elif path.is_file():
        docs = _load_jsonl(path)
    else:
        raise DatasetError(f"RAG documents {path}: no such file or folder", DOCS_HINT)
    if not docs:
        raise DatasetError(f"RAG documents {path}: no documents found", DOCS_HINT)
    return docs


def _load_folder(folder: Path) -> list[Document]:
    files = sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in DOC_SUFFIXES and p.is_file() and not any(part.startswith(".") for part in p.parts)
    )
    docs, seen = [], {}
    for file in files:
        doc_id = file.relative_to(folder).with_suffix("").as_posix()
        if doc_id in seen:
            raise DatasetError(
                f"{file}: document id {doc_id!r} is also the id of {seen[doc_id]}", "rename one of the two files"
            )
        seen[doc_id] = file
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise DatasetError(f"{file}: not valid UTF-8 ({exc.reason})", "re-encode the file as UTF-8") from exc
        docs.append(Document(id=doc_id, text=text))
    return docs


def _load_jsonl(path: Path) -> list[Document]:
    docs: list[Document] = []
    problems: list[str] = []
    first_line: dict[str, int] = {}
    for lineno, raw, _ in iter_raw_lines(path):
        problem, doc = _parse_document_line(path, lineno, raw)
        if doc is not None and doc.id in first_line:
            problem = f"duplicate id {doc.id!r} (first on line {first_line[doc.id]})"
        if problem:
            problems.append(f"{path} line {lineno}: {problem}")
            continue
        first_line[doc.id] = lineno
        docs.append(doc)
    if problems:
        more = f"\n  ... and {len(problems) - 10} more" if len(problems) > 10 else ""
        raise DatasetError("\n".join(problems[:10]) + more, DOCS_HINT)
    return docs


def _parse_document_line(path: Path, lineno: int, raw: str | None) -> tuple[str | None, Document | None]:
    """(problem, None) for a bad JSONL line, (None, Document) for a good one."""
    if raw is None:
        return "not valid UTF-8", None
    rec, obj = parse_json_object(str(path), lineno, raw)
    if obj is None:
        return rec.error, None
    try:
        return None, Document.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        return f"field {field!r}: {err['msg']}", None


def chunk_documents(docs: list[Document], chunk_size: int, overlap: int) -> list[Chunk]:
    """Split each document into windows of ``chunk_size`` words, neighbours sharing ``overlap`` words.

    A document's title (if any) is prefixed to each of its chunks; an empty document yields no chunk.
    """
    if not 0 <= overlap < chunk_size:
        raise ConfigError(
            f"chunk overlap {overlap} must be at least 0 and less than chunk size {chunk_size}",
            "set rag.chunk_overlap below rag.chunk_size",
            param="rag.chunk_overlap",
        )
    chunks = []
    for doc in docs:
        words = doc.text.split()
        starts = range(0, max(len(words) - overlap, 1), chunk_size - overlap) if words else []
        for i, start in enumerate(starts):
            body = " ".join(words[start : start + chunk_size])
            chunks.append(Chunk(doc.id, i, f"{doc.title}\n{body}" if doc.title else body))
    return chunks
