"""RAG retrieval: loading documents (folder, JSONL, errors), chunking, BM25 / embeddings / hybrid search, the
on-disk index cache, prompt assembly and hit rate. Everything is real: bm25s, the stemmer and the offline MiniLM."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.conftest import write_jsonl
from tunesmith.core.errors import DatasetError
from tunesmith.evaluate.documents import Document, chunk_documents, load_documents
from tunesmith.evaluate.retrieval import (
    DEFAULT_TEMPLATE,
    Passage,
    RagSettings,
    build_index,
    hit_rate,
    render_context,
    with_context,
)

CORPUS = [
    {
        "id": "refunds",
        "title": "Refund policy",
        "text": "Customers are refunded within 14 days of a return. Refunds go back to the original card.",
    },
    {"id": "shipping", "text": "Parcels ship from the Rotterdam warehouse; delivery in the EU takes 2 to 4 days."},
    {"id": "dogs", "text": "Our office welcomes dogs on Fridays. Please keep your dog on a leash in the kitchen."},
    {"id": "vpn", "text": "Connect to the corporate VPN with the WireGuard client before opening the wiki."},
    {"id": "payroll", "text": "Salaries are paid on the 25th; payslips appear in the HR portal."},
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "docs.jsonl", CORPUS)


def _settings(docs: Path, **kw) -> RagSettings:
    return RagSettings(docs=docs, chunk_size=20, chunk_overlap=5, **kw)


def test_load_folder_uses_relative_paths_without_suffix_as_ids(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    (tmp_path / "a.txt").write_text("alpha text")
    (tmp_path / "sub" / "b.md").write_text("# Beta\nbeta text")
    (tmp_path / "notes.pdf").write_text("not a document")
    (tmp_path / ".git" / "c.txt").write_text("hidden")
    docs = load_documents(tmp_path)
    assert [(d.id, d.text, d.title) for d in docs] == [("a", "alpha text", None), ("sub/b", "# Beta\nbeta text", None)]


def test_load_jsonl_keeps_order_and_titles(corpus):
    docs = load_documents(corpus)
    assert [d.id for d in docs] == [d["id"] for d in CORPUS]
    assert docs[0].title == "Refund policy" and docs[1].title is None


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (['{"id": "a", "text": "x"}', "{not json"], r"docs\.jsonl line 2: not valid JSON"),
        ([{"id": "a"}], r"docs\.jsonl line 1: field 'text': Field required"),
        ([{"id": 7, "text": "x"}], r"docs\.jsonl line 1: field 'id': Input should be a valid string"),
        ([{"id": "a", "text": "x"}, {"id": "a", "text": "y"}], r"line 2: duplicate id 'a' \(first on line 1\)"),
        ([], "no documents found"),
    ],
)
def test_bad_jsonl_names_file_and_line(tmp_path, lines, match):
    path = write_jsonl(tmp_path / "docs.jsonl", lines)
    with pytest.raises(DatasetError, match=match):
        load_documents(path)


def test_jsonl_errors_are_reported_all_at_once(tmp_path):
    path = write_jsonl(tmp_path / "docs.jsonl", ["[1]", {"id": "ok", "text": "fine"}, {"text": "no id"}])
    with pytest.raises(DatasetError, match=r"(?s)line 1: not a JSON object.*line 3: field 'id'"):
        load_documents(path)


def test_missing_path_and_empty_folder_are_clear_errors(tmp_path):
    with pytest.raises(DatasetError, match=r"nope: no such file or folder"):
        load_documents(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"empty: no documents found") as info:
        load_documents(tmp_path / "empty")
    assert ".txt/.md" in info.value.hint


def test_folder_ids_must_be_unique(tmp_path):
    (tmp_path / "a.txt").write_text("one")
    (tmp_path / "a.md").write_text("two")
    with pytest.raises(DatasetError, match=r"document id 'a' is also the id of"):
        load_documents(tmp_path)


def test_chunks_overlap_and_carry_the_title():
    words = " ".join(f"w{i}" for i in range(10))
    docs = [Document(id="d", text=words, title="T"), Document(id="e", text="  "), Document(id="f", text="a b")]
    chunks = chunk_documents(docs, chunk_size=4, overlap=1)
    assert [(c.doc_id, c.chunk, c.text) for c in chunks] == [
        ("d", 0, "T\nw0 w1 w2 w3"),
        ("d", 1, "T\nw3 w4 w5 w6"),
        ("d", 2, "T\nw6 w7 w8 w9"),
        ("f", 0, "a b"),
    ]
    assert [c.text for c in chunk_documents(docs[:1], chunk_size=10, overlap=3)] == [f"T\n{words}"]


def test_settings_validate_overlap_template_and_keys(tmp_path):
    assert RagSettings(docs=tmp_path).template == DEFAULT_TEMPLATE
    with pytest.raises(ValidationError, match=r"chunk_overlap \(40\) must be less than chunk_size \(40\)"):
        RagSettings(docs=tmp_path, chunk_size=40)
    with pytest.raises(ValidationError, match=r"must contain \{context\}"):
        RagSettings(docs=tmp_path, template="Q: {question}")
    with pytest.raises(ValidationError, match=r"placeholder other than"):
        RagSettings(docs=tmp_path, template='{context} {question} {"json": 1}')
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        RagSettings(docs=tmp_path, top_k=3)


def test_bm25_finds_the_right_document_with_stemming(corpus, tmp_path):
    index = build_index(_settings(corpus), tmp_path / "cache")
    assert index.search("how long until I get my refund?", 1)[0].doc_id == "refunds"  # "refunded", "Refunds"
    assert index.search("which VPN client should I connect with", 3)[0].doc_id == "vpn"
    assert [p.doc_id for p in index.search("when are salaries paid", 3)][0] == "payroll"
    assert index.search("zzz qqq", 3) == []  # no shared word, no passage
    many = index.search_many(["refund", "dogs leash"], 2)
    assert [ps[0].doc_id for ps in many] == ["refunds", "dogs"]
    assert many[1] == index.search("dogs leash", 2)


def test_equal_scores_keep_chunk_order(tmp_path):
    rows = [{"id": f"d{i}", "text": "the same sentence about invoices"} for i in (3, 1, 2)]
    index = build_index(_settings(write_jsonl(tmp_path / "docs.jsonl", rows)), tmp_path / "cache")
    for _ in range(2):
        assert [p.doc_id for p in index.search("invoices", 3)] == ["d3", "d1", "d2"]


def test_second_build_loads_the_cache_and_keys_follow_content(corpus, tmp_path):
    cache = tmp_path / "cache"
    first = build_index(_settings(corpus), cache)
    (folder,) = list(cache.iterdir())
    mtimes = {p: p.stat().st_mtime_ns for p in folder.rglob("*")}
    second = build_index(_settings(corpus), cache)
    assert (first.from_cache, second.from_cache) == (False, True)
    assert {p: p.stat().st_mtime_ns for p in folder.rglob("*")} == mtimes
    assert second.search("refund", 3) == first.search("refund", 3)
    build_index(RagSettings(docs=corpus, chunk_size=30, chunk_overlap=5), cache)
    write_jsonl(corpus, [*CORPUS, {"id": "new", "text": "a new document"}])
    assert not build_index(_settings(corpus), cache).from_cache
    assert len(list(cache.iterdir())) == 3  # no temporary folder left behind


def test_embeddings_and_hybrid_search(corpus, tmp_path):
    emb = build_index(_settings(corpus, method="embeddings"), tmp_path / "cache")
    assert emb.search("can I bring my puppy to work?", 1)[0].doc_id == "dogs"  # no shared word with the doc
    hybrid = build_index(_settings(corpus, method="hybrid"), tmp_path / "cache")
    queries = ["can I bring my puppy to work?", "when are salaries paid"]
    found = hybrid.search_many(queries, 3)
    assert [ps[0].doc_id for ps in found] == ["dogs", "payroll"]
    assert all(len(ps) == 3 for ps in found)
    assert found == [hybrid.search(q, 3) for q in queries]
    cached = build_index(_settings(corpus, method="hybrid"), tmp_path / "cache")
    assert cached.from_cache and cached.search_many(queries, 3) == found


def test_with_context_changes_only_the_last_user_message():
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "When are refunds paid?", "name": "ana"},
    ]
    before = [dict(m) for m in messages]
    passages = [Passage("refunds", 0, "Refunds take 14 days.", 1.0), Passage("faq", 2, "Ask support.", 0.5)]
    out = with_context(messages, passages, DEFAULT_TEMPLATE)
    assert messages == before  # the input is not modified
    assert out[:3] == messages[:3]
    assert out[3] == {
        "role": "user",
        "name": "ana",
        "content": "Answer the question using the context below.\n\nContext:\n[refunds] Refunds take 14 days.\n\n"
        "[faq] Ask support.\n\nQuestion: When are refunds paid?",
    }
    assert render_context([]) == ""
    with pytest.raises(DatasetError, match="no user message"):
        with_context([{"role": "system", "content": "x"}], passages, DEFAULT_TEMPLATE)


def test_hit_rate_counts_queries_with_a_gold_document():
    def ps(*ids: str) -> list[Passage]:
        return [Passage(i, 0, "", 0.0) for i in ids]

    retrieved = [ps("a", "b"), ps("c"), ps(), ps("d")]
    assert hit_rate(retrieved, ["b", "a", "x", None]) == pytest.approx(1 / 3)
    assert hit_rate(retrieved, [None] * 4) is None
    assert hit_rate([], []) is None
