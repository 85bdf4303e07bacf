"""Structured output: OpenAI's ``response_format`` JSON modes as a token mask from llguidance.

``grammar_for`` turns a ``response_format`` into an llguidance grammar (checked, so a schema the library cannot
compile is refused before it queues); ``GrammarMask`` is the per-request logits processor that allows, at each
step, only the tokens that keep each row's output a prefix of a valid document, and the end token once the
document is complete. Why llguidance and not xgrammar: see "Structured output" in docs/generation.md.
"""

from __future__ import annotations

import functools
import json
from typing import Any

ANY_OBJECT: dict[str, Any] = {"type": "object"}
# Compact separators with one space, no free whitespace: greedy decoding cannot loop on newlines, and the
# output reads like ``json.dumps``'s.
JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


class StructuredOutputError(ValueError):
    """A ``response_format`` that cannot be turned into a grammar (the message says why)."""


def grammar_for(response_format: dict[str, Any] | None) -> str | None:
    """The llguidance grammar for an OpenAI ``response_format``; None for free text.

    Raises:
        StructuredOutputError: an unknown type, a malformed ``json_schema`` object, or a schema llguidance
            cannot compile (its own message, e.g. ``Invalid type: strnig``).
    """
    kind = (response_format or {}).get("type", "text")
    if kind == "text":
        return None
    if kind == "json_object":
        return compile_schema(ANY_OBJECT)
    if kind != "json_schema":
        raise StructuredOutputError(f"type must be 'text', 'json_object' or 'json_schema', got {kind!r}")
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise StructuredOutputError('json_schema must be an object with a "name" and a "schema"')
    schema = spec.get("schema", ANY_OBJECT)
    if not isinstance(schema, dict):
        raise StructuredOutputError(f"json_schema.schema must be a JSON Schema object, got {type(schema).__name__}")
    return compile_schema(schema)


def compile_schema(schema: dict[str, Any]) -> str:
    """Compile and check a JSON Schema with llguidance; returns the grammar (a JSON string)."""
    import llguidance

    try:
        grammar = llguidance.LLMatcher.grammar_from_json_schema(json.dumps(schema), overrides=JSON_LAYOUT)
    except (TypeError, ValueError) as exc:
        raise StructuredOutputError(f"the JSON schema cannot be compiled: {exc}") from exc
    problem = llguidance.LLMatcher.validate_grammar(grammar)
    if problem:
        raise StructuredOutputError(f"the JSON schema cannot be compiled: {problem}")
    return grammar


@functools.lru_cache(maxsize=8)
def ll_tokenizer(tok: Any, n_vocab: int) -> Any:
    """llguidance's view of a Hugging Face tokenizer (built once per tokenizer: ~0.4 s for 49k tokens)."""
    import llguidance.hf

    return llguidance.hf.from_tokenizer(tok, n_vocab=n_vocab)


class GrammarMask:
    """Logits processor: masks every row's scores to the tokens its grammar allows next.

    Works on the engine's rows and on ``generate``'s (left-padded) batch alike: the first call fixes the
    prompt width, later calls feed each row's new tokens to its matcher. A row whose matcher has stopped (the
    document is complete, or the end token was taken) may only end; one whose matcher failed (the row ended
    on a stop string and is being padded) is left alone.
    """

    def __init__(self, tok: Any, grammar: str) -> None:
        self.tok, self.grammar = tok, grammar
        self.matchers: list[Any] = []
        self.width = 0  # prompt width seen on the first call
        self.mask: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:  # (rows, seq_len), (rows, vocab)
        import llguidance
        import llguidance.torch as llt

        if not self.matchers:
            lltok = ll_tokenizer(self.tok, scores.shape[-1])
            self.matchers = [llguidance.LLMatcher(lltok, self.grammar) for _ in range(scores.shape[0])]
            self.width = input_ids.shape[1]
            self.mask = llt.allocate_token_bitmask(scores.shape[0], scores.shape[-1])
        elif input_ids.shape[1] > self.width:
            for m, token in zip(self.matchers, input_ids[:, -1].tolist(), strict=True):
                if not (m.is_stopped() or m.is_error()):
                    m.consume_token(token)
        for i, m in enumerate(self.matchers):
            eos = self.tok.eos_token_id
            if m.is_stopped() and eos is not None:  # llguidance stops as soon as only the end token can follow
                end = scores[i, eos].clone()
                scores[i] = float("-inf")
                scores[i, eos] = end
        live = [i for i, m in enumerate(self.matchers) if not (m.is_stopped() or m.is_error())]
        for i in live:
            llt.fill_next_token_bitmask(self.matchers[i], self.mask, i)
        if live:
            rows = scores[live]
            llt.apply_token_bitmask_inplace(rows, self.mask[live])
            scores[live] = rows
        return scores


# A schema with this many allowed documents or fewer is answered by ranking them all (see ``finite_answers``).
MAX_RANKED_ANSWERS = 64


def finite_answers(grammar: str, limit: int = MAX_RANKED_ANSWERS) -> list[str] | None:
    """Every document a JSON-schema grammar allows, when they are few; None when the set is open or large.

    Greedy decoding under a grammar mask picks the most likely *first token* and is then committed to it: with
    the answers ``"negative"``, ``"neutral"`` and ``"positive"`` it scores one token, not the answers. When the
    schema allows at most ``limit`` documents (enums, consts, booleans, null, and objects and ``anyOf`` built
    from them), the engine scores each whole document instead and returns the most likely one (the exact
    maximum under the grammar, which is what temperature 0 asks for). The documents are written in the
    grammar's layout (``JSON_LAYOUT``: ``json.dumps``'s separators, properties in schema order); the engine
    still checks each against the grammar before ranking.
    """
    spec = json.loads(grammar).get("grammars", [{}])
    schema = spec[0].get("json_schema") if len(spec) == 1 else None
    if not isinstance(schema, dict):
        return None
    values = schema_values(schema, limit)
    if values is None:
        return None
    return [json.dumps(v, ensure_ascii=False, separators=(", ", ": ")) for v in values]


def schema_values(schema: Any, limit: int) -> list[Any] | None:
    """The values a (sub)schema allows when they are at most ``limit``, else None (open, large or not understood)."""
    if not isinstance(schema, dict):
        return None
    if "const" in schema:
        return [schema["const"]]
    if "enum" in schema:
        values = list(schema["enum"])
        return values if len(values) <= limit else None
    if "anyOf" in schema or "oneOf" in schema:
        return union_values(schema.get("anyOf") or schema.get("oneOf"), limit)
    kind = schema.get("type")
    if kind == "boolean":
        return [True, False]
    if kind == "null":
        return [None]
    if kind == "object":
        return object_values(schema, limit)
    return None


def union_values(options: Any, limit: int) -> list[Any] | None:
    """The values of ``anyOf``/``oneOf`` options, each finite, without repeats."""
    if not isinstance(options, list):
        return None
    values: dict[str, Any] = {}  # by JSON text: True == 1 in Python, not in JSON
    for option in options:
        part = schema_values(option, limit)
        if part is None:
            return None
        for v in part:
            values.setdefault(json.dumps(v), v)
    return list(values.values()) if len(values) <= limit else None


def object_values(schema: dict[str, Any], limit: int) -> list[Any] | None:
    """Every object of a closed schema whose properties are all required and all finite (cartesian product)."""
    props = schema.get("properties") or {}
    if schema.get("additionalProperties", True) is not False or set(schema.get("required", [])) != set(props):
        return None
    objects: list[dict[str, Any]] = [{}]
    for name, sub in props.items():
        values = schema_values(sub, limit)
        if values is None or len(objects) * len(values) > limit:
            return None
        objects = [{**o, name: v} for o in objects for v in values]
    return objects


def accepted_by(tok: Any, grammar: str, n_vocab: int, ids: list[int]) -> bool:
    """Whether the grammar accepts ``ids`` as a whole document (the end token, if last, included)."""
    import llguidance

    matcher = llguidance.LLMatcher(ll_tokenizer(tok, n_vocab), grammar, log_level=0)
    body = ids[:-1] if ids and ids[-1] == tok.eos_token_id else ids
    return matcher.consume_tokens(body) and matcher.is_accepting() and not matcher.is_error()
