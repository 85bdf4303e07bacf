"""EvalConfig: test set, candidates, metrics, judge; validated before any model loads.

Candidates also have a one-line form for `tunesmith compare --candidate SPEC`::

    KIND[:VALUE][,key=value...]
    zero-shot                         base model, the dataset's own system prompt
    zero-shot:model=path/to/hf-dir    another local base model
    few-shot:k=6                      k training examples as prior turns (selection=fixed|nearest)
    few-shot:k=4,selection=nearest    the k most similar training examples (MiniLM embeddings)
    system:prompt=Answer in JSON.     base model with your own system prompt (or prompt_file=FILE)
    structured                        zero-shot with answers constrained to a JSON Schema inferred from the
                                      training answers (or json_schema=FILE)
    rag:docs=PATH,k=3                 retrieved passages from a folder or JSONL of documents in the question
                                      (chunk_size=, chunk_overlap=, method=bm25|embeddings|hybrid)
    run:runs/x                        a fine-tuned run directory (adapter/ or model/)
    endpoint:model=gpt-4o-mini,base_url=https://api.openai.com/v1,api_key_env=OPENAI_API_KEY
    any of them: name=LABEL, price_model=KEY (row of the price table used for cost), json_schema=infer|FILE
    (structured output on top: e.g. run:runs/x,json_schema=infer is the fine-tune + structured rung)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tunesmith.core.config import apply_override, format_validation_errors, validate_config
from tunesmith.core.errors import ConfigError
from tunesmith.evaluate.metrics import ALL_METRICS
from tunesmith.evaluate.retrieval import RagSettings
from tunesmith.models.bundled import BUNDLED_NAME

CandidateKind = Literal["zero-shot", "few-shot", "system", "structured", "rag", "run", "endpoint"]
_VALUE_KEY = {
    "run": "path",
    "endpoint": "model",
    "system": "prompt",
    "zero-shot": "model",
    "few-shot": "k",
    "structured": "json_schema",
    "rag": "docs",
}
_RAG_KEYS = ("docs", "chunk_size", "chunk_overlap", "method", "template")


class CandidateSpec(BaseModel):
    """One candidate: a model plus a prompting strategy."""

    model_config = ConfigDict(extra="forbid")
    kind: CandidateKind = Field(
        description="zero-shot | few-shot | system | structured | rag | run | endpoint (the decision ladder's rungs)."
    )
    name: str | None = Field(default=None, description="Label in the report (default: derived from the spec).")
    model: str = Field(default=BUNDLED_NAME, description="Base model (local) or the endpoint's model name.")
    k: int = Field(default=4, ge=1, le=64, description="few-shot: number of training examples shown.")
    selection: Literal["fixed", "nearest"] = Field(
        default="fixed",
        description="few-shot: `fixed` (seeded random, same for every query) or `nearest` "
        "(most similar training inputs by MiniLM embedding).",
    )
    prompt: str | None = Field(default=None, description="system: the system prompt text.")
    prompt_file: Path | None = Field(default=None, description="system: read the system prompt from this file.")
    path: Path | None = Field(default=None, description="run: the training run directory.")
    base_url: str | None = Field(default=None, description="endpoint: OpenAI-compatible base URL (…/v1).")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="endpoint: env var holding the API key.")
    price_model: str | None = Field(default=None, description="Price-table key for cost (default: the model).")
    json_schema: str | None = Field(
        default=None,
        description="Structured output: `infer` (from the training answers) or a JSON Schema file; answers are "
        "constrained to it (default `infer` for `structured`, none for the other kinds).",
    )
    rag: RagSettings | None = Field(default=None, description="rag: documents, chunking, k and prompt template.")

    @model_validator(mode="after")
    def _check_kind_fields(self) -> CandidateSpec:
        if self.kind == "structured" and self.json_schema is None:
            self.json_schema = "infer"
        if self.kind == "rag" and self.rag is None:
            raise ValueError("a `rag` candidate needs `rag: {docs: PATH}` (a folder or JSONL of documents)")
        if self.kind != "rag" and self.rag is not None:
            raise ValueError(f"`rag` settings belong to a `rag` candidate, not `{self.kind}`")
        if self.kind == "run" and self.path is None:
            raise ValueError("a `run` candidate needs `path` (the training run directory)")
        if self.kind == "endpoint" and self.base_url is None:
            raise ValueError("an `endpoint` candidate needs `base_url`")
        if self.kind == "system" and not (self.prompt or self.prompt_file):
            raise ValueError("a `system` candidate needs `prompt` or `prompt_file`")
        return self

    @property
    def label(self) -> str:
        """The name shown in reports."""
        if self.name:
            return self.name
        base = {
            "few-shot": f"few-shot-k{self.k}" + ("-nearest" if self.selection == "nearest" else ""),
            "run": f"run:{self.path.name if self.path else ''}",
            "endpoint": f"endpoint:{self.model}",
        }.get(self.kind, self.kind)
        return base + ("+structured" if self.json_schema and self.kind != "structured" else "")

    @property
    def is_finetuned(self) -> bool:
        """Whether this candidate is a fine-tuned run (compared against the best baseline)."""
        return self.kind == "run"


class JudgeSettings(BaseModel):
    """LLM-as-judge through an OpenAI-compatible endpoint."""

    model_config = ConfigDict(extra="forbid")
    base_url: str = Field(description="OpenAI-compatible base URL of the judge (…/v1).")
    model: str = Field(description="The judge model name.")
    api_key_env: str = Field(default="OPENAI_API_KEY", description="Env var holding the judge's API key.")
    mode: Literal["pointwise", "pairwise", "both"] = Field(
        default="pointwise",
        description="pointwise 0-10 scores, pairwise A/B (fine-tuned vs best baseline), or both.",
    )
    rubric: str = Field(
        default="Correct, complete, follows the requested format, no invented facts.",
        description="What the judge grades against.",
    )
    max_examples: int | None = Field(default=None, ge=1, description="Judge only the first N examples.")
    max_tokens: int = Field(default=256, ge=8, description="Token limit of the judge's reply.")


class EvalConfig(BaseModel):
    """Everything `tunesmith eval` needs. YAML keys are these field names; `--set a.b=v` overrides them."""

    model_config = ConfigDict(extra="forbid")
    test_file: Path = Field(
        description="Held-out test set (OpenAI chat JSONL); the last assistant turn is the reference answer."
    )
    train_file: Path | None = Field(default=None, description="Training split: few-shot examples come from here.")
    candidates: list[CandidateSpec] = Field(min_length=1, description="What to compare (see docs/evaluation.md).")
    output_dir: Path = Field(
        default=Path("runs/eval"), description="Where report.json, report.html and the generation cache go."
    )
    metrics: list[str] | Literal["auto"] = Field(
        default="auto", description=f"`auto` (chosen from the data) or a list of: {', '.join(ALL_METRICS)}."
    )
    max_new_tokens: int = Field(default=64, ge=1, description="Generation length limit.")
    batch_size: int = Field(default=8, ge=1, description="Local generation batch size (left-padded).")
    concurrency: int = Field(
        default=8, ge=1, le=256, description="Requests in flight at once to endpoint candidates and the judge."
    )
    temperature: float = Field(default=0.0, ge=0, description="0 = greedy decoding.")
    limit: int | None = Field(default=None, ge=1, description="Evaluate only the first N test examples.")
    seed: int = Field(default=0, description="Seed for few-shot selection and the bootstrap.")
    bootstrap_samples: int = Field(default=1000, ge=100, description="Bootstrap resamples for the 95% intervals.")
    worst_k: int = Field(default=5, ge=0, description="Worst examples listed per candidate.")
    regression_suite: Path | None = Field(
        default=None,
        description="General prompts with contains / not_contains "
        "/ regex expectations, run on every candidate to catch forgetting.",
    )
    judge: JudgeSettings | None = Field(default=None, description="Optional LLM-as-judge.")
    prices: Path | None = Field(default=None, description="Price table YAML (default: the shipped one).")
    device: str | None = Field(default=None, description="cpu / cuda (default: CUDA when available).")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        default="auto",
        description="Local candidates' weights; auto: bfloat16 where it is native (CUDA with bf16, a CPU with "
        "AVX512-BF16 or AMX), else float32; the same rule as `serve`'s inference_dtype, so a deployed recipe "
        "answers in the precision it was measured in.",
    )

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str] | str) -> list[str] | str:
        bad = [m for m in value if m not in ALL_METRICS] if isinstance(value, list) else []
        if bad:
            raise ValueError(f"unknown metric(s) {bad}; choose from {list(ALL_METRICS)}")
        return value

    @model_validator(mode="after")
    def _check(self) -> EvalConfig:
        if any(c.kind == "few-shot" for c in self.candidates) and self.train_file is None:
            raise ValueError("few-shot candidates need `train_file` (the examples are drawn from it)")
        if any(c.json_schema == "infer" for c in self.candidates) and self.train_file is None:
            raise ValueError("`json_schema: infer` needs `train_file` (the schema is inferred from its answers)")
        labels = [c.label for c in self.candidates]
        if len(set(labels)) != len(labels):
            raise ValueError(f"candidate names must be unique, got {labels}; set `name:` on the duplicates")
        return self


def parse_candidate(text: str) -> CandidateSpec:
    """Parse ``KIND[:VALUE][,key=value...]`` (see the module docstring) into a CandidateSpec.

    Raises:
        ConfigError: unknown kind, malformed pair, or invalid fields.
    """
    kind, _, rest = text.strip().partition(":")
    if kind not in _VALUE_KEY:
        raise ConfigError(
            f"--candidate {text!r}: unknown kind {kind!r}",
            f"start with one of {', '.join(_VALUE_KEY)} (e.g. few-shot:k=6, run:runs/x)",
        )
    fields: dict[str, object] = {"kind": kind}
    for i, part in enumerate(p for p in rest.split(",") if p.strip()):
        key, sep, value = part.partition("=")
        if not sep:
            if i > 0:
                raise ConfigError(f"--candidate {text!r}: {part!r} is not key=value", "separate pairs with commas")
            key, value = _VALUE_KEY[kind], part
        key = key.strip()
        if kind == "rag" and key in (*_RAG_KEYS, "k"):
            rag = fields.setdefault("rag", {})
            assert isinstance(rag, dict)
            rag[key] = yaml.safe_load(value) if key in ("k", "chunk_size", "chunk_overlap") else value.strip()
            continue
        fields[key] = yaml.safe_load(value) if key in ("k",) else value.strip()
    try:
        return CandidateSpec.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError(
            f"--candidate {text!r}:\n" + format_validation_errors(exc),
            "see `tunesmith compare --help` for the candidate syntax",
        ) from exc


def build_compare_config(
    test: Path, candidates: list[str], train: Path | None, out: Path, overrides: list[str] | None = None
) -> EvalConfig:
    """The EvalConfig of `tunesmith compare`: candidate specs from the command line plus ``--set`` overrides.

    Raises:
        ConfigError: a bad candidate spec or override, or every validation error at once.
    """
    data: dict[str, object] = {
        "test_file": str(test),
        "output_dir": str(out),
        "candidates": [parse_candidate(c).model_dump(exclude_none=True, mode="json") for c in candidates],
    }
    if train is not None:
        data["train_file"] = str(train)
    for item in overrides or []:
        apply_override(data, item)
    return validate_config(EvalConfig, data, "tunesmith compare", "fix the flags or --set keys listed above")
