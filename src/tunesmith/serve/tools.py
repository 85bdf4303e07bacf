"""Tool calling through the model's own chat template: render ``tools``, parse the calls the model writes.

Rendering is the template's job (``apply_chat_template(..., tools=...)``); a template that never mentions
``tools`` cannot show them to the model, so such a model is refused with a 400 instead of silently ignoring
the tools. Parsing uses the tokenizer's ``response_template`` when it ships one (transformers'
``parse_response``), else the Hermes format that Qwen2.5, Hermes and SmolLM3-style templates ask for:
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from tunesmith.core.errors import ServeError
from tunesmith.serve.chat_schemas import ChatCompletionCreate, ToolCall, ToolCallFunction

HERMES_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def template_supports_tools(tok: Any) -> bool:
    """Whether the tokenizer's chat template renders a ``tools`` list."""
    template = tok.chat_template
    if isinstance(template, dict):
        return "tool_use" in template or any("tools" in t for t in template.values())
    return isinstance(template, str) and "tools" in template


def active_tools(body: ChatCompletionCreate, tok: Any, model: str) -> list[dict[str, Any]] | None:
    """The tools to render for this request (None when there are none or ``tool_choice`` is "none").

    Raises:
        ServeError: the model's template has no tool support, or a ``tool_choice`` that needs constrained
            decoding (``required`` or a named function).
    """
    if not body.tools or body.tool_choice == "none":
        return None
    if body.tool_choice not in (None, "auto"):
        raise ServeError(
            f"tool_choice {body.tool_choice!r} is not supported: forcing a call needs constrained decoding",
            'use tool_choice "auto" (the default) or "none"',
            param="tool_choice",
        )
    if not template_supports_tools(tok):
        raise ServeError(
            f"the chat template of model {model!r} has no tool support, so it cannot see `tools`",
            "call without tools, or serve a model whose chat template renders tools (Qwen2.5, Llama 3.1, "
            "Hermes, SmolLM3...)",
            param="tools",
        )
    return [t.model_dump(exclude_none=True) for t in body.tools]


def call_id() -> str:
    """``call_<hex>``, as OpenAI's tool-call ids."""
    return f"call_{secrets.token_hex(12)}"


def as_tool_call(name: Any, arguments: Any) -> ToolCall | None:
    """A ToolCall from a parsed name and arguments (arguments re-serialised as a JSON string)."""
    if not isinstance(name, str) or not name:
        return None
    args = arguments if isinstance(arguments, str) else json.dumps(arguments if arguments is not None else {})
    return ToolCall(id=call_id(), function=ToolCallFunction(name=name, arguments=args))


def parse_tool_calls(
    text: str, tok: Any, prompt_text: str, tools: list[dict[str, Any]]
) -> tuple[str | None, list[ToolCall]]:
    """Split a completion into its content and the tool calls it makes.

    Returns:
        ``(content, calls)``: content is None when the completion is only tool calls.
    """
    if getattr(tok, "response_template", None) is not None:
        parsed = tok.parse_response(text, prefix=prompt_text, tools=tools)
        calls = [
            as_tool_call(c.get("function", c).get("name"), c.get("function", c).get("arguments"))
            for c in parsed.get("tool_calls") or []
        ]
        return parsed.get("content") or None, [c for c in calls if c is not None]
    calls = []
    for block in HERMES_CALL.findall(text):
        try:
            obj = json.loads(block)
        except ValueError:
            continue
        call = (
            as_tool_call(obj.get("name"), obj.get("arguments", obj.get("parameters")))
            if isinstance(obj, dict)
            else None
        )
        if call is not None:
            calls.append(call)
    if not calls:
        return text, []
    content = HERMES_CALL.sub("", text).strip()
    return content or None, calls
