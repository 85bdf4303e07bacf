"""Per-example checks on parsed examples (pure functions), and the thresholds they use."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tunesmith.core.records import Problem
from tunesmith.core.schema import ChatExample, Message, PreferenceExample


class DataCheckConfig(BaseModel):
    """Thresholds of the per-example and per-file checks (``data validate``; a data config's ``validation``)."""

    model_config = ConfigDict(extra="forbid")
    min_examples: int = Field(default=10, ge=0, description="Fewer valid examples than this is an error.")
    recommended_examples: int = Field(default=100, ge=0, description="Fewer valid examples is a warning.")
    min_response_chars: int = Field(default=2, ge=0, description="Assistant answers shorter (stripped) warn.")
    max_response_chars: int = Field(default=8000, ge=1, description="Assistant answers longer than this warn.")
    max_length: int | None = Field(
        default=None,
        ge=1,
        description="Token limit per example (default: the model's context window); use your training max_seq_length.",
    )
    batch_size: int = Field(default=256, ge=1, description="Examples per batched tokenizer call.")


def find_errors(example: ChatExample | PreferenceExample) -> list[Problem]:
    """Problems that make an example unusable for training."""
    if isinstance(example, PreferenceExample):
        return _preference_errors(example)
    problems = _empty_content(example.messages, "messages")
    roles = [m.role for m in example.messages]
    if "assistant" not in roles:
        problems.append(
            Problem(
                "no_assistant_message",
                "no assistant message: nothing to train on",
                "messages",
                "add the assistant's answer as the last message",
            )
        )
    elif "user" not in roles[: roles.index("assistant")]:
        i = roles.index("assistant")
        problems.append(
            Problem(
                "assistant_before_user",
                "assistant turn before any user turn",
                f"messages.{i}.role",
                "reorder the messages or drop the example",
            )
        )
    return problems


def _empty_content(messages: list[Message], prefix: str) -> list[Problem]:
    out = []
    for i, m in enumerate(messages):
        if m.tool_calls and not (m.content or "").strip():
            continue
        if m.content is None or not m.content.strip():
            out.append(
                Problem(
                    "empty_content",
                    f"{m.role} message has empty content",
                    f"{prefix}.{i}.content",
                    "write the message text, or drop the message",
                )
            )
    return out


def _preference_errors(example: PreferenceExample) -> list[Problem]:
    problems = _empty_content(example.input.messages, "input.messages")
    if not any(m.role == "user" for m in example.input.messages):
        problems.append(
            Problem(
                "no_user_message",
                "preference input has no user message",
                "input.messages",
                "the input is the prompt: it needs a user message",
            )
        )
    for key in ("preferred_output", "non_preferred_output"):
        msgs = getattr(example, key)
        problems += _empty_content(msgs, key)
        for i, m in enumerate(msgs):
            if m.role != "assistant":
                problems.append(
                    Problem(
                        "non_assistant_output",
                        f"{key} message is {m.role}, not assistant",
                        f"{key}.{i}.role",
                        "outputs must be assistant messages",
                    )
                )
    return problems


def find_warnings(example: ChatExample | PreferenceExample, cfg: DataCheckConfig) -> list[Problem]:
    """Suspicious but trainable things about one example (response length, identical preferences)."""
    if isinstance(example, PreferenceExample):
        answers = [("preferred_output", i, m) for i, m in enumerate(example.preferred_output)]
        out = []
        if [m.content for m in example.preferred_output] == [m.content for m in example.non_preferred_output]:
            out.append(
                Problem(
                    "identical_preference",
                    "preferred and non-preferred outputs are identical",
                    "non_preferred_output",
                    "a DPO pair needs two different answers",
                )
            )
    else:
        answers = [("messages", i, m) for i, m in enumerate(example.messages) if m.role == "assistant"]
        out = []
    for prefix, i, m in answers:
        text = (m.content or "").strip()
        if m.tool_calls:
            continue
        if len(text) < cfg.min_response_chars:
            out.append(
                Problem(
                    "short_response",
                    f"very short assistant response ({len(text)} chars)",
                    f"{prefix}.{i}.content",
                    "check that the answer is complete",
                )
            )
        elif len(text) > cfg.max_response_chars:
            out.append(
                Problem(
                    "long_response",
                    f"very long assistant response ({len(text)} chars)",
                    f"{prefix}.{i}.content",
                    "long answers dominate the loss; check or split it",
                )
            )
    return out


def all_contents(example: ChatExample | PreferenceExample) -> list[tuple[str, str | None]]:
    """``(field, content)`` of every message, for content scans (special tokens)."""
    if isinstance(example, PreferenceExample):
        groups = [
            ("input.messages", example.input.messages),
            ("preferred_output", example.preferred_output),
            ("non_preferred_output", example.non_preferred_output),
        ]
    else:
        groups = [("messages", example.messages)]
    return [(f"{prefix}.{i}.content", m.content) for prefix, msgs in groups for i, m in enumerate(msgs)]
