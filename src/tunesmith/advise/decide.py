"""The decision framework as code: ``recommend(profile) -> Advice`` with the rules that fired.

Rules (from the fine-tuning guides): start with a prompt; add structured output when the format is strict;
fewer than 100 examples -> few-shot, not fine-tuning; knowledge that changes -> RAG (fine-tuning teaches
behaviour, not facts); fine-tune for behaviour prompting cannot hold (format, style, terminology) when there
are enough examples; high volume with long prompts -> fine-tune a smaller model to cut cost and latency;
a strong model that is too expensive -> distil it into a small one; preference pairs -> DPO after SFT.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from tunesmith.advise.profile import TaskProfile

Approach = Literal["PROMPT", "STRUCTURED OUTPUT + PROMPT", "FEW-SHOT", "RAG", "FINE-TUNE"]
MIN_FINETUNE_EXAMPLES = 100
HIGH_VOLUME = 10_000
LONG_PROMPT = 1_000
TIGHT_LATENCY_MS = 500


class Advice(BaseModel):
    """The recommendation, why, and what to try first."""

    approach: Approach
    method: Literal["SFT", "DPO", "SFT (distillation)"] | None = Field(default=None, description="For FINE-TUNE.")
    also: list[Approach] = Field(default_factory=list, description="Approaches to combine with the main one.")
    reasons: list[str] = Field(description="The rules that fired, in order.")
    try_first: list[str] = Field(description="Concrete next steps.")


def _signals(p: TaskProfile) -> tuple[list[str], list[str]]:
    """(reasons to fine-tune, reasons against)."""
    pro, con = [], []
    if p.strict_output_format:
        pro.append("a strict output format must hold on every answer")
    if p.domain_terminology:
        pro.append("domain terminology the base model gets wrong")
    if p.consistent_style:
        pro.append("a consistent style that prompting alone does not keep")
    if not p.describable_in_prompt:
        pro.append("the task cannot be fully described in a prompt: it has to be shown by examples")
    if p.queries_per_day >= HIGH_VOLUME and p.prompt_tokens >= LONG_PROMPT:
        pro.append(
            f"high volume ({p.queries_per_day:,.0f}/day) with long prompts ({p.prompt_tokens} tokens): "
            "a fine-tuned smaller model with a short prompt cuts cost"
        )
    if p.latency_budget_ms is not None and p.latency_budget_ms < TIGHT_LATENCY_MS and p.prompt_tokens >= LONG_PROMPT:
        pro.append(f"a {p.latency_budget_ms:.0f} ms latency budget with {p.prompt_tokens}-token prompts")
    if p.strong_model_too_expensive:
        pro.append("a strong model does the task but is too expensive: distil it into a small one")
    if p.n_examples < MIN_FINETUNE_EXAMPLES:
        con.append(f"only {p.n_examples} examples (< {MIN_FINETUNE_EXAMPLES}): too few to fine-tune reliably")
    return pro, con


def recommend(p: TaskProfile) -> Advice:
    """Apply the guides' rules to a task profile.

    Args:
        p: the task profile.

    Returns:
        The approach, the fine-tuning method if any, the reasons that fired and what to try first.
    """
    pro, con = _signals(p)
    also: list[Approach] = ["RAG"] if p.changing_knowledge else []
    rag_reason = ["knowledge that changes belongs in retrieval (RAG): fine-tuning teaches behaviour, not facts"]
    if p.changing_knowledge and not pro:
        return Advice(
            approach="RAG",
            reasons=rag_reason,
            try_first=[
                "index the documents and retrieve the top passages into the prompt",
                "measure answer quality on 50 real questions before considering fine-tuning",
            ],
        )
    if pro and not con:
        method = "DPO" if p.has_preference_data else ("SFT (distillation)" if p.strong_model_too_expensive else "SFT")
        reasons = pro + (rag_reason if p.changing_knowledge else [])
        if p.has_preference_data:
            reasons.append("preference pairs available: SFT first, then DPO on the chosen/rejected pairs")
        return Advice(
            approach="FINE-TUNE",
            method=method,
            also=[a for a in also if a != "FINE-TUNE"],
            reasons=reasons,
            try_first=_finetune_steps(p, method),
        )
    reasons = con + [f"(would favour fine-tuning later: {r})" for r in pro]
    if p.n_examples >= 3 and (pro or not p.describable_in_prompt):
        return Advice(
            approach="FEW-SHOT",
            also=also,
            reasons=reasons + (rag_reason if also else []),
            try_first=[
                "put 3-8 of your examples in the prompt as prior user/assistant turns",
                f"collect examples until you have >= {MIN_FINETUNE_EXAMPLES}, then compare with "
                "`tunesmith compare --candidate few-shot:k=6 --candidate run:RUN`",
            ],
        )
    if p.strict_output_format:
        return Advice(
            approach="STRUCTURED OUTPUT + PROMPT",
            also=also,
            reasons=["a strict output format: use the API's structured output / JSON schema mode", *reasons],
            try_first=[
                "write the instructions and a JSON schema",
                "validate every answer against the schema",
            ],
        )
    return Advice(
        approach="PROMPT",
        also=also,
        reasons=["start with the simplest thing: a clear prompt", *reasons, *(rag_reason if also else [])],
        try_first=[
            "write the instructions with one or two examples",
            "build a 50-example test set and measure before anything else",
        ],
    )


def _finetune_steps(p: TaskProfile, method: str) -> list[str]:
    steps = ["build a held-out test set first and measure zero-shot and few-shot baselines (`tunesmith compare`)"]
    if method == "SFT (distillation)":
        steps.append("generate training answers with the strong model (`tunesmith data distill`)")
    steps.append("train a LoRA adapter on a small model (`tunesmith train configs/train/lora.yaml`)")
    if method == "DPO":
        steps.append("then train DPO on the preference pairs (method: dpo)")
    steps.append("gate the result in CI: `tunesmith gate runs/eval/report.json --min-gain 0.05`")
    return steps
