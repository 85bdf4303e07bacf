"""`method: dpo`: TRL's DPOTrainer on OpenAI preference JSONL, training a LoRA adapter.

The reference model is the base model with the adapter disabled (TRL does this for PEFT models), so no second
copy of the weights is loaded.
"""

from __future__ import annotations

import time
from typing import Any

from tunesmith.data.load import load_examples
from tunesmith.data.schema import PreferenceExample
from tunesmith.train.config import TrainConfig


def preference_rows(path: Any) -> list[dict[str, Any]]:
    """OpenAI preference records as TRL conversational rows: ``prompt``, ``chosen``, ``rejected``."""
    examples: list[PreferenceExample] = load_examples(path, kind="preference")  # type: ignore[assignment]
    return [
        {
            "prompt": ex.input.for_template(),
            "chosen": [m.model_dump(exclude_none=True, exclude={"weight"}) for m in ex.preferred_output],
            "rejected": [
                m.model_dump(exclude_none=True, exclude={"weight"}) for m in ex.non_preferred_output
            ],
        }
        for ex in examples
    ]


def run_dpo(cfg: TrainConfig, resume: bool) -> Any:
    """Train a LoRA adapter with DPO and write the same run directory as SFT methods."""
    from datasets import Dataset
    from transformers.trainer_callback import PrinterCallback
    from transformers.trainer_callback import ProgressCallback as HfProgress
    from trl import DPOConfig, DPOTrainer

    from tunesmith.models.load import load_model_and_tokenizer
    from tunesmith.train.callbacks import build_callbacks
    from tunesmith.train.run import log_choices, prepare_output_dir, save_final_weights, summarize_run
    from tunesmith.train.setup import base_dtype, build_training_args, find_last_checkpoint, lora_config

    start = time.perf_counter()
    train_rows = preference_rows(cfg.train_file)
    valid_rows = preference_rows(cfg.valid_file) if cfg.valid_file else None
    model, tok = load_model_and_tokenizer(cfg.model, dtype=base_dtype(cfg), device="cpu")
    prepare_output_dir(cfg, tok, resume)
    args = build_training_args(cfg, args_cls=DPOConfig, beta=cfg.dpo.beta, max_length=cfg.max_seq_length)
    callbacks = build_callbacks(cfg, validating=bool(valid_rows))
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(valid_rows) if valid_rows else None,
        processing_class=tok,
        peft_config=lora_config(cfg),
        callbacks=callbacks,
    )
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(HfProgress)
    log_choices(cfg, model)
    trainer.train(resume_from_checkpoint=str(find_last_checkpoint(cfg)) if resume else None)
    summary = summarize_run(
        cfg, trainer, start, (len(train_rows), len(valid_rows or [])),
        preference_token_counts(trainer.train_dataset),
    )
    save_final_weights(cfg, trainer, summary)
    return summary


def preference_token_counts(dataset: Any) -> tuple[int, int]:
    """(answer tokens, all tokens) of TRL's tokenized preference dataset: both answers are trained on, and
    the prompt is processed once with each answer."""
    cols = set(getattr(dataset, "column_names", None) or [])
    if not {"prompt_ids", "chosen_ids", "rejected_ids"} <= cols:  # TRL 1.x column names
        return 0, 0
    answers = sum(len(c) + len(r) for c, r in zip(dataset["chosen_ids"], dataset["rejected_ids"], strict=True))
    return answers, answers + 2 * sum(len(p) for p in dataset["prompt_ids"])
