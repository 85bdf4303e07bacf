"""TaskProfile: what the decision framework needs to know about a task (YAML or interactive answers)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TaskProfile(BaseModel):
    """A task described by the questions the fine-tuning guides ask before anyone trains anything."""

    model_config = ConfigDict(extra="forbid")
    describable_in_prompt: bool = Field(
        default=True,
        description="Can the task be fully described in a prompt (instructions a careful person could follow)?",
    )
    strict_output_format: bool = Field(
        default=False, description="Must every answer follow a strict format (JSON schema, fixed labels)?"
    )
    domain_terminology: bool = Field(default=False, description="Does it use jargon the base model gets wrong?")
    consistent_style: bool = Field(
        default=False, description="Must answers keep a specific voice or style that prompting does not hold?"
    )
    changing_knowledge: bool = Field(
        default=False,
        description="Does it depend on facts that change (prices, docs, tickets) or on private documents?",
    )
    n_examples: int = Field(default=0, ge=0, description="Labelled input/output examples you have.")
    has_preference_data: bool = Field(default=False, description="Do you have chosen/rejected answer pairs?")
    queries_per_day: float = Field(default=1000, ge=0, description="Expected traffic.")
    latency_budget_ms: float | None = Field(default=None, gt=0, description="Per-query latency budget.")
    prompt_tokens: int = Field(
        default=500,
        ge=0,
        description="Tokens in the prompt you would need (instructions, examples, context).",
    )
    strong_model_too_expensive: bool = Field(
        default=False,
        description="Does a strong (large) model do the task well but cost too much at your volume?",
    )


def ask_profile() -> TaskProfile:
    """Ask each TaskProfile question on the terminal (its description is the question)."""
    from rich.prompt import Confirm, FloatPrompt, IntPrompt

    answers: dict[str, object] = {}
    for name, field in TaskProfile.model_fields.items():
        question, default = field.description or name, field.default
        if field.annotation is bool:
            answers[name] = Confirm.ask(question, default=default)
        elif field.annotation is int:
            answers[name] = IntPrompt.ask(question, default=default)
        else:
            value = FloatPrompt.ask(question + " (0 = none)", default=default or 0.0)
            answers[name] = value if value or name != "latency_budget_ms" else None
    return TaskProfile.model_validate(answers)
