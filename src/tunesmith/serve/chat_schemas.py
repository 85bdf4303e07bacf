"""Chat-completion schemas (request, response, stream chunk), shaped as OpenAI's."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tunesmith.models.structured import grammar_for
from tunesmith.serve.schemas import find_lone_surrogate

MAX_STOP_SEQUENCES = 4  # OpenAI's limit
MAX_STOP_CHARS = 256  # each stop string is searched in the text at every decode step
MAX_TOP_LOGPROBS = 20  # OpenAI's limit
INT64 = 2**63
GREEDY_BELOW = 1e-5  # dividing logits by a smaller temperature overflows to inf/nan (vLLM uses the same bound)


class ToolFunction(BaseModel):
    """A function the model may call: its name, description and JSON-Schema parameters."""

    model_config = ConfigDict(extra="ignore")
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(BaseModel):
    """One entry of ``tools``."""

    type: Literal["function"] = "function"
    function: ToolFunction


class ToolCallFunction(BaseModel):
    """The function a tool call names, with its arguments as a JSON string (OpenAI's shape)."""

    name: str
    arguments: str


class ToolCall(BaseModel):
    """A tool call in an assistant message."""

    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunction


class ChatMessageIn(BaseModel):
    """One request message; content may be a string or OpenAI's list of text parts."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def as_template_dict(self) -> dict[str, Any]:
        """The message as a chat-template dict (text parts joined; ``developer`` treated as ``system``).

        Tool-call arguments are handed to the template as objects (templates render them with ``tojson``).
        """
        content = self.content
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if p.get("type") == "text")
        role = "system" if self.role == "developer" else self.role
        out: dict[str, Any] = {"role": role, "content": content or ""}
        if self.tool_calls:
            out["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.function.name, "arguments": parse_arguments(c.function.arguments)},
                }
                for c in self.tool_calls
            ]
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.name is not None and role == "tool":
            out["name"] = self.name
        return out


def parse_arguments(arguments: str) -> Any:
    """Tool-call arguments as an object when they are JSON, else the string as sent."""
    try:
        return json.loads(arguments)
    except ValueError:
        return arguments


class StreamOptions(BaseModel):
    """``stream_options``."""

    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatCompletionCreate(BaseModel):
    """POST /v1/chat/completions."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(min_length=1, description="Base model, `ft:` model, checkpoint or alias.")
    messages: list[ChatMessageIn] = Field(min_length=1)
    temperature: float | None = Field(
        default=None, ge=0, le=2, description=f"0 = greedy (so is anything below {GREEDY_BELOW}); default 1."
    )
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, description="Deprecated alias of max_completion_tokens.")
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = Field(
        default=None, description=f"Up to {MAX_STOP_SEQUENCES} sequences of up to {MAX_STOP_CHARS} characters."
    )
    n: int = Field(default=1, ge=1, le=8)
    seed: int | None = Field(default=None, ge=-INT64, lt=INT64, description="A 64-bit integer.")
    stream: bool = False
    stream_options: StreamOptions | None = None
    logprobs: bool = False
    top_logprobs: int | None = Field(default=None, ge=0, le=MAX_TOP_LOGPROBS)
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    logit_bias: dict[str, float] | None = Field(
        default=None, max_length=300, description="Token id (as a string) -> bias in [-100, 100]."
    )
    response_format: dict[str, Any] | None = Field(
        default=None,
        description='{"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "json_schema": '
        '{"name", "schema", "strict"}}: JSON modes constrain decoding to the schema (llguidance).',
    )
    user: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_lone_surrogates(cls, data: Any) -> Any:
        where = find_lone_surrogate(data)
        if where is not None:
            raise ValueError(f"{where} holds a lone UTF-16 surrogate (e.g. \\udc80), which is not text")
        return data

    @field_validator("temperature")
    @classmethod
    def _tiny_temperature_is_greedy(cls, temperature: float | None) -> float | None:
        return 0.0 if temperature is not None and temperature < GREEDY_BELOW else temperature

    @field_validator("stop")
    @classmethod
    def _bounded_stops(cls, stop: str | list[str] | None) -> str | list[str] | None:
        stops = [stop] if isinstance(stop, str) else (stop or [])
        if len(stops) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed, got {len(stops)}")
        if any(len(s) > MAX_STOP_CHARS for s in stops):
            raise ValueError(f"each stop sequence may have at most {MAX_STOP_CHARS} characters")
        return stop

    @field_validator("logit_bias")
    @classmethod
    def _token_biases(cls, bias: dict[str, float] | None) -> dict[str, float] | None:
        for key, value in (bias or {}).items():
            if not key.isdigit():
                raise ValueError(f"logit_bias keys are token ids, got {key!r}")
            if not -100 <= value <= 100:
                raise ValueError(f"logit_bias values lie in [-100, 100], got {value} for token {key}")
        return bias

    @field_validator("response_format")
    @classmethod
    def _compilable_format(cls, fmt: dict[str, Any] | None) -> dict[str, Any] | None:
        grammar_for(fmt)  # StructuredOutputError is a ValueError: a 400 naming response_format
        return fmt

    @model_validator(mode="after")
    def _check_combinations(self) -> ChatCompletionCreate:
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs=true")
        return self

    def token_biases(self, vocab_size: int) -> tuple[tuple[int, float], ...]:
        """``logit_bias`` as (token id, bias) pairs.

        Raises:
            ValueError: a token id outside the model's vocabulary.
        """
        pairs = tuple((int(k), float(v)) for k, v in (self.logit_bias or {}).items())
        bad = [t for t, _ in pairs if t >= vocab_size]
        if bad:
            raise ValueError(f"logit_bias token ids {bad} are outside the model's vocabulary of {vocab_size}")
        return pairs

    def grammar(self) -> str | None:
        """The llguidance grammar of ``response_format``; None for free text."""
        return grammar_for(self.response_format)

    def stop_list(self) -> list[str]:
        """Stop sequences as a list (empty strings dropped)."""
        stops = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        return [s for s in stops if s]

    def requested_tokens(self) -> int | None:
        """The completion token budget the client asked for, if any."""
        return self.max_completion_tokens or self.max_tokens


class ChatMessageOut(BaseModel):
    """The generated assistant message."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ToolCall] | None = None


class TopLogprob(BaseModel):
    """One of the most likely tokens at a position."""

    token: str
    logprob: float
    bytes: list[int] | None


class TokenLogprob(TopLogprob):
    """A generated token's log probability, with the most likely alternatives."""

    top_logprobs: list[TopLogprob]


class ChoiceLogprobs(BaseModel):
    """``choices[].logprobs``."""

    content: list[TokenLogprob] | None
    refusal: list[TokenLogprob] | None = None


FinishReason = Literal["stop", "length", "tool_calls"]


class Choice(BaseModel):
    """One completion choice."""

    index: int
    message: ChatMessageOut
    finish_reason: FinishReason
    logprobs: ChoiceLogprobs | None = None


class Usage(BaseModel):
    """Token counts."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    """A non-streamed response (``chat.completion``)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    system_fingerprint: str | None = None


class DeltaToolCall(BaseModel):
    """A tool call in a stream chunk (sent whole, in the last content chunk of its choice)."""

    index: int
    id: str
    type: Literal["function"] = "function"
    function: ToolCallFunction


class Delta(BaseModel):
    """A stream chunk's delta."""

    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[DeltaToolCall] | None = None


class ChunkChoice(BaseModel):
    """One choice of a stream chunk."""

    index: int
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(BaseModel):
    """One server-sent event of a streamed response (``chat.completion.chunk``)."""

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
