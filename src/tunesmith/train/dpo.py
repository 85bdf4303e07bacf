"""`method: dpo`: TRL's DPOTrainer on OpenAI preference JSONL, training a LoRA adapter.

The reference model is the base model with the adapter disabled (TRL does this for PEFT models), so no second
copy of the weights is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunesmith.core.schema import PreferenceExample
from tunesmith.data.load import load_examples
from tunesmith.models.load import load_model_and_tokenizer
from tunesmith.train.callbacks import build_callbacks, remove_hf_printers
from tunesmith.train.config import TrainConfig
from tunesmith.train.rundir import DataCounts
from tunesmith.train.setup import base_dtype, build_training_args, lora_config


@dataclass
class DpoMethod:
    """The preference rows and base model of a DPO run, and how to build its trainer."""

    cfg: TrainConfig
    tokenizer: Any
    model: Any
    train_rows: list[dict[str, Any]]
    valid_rows: list[dict[str, Any]] | None

    def build_trainer(self) -> Any:
        """TRL's DPOTrainer with a LoRA adapter on the base model (``dpo.beta``, ``max_seq_length``) and the
        shared callbacks."""
        from datasets import Dataset
        from trl import DPOConfig, DPOTrainer

        cfg = self.cfg
        args = build_training_args(cfg, args_cls=DPOConfig, beta=cfg.dpo.beta, max_length=cfg.max_seq_length)
        trainer = DPOTrainer(
            model=self.model,
            args=args,
            train_dataset=Dataset.from_list(self.train_rows),
            eval_dataset=Dataset.from_list(self.valid_rows) if self.valid_rows else None,
            processing_class=self.tokenizer,
            peft_config=lora_config(cfg),
            callbacks=build_callbacks(cfg, validating=bool(self.valid_rows)),
        )
        remove_hf_printers(trainer)
        return trainer

    def counts(self, trainer: Any) -> DataCounts:
        """Example counts and the per-epoch tokens of TRL's tokenized preference dataset."""
        trained, total = preference_token_counts(trainer.train_dataset)
        return DataCounts(len(self.train_rows), len(self.valid_rows or []), trained, total)


def load_dpo(cfg: TrainConfig) -> DpoMethod:
    """Read the preference files and load the base model and tokenizer (on CPU; the Trainer places it)."""
    train_rows = preference_rows(cfg.train_file)
    valid_rows = preference_rows(cfg.valid_file) if cfg.valid_file else None
    model, tok = load_model_and_tokenizer(cfg.model, dtype=base_dtype(cfg), device="cpu")
    return DpoMethod(cfg, tok, model, train_rows, valid_rows)


def preference_rows(path: Any) -> list[dict[str, Any]]:
    """OpenAI preference records as TRL conversational rows: ``prompt``, ``chosen``, ``rejected``."""
    examples: list[PreferenceExample] = load_examples(path, kind="preference")  # type: ignore[assignment]
    return [
        {
            "prompt": ex.input.for_template(),
            "chosen": [m.model_dump(exclude_none=True, exclude={"weight"}) for m in ex.preferred_output],
            "rejected": [m.model_dump(exclude_none=True, exclude={"weight"}) for m in ex.non_preferred_output],
        }
        for ex in examples
    ]


def preference_token_counts(dataset: Any) -> tuple[int, int]:
    """(answer tokens, all tokens) of TRL's tokenized preference dataset: both answers are trained on, and
    the prompt is processed once with each answer."""
    cols = set(getattr(dataset, "column_names", None) or [])
    if not {"prompt_ids", "chosen_ids", "rejected_ids"} <= cols:  # TRL 1.x column names
        return 0, 0
    answers = sum(len(c) + len(r) for c, r in zip(dataset["chosen_ids"], dataset["rejected_ids"], strict=True))
    return answers, answers + 2 * sum(len(p) for p in dataset["prompt_ids"])
