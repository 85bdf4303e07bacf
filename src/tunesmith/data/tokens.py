"""Token counts with the model's real tokenizer and chat template, batched for speed.

Each example is rendered with the chat template (plus the per-turn renders that locate trained assistant
spans, as :func:`tunesmith.models.template.trained_char_spans` does), and the rendered texts are tokenized in
batches by the fast tokenizer. A token is counted as trained when it starts inside a trained span. This
matches :func:`tunesmith.models.template.tokenize_example` (which tokenizes segment by segment) up to a token
at a segment boundary; the zero-trainable-tokens check calls ``tokenize_example`` itself on the examples where
it can happen.

Rendering Jinja three times per example cost ~300 us (measured on this 2-core CPU, more than tokenizing), so
conversations of one *shape* (the roles and trained flags of their messages, plain text contents, no tools)
share one render: the template is rendered once with placeholder contents and each example's text is the
literal pieces around them with its own contents put back (:class:`_Skeleton`). That is exact for templates
that insert contents verbatim; each shape is checked first against real renders of probe contents (leading and
trailing whitespace, newlines, a ``<think>`` block), and a template that trims, splits or otherwise inspects
contents fails the check and is rendered per example as before. The trained-token count reads the Rust
encoding's ``char_to_token`` at the span edges instead of building Python offset lists.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from tunesmith.core.errors import DatasetError
from tunesmith.core.schema import ChatExample, Message, PreferenceExample
from tunesmith.models.load import load_fast_tokenizer, model_context_length, prepare_tokenizer
from tunesmith.models.template import tokenize_example, trained_char_spans

MAX_SHAPES = 4096  # conversation shapes whose skeleton is cached (bounded memory)
MAX_PIECES = 65_536  # remembered piece token counts (~10 MB at most; cleared when full)
_PROBES = ("  probe {i}\n  two lines\t ", "<think>\nx {i}\n</think>\n\nanswer {i} ")
_TEMPLATE_ERRORS = (DatasetError, ValueError, TypeError, KeyError, IndexError)


@dataclass
class TokenCount:
    """Tokens of one rendered example, and how many of them the loss covers."""

    n_tokens: int
    n_trained: int


def as_chat(example: ChatExample | PreferenceExample) -> ChatExample:
    """A chat example to measure: preference records count as prompt + preferred answer."""
    if isinstance(example, PreferenceExample):
        return ChatExample(messages=[*example.input.messages, *example.preferred_output], tools=example.input.tools)
    return example


@dataclass
class _Skeleton:
    """The chat template's text for one conversation shape, with holes where the contents go.

    ``pieces[0] + contents[0] + pieces[1] + ... + pieces[n]`` is the rendered text; a span edge is
    ``(k, delta)``: ``delta`` characters after the end of the first ``k`` contents' total length.
    """

    pieces: list[str]
    edges: list[tuple[tuple[int, int], tuple[int, int]]]

    def fill(self, contents: list[str]) -> tuple[str, list[tuple[int, int]]]:
        """The rendered text and trained character spans for these contents."""
        parts = [self.pieces[0]]
        before = [0]
        for content, piece in zip(contents, self.pieces[1:], strict=True):
            parts += (content, piece)
            before.append(before[-1] + len(content))
        spans = [(before[k0] + d0, before[k1] + d1) for (k0, d0), (k1, d1) in self.edges]
        return "".join(parts), spans


def _shape(messages: list[Message], tools: Any) -> tuple | None:
    """The key examples sharing a skeleton have (None: the example is rendered on its own)."""
    if tools:
        return None
    key = []
    for m in messages:
        if m.content is None or m.name is not None or m.tool_calls or m.tool_call_id is not None:
            return None
        key.append((m.role, m.trained))
    return tuple(key)


def _build_skeleton(tok: Any, shape: tuple) -> _Skeleton | None:
    """Render ``shape`` with placeholder contents; None unless probe contents render exactly as filled in."""
    holes = [f"\ue000{i}\ue001" for i in range(len(shape))]
    try:
        full, spans = trained_char_spans(tok, _shaped_example(shape, holes))
    except _TEMPLATE_ERRORS:
        return None
    at = [full.find(h) for h in holes]
    if any(p < 0 or full.count(h) != 1 for p, h in zip(at, holes, strict=True)) or at != sorted(at):
        return None
    ends = [p + len(h) for p, h in zip(at, holes, strict=True)]
    pieces = [full[a:b] for a, b in zip([0, *ends], [*at, len(full)], strict=True)]
    edges = []
    for span in spans:
        edge = []
        for pos in span:
            k = sum(e <= pos for e in ends)
            if k < len(at) and at[k] < pos:  # the edge falls inside a content: not a fixed offset
                return None
            edge.append((k, pos - sum(len(h) for h in holes[:k])))
        edges.append((edge[0], edge[1]))
    skeleton = _Skeleton(pieces, edges)
    for probe in _PROBES:
        contents = [probe.format(i=i) for i in range(len(shape))]
        try:
            if trained_char_spans(tok, _shaped_example(shape, contents)) != skeleton.fill(contents):
                return None
        except _TEMPLATE_ERRORS:
            return None
    return skeleton


def _shaped_example(shape: tuple, contents: list[str]) -> ChatExample:
    return ChatExample(
        messages=[
            Message(role=role, content=c, weight=0 if role == "assistant" and not trained else None)
            for (role, trained), c in zip(shape, contents, strict=True)
        ]
    )


class TokenCounter:
    """The tokenizer, context length and special tokens of one model.

    Args:
        model: a model name or directory (see :func:`tunesmith.models.registry.resolve_model`).
        tokenizer: an already loaded tokenizer (skips loading; used by tests).
        context: the context length to check against (default: the model's ``max_position_embeddings``).
    """

    def __init__(self, model: str, tokenizer: Any = None, context: int | None = None) -> None:
        self.model = model
        self.tok = prepare_tokenizer(tokenizer) if tokenizer is not None else load_fast_tokenizer(model)
        self.context = context or model_context_length(model, self.tok)
        specials = sorted({t for t in self.tok.all_special_tokens if t} | _added_special(self.tok), key=len)
        self._special_re = re.compile("|".join(re.escape(t) for t in reversed(specials))) if specials else None
        self._skeletons: dict[tuple, _Skeleton | None] = {}
        self.tok("", add_special_tokens=False)  # leaves the Rust tokenizer set up as a plain call does
        self._segments = _SegmentCounter.for_tokenizer(self.tok, self._encode)

    def special_tokens_in(self, text: str | None) -> list[str]:
        """The model's special tokens that appear inside ``text``."""
        if not text or self._special_re is None:
            return []
        return sorted(set(self._special_re.findall(text)))

    def count(self, examples: list[ChatExample | PreferenceExample]) -> list[TokenCount | None]:
        """Token counts of a batch of examples (None where the template cannot render one)."""
        rendered = [self._render(ex) for ex in examples]
        if self._segments is not None:
            return self._segments.count(rendered)
        texts = [r[0] for r in rendered if r is not None]
        encodings = self._encode(texts) if texts else []
        out: list[TokenCount | None] = []
        j = 0
        for r in rendered:
            if r is None:
                out.append(None)
                continue
            enc = encodings[j]
            j += 1
            out.append(TokenCount(len(enc), _trained_tokens(enc, r[1], len(r[0]))))
        return out

    def _render(self, example: ChatExample | PreferenceExample) -> tuple[str, list[tuple[int, int]]] | None:
        """The rendered text and trained spans, from the shape's skeleton where it has one."""
        if isinstance(example, PreferenceExample):
            messages, tools = [*example.input.messages, *example.preferred_output], example.input.tools
        else:
            messages, tools = example.messages, example.tools
        shape = _shape(messages, tools)
        if shape is not None and shape not in self._skeletons and len(self._skeletons) < MAX_SHAPES:
            self._skeletons[shape] = _build_skeleton(self.tok, shape)
        skeleton = self._skeletons.get(shape) if shape is not None else None
        if skeleton is not None:
            return skeleton.fill([m.content or "" for m in messages])
        try:
            return trained_char_spans(self.tok, as_chat(example))
        except _TEMPLATE_ERRORS:  # the template refused it
            return None

    def _encode(self, texts: list[str]) -> list[Any]:
        """Rust encodings of ``texts`` (no special tokens added), as the tokenizer's own call makes them."""
        backend = getattr(self.tok, "backend_tokenizer", None)
        if backend is not None and backend.truncation is None and backend.padding is None:
            return backend.encode_batch(texts, add_special_tokens=False)
        return self.tok(texts, add_special_tokens=False).encodings

    def trained_after_truncation(self, example: ChatExample | PreferenceExample) -> int:
        """Exact trained-token count after truncating to the context (``tokenize_example``)."""
        return tokenize_example(self.tok, as_chat(example), max_length=self.context).n_trained


class _SegmentCounter:
    """Counts a rendered text as the Rust tokenizer does: added tokens split it, each piece tokenized alone.

    The tokenizer cuts the text at every added token (``<|im_start|>``, ``<|im_end|>``...: one token each)
    and tokenizes the pieces independently, so a piece's token count can be remembered: the template's fixed
    text and a system prompt shared by the dataset are tokenized once, and only the pieces holding an edge of
    a trained span need offsets. Used only for tokenizers where that split is plain (no added token strips
    whitespace or matches whole words only, no normalizer before the match, special tokens not split) and
    where probe texts count alike both ways.
    """

    def __init__(self, added: re.Pattern, encode: Any, backend: Any) -> None:
        self._added = added
        self._encode = encode
        self._backend = backend
        self._known: dict[str, int] = {}  # piece -> tokens (bounded, cleared when full)

    @classmethod
    def for_tokenizer(cls, tok: Any, encode: Any) -> _SegmentCounter | None:
        """A counter for ``tok``, or None where splitting at added tokens could change the count."""
        backend = getattr(tok, "backend_tokenizer", None)
        if backend is None or backend.encode_special_tokens:
            return None
        added = [t for t in backend.get_added_tokens_decoder().values() if t.content]
        if not added or any(t.lstrip or t.rstrip or t.single_word for t in added):
            return None
        if backend.normalizer is not None and any(t.normalized for t in added):
            return None
        contents = sorted({t.content for t in added}, key=len, reverse=True)  # leftmost-longest match
        counter = cls(re.compile("(" + "|".join(re.escape(c) for c in contents) + ")"), encode, backend)
        return counter if counter._probes_agree(tok) else None

    def _probes_agree(self, tok: Any) -> bool:
        """Whether probe renders count the same split and whole (a pre-tokenizer may treat text starts apart)."""
        contents = [" lead", "x", "\nnew line", "tail ", "東京 😀", "<|im_end|>in", "a  b", "\t"]
        texts = []
        for i, content in enumerate(contents):
            example = ChatExample(
                messages=[Message(role="user", content=content), Message(role="assistant", content=contents[i - 1])]
            )
            try:
                texts.append(trained_char_spans(tok, example))
            except _TEMPLATE_ERRORS:
                return False
        whole = [
            (len(enc), _trained_from_offsets(enc.offsets, spans))
            for enc, (_, spans) in zip(self._encode([t for t, _ in texts]), texts, strict=True)
        ]
        split = [(c.n_tokens, c.n_trained) for c in self.count(texts) if c is not None]
        return whole == split

    def count(self, rendered: list[tuple[str, list[tuple[int, int]]] | None]) -> list[TokenCount | None]:
        """Token counts of rendered texts with their trained spans (None stays None)."""
        plans = [None if r is None else self._plan(*r) for r in rendered]
        pieces = {piece for plan in plans if plan for piece, _ in plan[2]}
        if len(self._known) + len(pieces) > MAX_PIECES:
            self._known.clear()
        unknown = [piece for piece in pieces if piece not in self._known]
        fresh = self._backend.encode_batch_fast(unknown, add_special_tokens=False) if unknown else []
        known = self._known
        known.update(zip(unknown, map(len, fresh), strict=True))
        partial = [piece for plan in plans if plan for piece, _ in plan[3]]
        encodings = iter(self._encode(partial) if partial else [])
        out: list[TokenCount | None] = []
        for plan in plans:
            if plan is None:
                out.append(None)
                continue
            n, trained, whole, edged = plan
            for piece, inside in whole:
                n += known[piece]
                trained += known[piece] if inside else 0
            for piece, spans in edged:
                enc = next(encodings)
                n += len(enc)
                trained += _trained_tokens(enc, spans, len(piece))
            out.append(TokenCount(n, trained))
        return out

    def _plan(self, text: str, spans: list[tuple[int, int]]) -> tuple[int, int, list, list]:
        """``(added tokens, trained added tokens, [(piece, trained?)], [(piece, spans in it)])`` of one text."""
        parts = self._added.split(text)  # piece, added token, piece, ..., piece
        bounds = [0, *accumulate(map(len, parts))]
        trained = 0
        for s, e in spans:  # added tokens starting inside a trained span
            trained += sum(s <= bounds[k] < e for k in range(1, len(parts), 2))
        whole: list[tuple[str, bool]] = []
        edged: list[tuple[str, list[tuple[int, int]]]] = []
        for k in range(0, len(parts), 2):
            cut, end = bounds[k], bounds[k + 1]
            if cut == end:
                continue
            inside = [(s, e) for s, e in spans if s < end and cut < e]
            if not inside:
                whole.append((parts[k], False))
            elif len(inside) == 1 and inside[0][0] <= cut and end <= inside[0][1]:
                whole.append((parts[k], True))
            else:
                edged.append((parts[k], [(max(s, cut) - cut, min(e, end) - cut) for s, e in inside]))
        return len(parts) // 2, trained, whole, edged


def _trained_tokens(enc: Any, spans: list[tuple[int, int]], n_chars: int) -> int:
    """Tokens whose start offset lies inside one of the (sorted, disjoint) ``spans``."""
    total = 0
    for start, end in spans:
        first, stop = _first_token_from(enc, start, n_chars), _first_token_from(enc, end, n_chars)
        if first is None or stop is None:
            return _trained_from_offsets(enc.offsets, spans)
        total += stop - first
    return total


def _first_token_from(enc: Any, pos: int, n_chars: int) -> int | None:
    """Index of the first token starting at or after character ``pos`` (None: ask the offsets)."""
    if pos >= n_chars:
        return len(enc)
    t = enc.char_to_token(pos)
    if t is None:
        return None
    if enc.token_to_chars(t)[0] < pos:  # the token straddles pos: the next one is the first after it
        return t + 1
    while t > 0 and enc.token_to_chars(t - 1)[0] >= pos:  # tokens sharing one character's start
        t -= 1
    return t


def _trained_from_offsets(offsets: list[tuple[int, int]], spans: list[tuple[int, int]]) -> int:
    starts = [s for s, _ in spans]
    n = 0
    for start, _end in offsets:
        k = bisect.bisect_right(starts, start) - 1
        if k >= 0 and start < spans[k][1]:
            n += 1
    return n


def _added_special(tok: Any) -> set[str]:
    decoder = getattr(tok, "added_tokens_decoder", {}) or {}
    return {t.content for t in decoder.values() if getattr(t, "special", False)}
