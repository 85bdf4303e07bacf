"""Retrieval for the RAG candidate: index a team's chunked documents (:mod:`tunesmith.evaluate.documents`), search
them, put the top passages in a prompt.

``build_index(settings, cache_dir)`` is the entry point: it loads and chunks ``settings.docs``, builds a BM25
(``bm25s``), embedding (MiniLM, :mod:`tunesmith.evaluate.embeddings`) or hybrid index, and caches it on disk
under a key of the documents' content and the chunking/method settings, so a second evaluation loads it.
Search is deterministic: equal scores are ordered by chunk order (document order, then chunk number).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tunesmith.core.atomic import atomic_dir, write_json_atomic, write_jsonl_atomic
from tunesmith.core.errors import DatasetError
from tunesmith.evaluate.documents import DOCS_HINT, Chunk, Document, chunk_documents, load_documents

DEFAULT_TEMPLATE = "Answer the question using the context below.\n\nContext:\n{context}\n\nQuestion: {question}"
# Bump when the tokenizer, the chunk format or the stored files change: old cache entries are then ignored.
INDEX_VERSION = "1"
RRF_K = 60  # reciprocal-rank fusion constant (Cormack et al., 2009): score = sum of 1 / (RRF_K + rank)


class RagSettings(BaseModel):
    """How the RAG candidate finds passages and puts them in the prompt."""

    model_config = ConfigDict(extra="forbid")

    docs: Path = Field(
        description="A folder of .txt/.md files (doc id = path relative to the folder, without suffix) or a JSONL "
        'file of {"id": str, "text": str, "title": str (optional)} lines.'
    )
    chunk_size: int = Field(200, ge=20, description="Words per chunk.")
    chunk_overlap: int = Field(40, ge=0, description="Words shared by neighbouring chunks (less than chunk_size).")
    k: int = Field(3, ge=1, le=20, description="Passages placed in the prompt.")
    method: Literal["bm25", "embeddings", "hybrid"] = Field(
        "bm25",
        description="bm25 (lexical, bm25s), embeddings (MiniLM cosine) or hybrid (reciprocal-rank fusion of both).",
    )
    template: str = Field(
        DEFAULT_TEMPLATE,
        description="The last user message becomes template.format(context=..., question=<that message>); "
        "it must contain {context} and {question}; write literal braces as {{ and }}.",
    )

    @field_validator("template")
    @classmethod
    def _check_template(cls, value: str) -> str:
        missing = [f"{{{key}}}" for key in ("context", "question") if f"{{{key}}}" not in value]
        if missing:
            raise ValueError(f"the template must contain {' and '.join(missing)}")
        try:
            value.format(context="", question="")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"the template has a placeholder other than {{context}}/{{question}} ({exc!r}); "
                "write literal braces as {{ and }}"
            ) from exc
        return value

    @model_validator(mode="after")
    def _check_overlap(self) -> RagSettings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(f"chunk_overlap ({self.chunk_overlap}) must be less than chunk_size ({self.chunk_size})")
        return self


@dataclass
class Passage:
    """A retrieved chunk with its score (BM25, cosine or fused reciprocal rank; higher is better)."""

    doc_id: str
    chunk: int
    text: str
    score: float


def tokenize(texts: list[str]) -> list[list[str]]:
    """BM25 tokens: lower-cased words of 2+ characters, English stopwords removed, Snowball-stemmed.

    Stemming ("codes", "coded" -> "code") lifted BM25 hit@3 from 0.88 to 0.96 and from 0.65 to 0.70 on the two
    300-document benchmarks in docs/evaluation.md ("Retrieval (RAG)").
    """
    import bm25s
    import snowballstemmer

    stemmer = snowballstemmer.stemmer("english")  # a new one per call: a stemmer object is not thread-safe
    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, return_ids=False, show_progress=False)


class RetrievalIndex:
    """Chunks plus a BM25 index and/or chunk embeddings; ``search`` ranks chunks for a query."""

    def __init__(self, chunks: list[Chunk], method: str, bm25: Any = None, vectors: np.ndarray | None = None):
        self.chunks = chunks
        self.method = method
        self.bm25 = bm25  # a bm25s.BM25 over the chunks (bm25 and hybrid)
        self.vectors = vectors  # (n_chunks, 384) L2-normalized MiniLM embeddings (embeddings and hybrid)
        self.from_cache = False

    def search(self, query: str, k: int) -> list[Passage]:
        """The ``k`` best passages for ``query``, best first (fewer when BM25 finds fewer matching chunks)."""
        return self.search_many([query], k)[0]

    def search_many(self, queries: list[str], k: int) -> list[list[Passage]]:
        """The ``k`` best passages for each query (queries are embedded in one batch).

        A batch embeds each query to within ~1e-6 of embedding it alone, so ``search`` and ``search_many`` agree
        except on near-exact cosine ties.
        """
        if not queries:
            return []
        rankings = [self._bm25_rankings(queries), self._embedding_rankings(queries)]
        results = []
        for i in range(len(queries)):
            ranked = [r[i] for r in rankings if r is not None]
            order, scores = ranked[0] if len(ranked) == 1 else fuse_rankings(ranked, len(self.chunks))
            results.append([self._passage(j, scores[j]) for j in order[:k]])
        return results

    def _passage(self, j: int, score: float) -> Passage:
        c = self.chunks[j]
        return Passage(c.doc_id, c.chunk, c.text, float(score))

    def _bm25_rankings(self, queries: list[str]) -> list[tuple[np.ndarray, np.ndarray]] | None:
        if self.bm25 is None:
            return None
        out = []
        for tokens in tokenize(queries):
            ids = self.bm25.get_tokens_ids(tokens)
            scores = self.bm25.get_scores_from_ids(ids) if ids else np.zeros(len(self.chunks), dtype=np.float32)
            order = rank(scores)
            out.append((order[scores[order] > 0], scores))  # a chunk sharing no query word is not a match
        return out

    def _embedding_rankings(self, queries: list[str]) -> list[tuple[np.ndarray, np.ndarray]] | None:
        if self.vectors is None:
            return None
        from tunesmith.evaluate.embeddings import embed

        sims = embed(queries) @ self.vectors.T  # (n_queries, n_chunks) cosine similarities
        return [(rank(row), row) for row in sims]


def rank(scores: np.ndarray) -> np.ndarray:
    """Chunk indices by descending score; equal scores keep chunk order (a stable sort)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def fuse_rankings(rankings: list[tuple[np.ndarray, np.ndarray]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal-rank fusion: each chunk scores sum(1 / (RRF_K + rank)) over the rankings it appears in."""
    fused = np.zeros(n, dtype=np.float64)
    for order, _ in rankings:
        fused[order] += 1.0 / (RRF_K + np.arange(1, len(order) + 1))
    return rank(fused), fused


def build_index(settings: RagSettings, cache_dir: Path) -> RetrievalIndex:
    """Load, chunk and index ``settings.docs``, or load the index cached by an earlier call.

    Args:
        settings: the documents, chunking and retrieval method.
        cache_dir: where indexes are cached, one folder per key (documents' content, chunk_size, chunk_overlap,
            method), written atomically.

    Returns:
        The index; ``from_cache`` says whether it was loaded from ``cache_dir``.

    Raises:
        DatasetError: the documents cannot be read (see :func:`load_documents`) or yield no text.
        ModelError: method embeddings/hybrid and the MiniLM embedder is not installed.
    """
    docs = load_documents(settings.docs)
    folder = Path(cache_dir) / index_key(docs, settings)
    if (folder / "manifest.json").is_file():
        return load_index(folder)
    chunks = chunk_documents(docs, settings.chunk_size, settings.chunk_overlap)
    if not chunks:
        raise DatasetError(f"RAG documents {settings.docs}: every document is empty", DOCS_HINT)
    index = _index_chunks(chunks, settings.method)
    save_index(index, folder, settings)
    return index


def index_key(docs: list[Document], settings: RagSettings) -> str:
    """A hash of the documents' content, the chunking settings, the method and the index format version."""
    h = hashlib.sha256()
    params = [INDEX_VERSION, settings.chunk_size, settings.chunk_overlap, settings.method]
    h.update(json.dumps(params).encode())
    for doc in docs:
        h.update(json.dumps([doc.id, doc.title, doc.text], ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()[:24]


def _index_chunks(chunks: list[Chunk], method: str) -> RetrievalIndex:
    bm25 = vectors = None
    if method in ("bm25", "hybrid"):
        import bm25s

        bm25 = bm25s.BM25()
        bm25.index(tokenize([c.text for c in chunks]), show_progress=False)
    if method in ("embeddings", "hybrid"):
        from tunesmith.evaluate.embeddings import embed

        vectors = embed([c.text for c in chunks]).astype(np.float32)
    return RetrievalIndex(chunks, method, bm25, vectors)


def save_index(index: RetrievalIndex, folder: Path, settings: RagSettings) -> None:
    """Write the chunks, the BM25 index and/or the embeddings to ``folder`` in one atomic rename."""
    with atomic_dir(folder) as tmp:
        write_jsonl_atomic(tmp / "chunks.jsonl", (asdict(c) for c in index.chunks))
        if index.bm25 is not None:
            index.bm25.save(tmp / "bm25")
        if index.vectors is not None:
            np.save(tmp / "embeddings.npy", index.vectors)
        manifest = {
            "version": INDEX_VERSION,
            "method": index.method,
            "chunks": len(index.chunks),
            "docs": str(settings.docs),
            "chunk_size": settings.chunk_size,
            "chunk_overlap": settings.chunk_overlap,
        }
        write_json_atomic(tmp / "manifest.json", manifest)


def load_index(folder: Path) -> RetrievalIndex:
    """Read an index written by :func:`save_index`."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    with open(folder / "chunks.jsonl", encoding="utf-8") as f:
        chunks = [Chunk(**json.loads(line)) for line in f]
    bm25 = vectors = None
    if (folder / "bm25").is_dir():
        import bm25s

        bm25 = bm25s.BM25.load(folder / "bm25")
    if (folder / "embeddings.npy").is_file():
        vectors = np.load(folder / "embeddings.npy")
    index = RetrievalIndex(chunks, manifest["method"], bm25, vectors)
    index.from_cache = True
    return index


def render_context(passages: list[Passage]) -> str:
    """The passages as ``[doc_id] text`` blocks separated by blank lines."""
    return "\n\n".join(f"[{p.doc_id}] {p.text}" for p in passages)


def with_context(messages: list[dict], passages: list[Passage], template: str) -> list[dict]:
    """A copy of ``messages`` whose last user message is ``template`` filled with the passages and the question.

    Raises:
        DatasetError: there is no user message to answer.
    """
    users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
    if not users:
        raise DatasetError(
            "RAG: the example has no user message to put the retrieved context in",
            "every evaluation example needs a user turn",
        )
    out = [dict(m) for m in messages]
    last = out[users[-1]]
    last["content"] = template.format(context=render_context(passages), question=last.get("content") or "")
    return out


def hit_rate(retrieved: list[list[Passage]], gold: list[str | None]) -> float | None:
    """Share of queries whose gold doc id is among their retrieved passages; None when no query has a gold doc."""
    pairs = [(ps, g) for ps, g in zip(retrieved, gold, strict=True) if g is not None]
    if not pairs:
        return None
    return sum(g in {p.doc_id for p in ps} for ps, g in pairs) / len(pairs)
