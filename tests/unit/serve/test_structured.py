"""``response_format`` checks: the JSON modes compile to a grammar, anything llguidance cannot compile is refused
by the request schema (the API answers 400 with ``param: "response_format"``)."""

from __future__ import annotations

import openai
import pytest
from pydantic import ValidationError

from tunesmith.serve.chat_schemas import ChatCompletionCreate

ASK = [{"role": "user", "content": "hi"}]


def body(fmt) -> ChatCompletionCreate:
    return ChatCompletionCreate(model="m", messages=ASK, response_format=fmt)


def schema_format(schema, **extra) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, **extra}}


@pytest.mark.parametrize(
    ("fmt", "match"),
    [
        ({"type": "yaml"}, "type must be 'text', 'json_object' or 'json_schema', got 'yaml'"),
        ({"type": "json_schema"}, 'json_schema must be an object with a "name" and a "schema"'),
        ({"type": "json_schema", "json_schema": {"schema": {}}}, 'with a "name"'),
        (schema_format([1, 2]), "json_schema.schema must be a JSON Schema object, got list"),
        (schema_format({"type": "strnig"}), "cannot be compiled: Invalid type: strnig"),
        (schema_format({"$ref": "#/defs/missing"}), "cannot be compiled: .*/defs/missing"),
    ],
)
def test_formats_llguidance_cannot_compile_are_refused(fmt, match):
    with pytest.raises(ValidationError, match=match) as err:
        body(fmt)
    assert err.value.errors()[0]["loc"] == ("response_format",)  # the API's error names this param


def test_text_json_object_and_json_schema_are_accepted():
    assert body(None).grammar() is None and body({"type": "text"}).grammar() is None
    assert "json_schema" in body({"type": "json_object"}).grammar()
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    assert '"required":["a"]' in body(schema_format(schema, strict=True)).grammar().replace(" ", "")


def test_an_invalid_format_is_a_400_naming_response_format(api):
    fmt = schema_format({"type": "strnig"})
    with pytest.raises(openai.BadRequestError) as err:
        api.client.chat.completions.create(model="m", messages=ASK, response_format=fmt)
    assert err.value.body["param"] == "response_format" and "strnig" in err.value.body["message"]
