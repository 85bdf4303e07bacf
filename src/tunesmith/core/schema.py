"""The one internal schema every format loads into: chat examples and preference (DPO) records.

It follows OpenAI's fine-tuning chat format: ``{"messages": [...], "tools": [...]}`` where each message has
a ``role`` (system/user/assistant/tool), ``content``, an optional ``name``, assistant ``tool_calls`` and
OpenAI's per-assistant-message ``weight`` (0 = not trained on).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")
MESSAGE_KEYS: frozenset[str] = frozenset(
    {"role", "content", "name", "weight", "tool_calls", "tool_call_id", "function_call", "refusal"}
)
EXAMPLE_KEYS: frozenset[str] = frozenset({"messages", "tools", "functions", "parallel_tool_calls", "metadata"})
PREFERENCE_KEYS: frozenset[str] = frozenset({"input", "preferred_output", "non_preferred_output", "metadata"})


class ToolFunction(BaseModel):
    """The function a tool call invokes; ``arguments`` is a JSON string, as in OpenAI's format."""

    model_config = ConfigDict(extra="forbid")
    name: str
    arguments: str = "{}"


class ToolCall(BaseModel):
    """One assistant tool call."""

    model_config = ConfigDict(extra="forbid")
    id: str
    type: Literal["function"] = "function"
    function: ToolFunction


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(extra="forbid")
    role: Role
    content: str | None = None
    name: str | None = None
    weight: Literal[0, 1] | None = Field(
        default=None, description="OpenAI's per-assistant-message weight: 0 = not trained on, 1 = trained."
    )
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @property
    def trained(self) -> bool:
        """Whether the loss covers this message (assistant messages whose weight is not 0)."""
        return self.role == "assistant" and self.weight != 0

    def to_openai(self) -> dict[str, Any]:
        """This message as an OpenAI chat-format dict (unset optional fields left out)."""
        return self.model_dump(exclude_none=True)


class ChatExample(BaseModel):
    """One training conversation."""

    model_config = ConfigDict(extra="forbid")
    messages: list[Message]
    tools: list[dict[str, Any]] | None = None
    metadata: dict[str, Any] | None = Field(default=None, description="Free-form provenance (source, ids).")

    def to_openai(self) -> dict[str, Any]:
        """This example as one line of OpenAI chat JSONL."""
        out: dict[str, Any] = {"messages": [m.to_openai() for m in self.messages]}
        if self.tools:
            out["tools"] = self.tools
        if self.metadata:
            out["metadata"] = self.metadata
        return out

    def for_template(self) -> list[dict[str, Any]]:
        """Messages as plain dicts for a tokenizer chat template (no ``weight``)."""
        return [m.model_dump(exclude_none=True, exclude={"weight"}) for m in self.messages]

    @property
    def system_prompt(self) -> str | None:
        """The first system message's content, if any."""
        return next((m.content for m in self.messages if m.role == "system"), None)


class PreferenceExample(BaseModel):
    """One OpenAI DPO record: a prompt and a preferred and a non-preferred assistant answer."""

    model_config = ConfigDict(extra="forbid")
    input: ChatExample = Field(
        description="The prompt conversation (``{'messages': [...]}``), ending before the answer."
    )
    preferred_output: list[Message]
    non_preferred_output: list[Message]
    metadata: dict[str, Any] | None = None

    def to_openai(self) -> dict[str, Any]:
        """This record as one line of OpenAI preference JSONL."""
        return {
            "input": self.input.to_openai(),
            "preferred_output": [m.to_openai() for m in self.preferred_output],
            "non_preferred_output": [m.to_openai() for m in self.non_preferred_output],
        }
