"""Supervised fine-tuning (``method``: lora, qlora, full): chat data tokenized once with assistant-only labels,
the base model (with its LoRA adapter unless full) and the :class:`SftTrainer` with tunesmith's collators."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tunesmith.models.load import load_tokenizer
from tunesmith.train.callbacks import build_callbacks, remove_hf_printers
from tunesmith.train.collate import PackingCollator, PaddingCollator
from tunesmith.train.config import TrainConfig
from tunesmith.train.data import TokenizedSet, tokenize_file
from tunesmith.train.rundir import DataCounts
from tunesmith.train.setup import build_model, build_training_args, use_packing
from tunesmith.train.trainer import SftTrainer


@dataclass
class SftMethod:
    """The tokenized training (and validation) data of an SFT run, and how to build its trainer."""

    cfg: TrainConfig
    tokenizer: Any
    train: TokenizedSet
    valid: TokenizedSet | None

    def build_trainer(self) -> SftTrainer:
        """The model (attention kernel chosen for the longest row) and the SftTrainer over packed rows or
        length-grouped padded batches, with the shared callbacks."""
        cfg, tok = self.cfg, self.tokenizer
        examples = self.train.examples + (self.valid.examples if self.valid else [])
        model = build_model(cfg, max(e.n_tokens for e in examples))
        collator = (
            PackingCollator(tok.pad_token_id, cfg.pack_length, cfg.pad_to_multiple_of)
            if use_packing(cfg)
            else PaddingCollator(tok.pad_token_id, cfg.pad_to_multiple_of)
        )
        trainer = SftTrainer(
            model=model,
            args=build_training_args(cfg),
            train_dataset=training_rows(self.train),
            eval_dataset=training_rows(self.valid) if self.valid else None,
            data_collator=collator,
            callbacks=build_callbacks(cfg, validating=self.valid is not None),
            max_batch_tokens=cfg.max_batch_tokens,
        )
        remove_hf_printers(trainer)
        return trainer

    def counts(self, trainer: Any) -> DataCounts:
        """Example and per-epoch token counts for run.json."""
        return DataCounts(
            train_examples=len(self.train.examples),
            valid_examples=len(self.valid.examples) if self.valid else 0,
            trained_tokens=self.train.trained_tokens,
            total_tokens=self.train.total_tokens,
            truncated_examples=self.train.truncated,
        )


def load_sft(cfg: TrainConfig) -> SftMethod:
    """Load the tokenizer and tokenize ``train_file`` (and ``valid_file``) once.

    Raises:
        DatasetError: unreadable data. TrainError: examples without a trainable token.
    """
    tok = load_tokenizer(cfg.model)
    train = tokenize_file(tok, cfg.train_file, cfg.max_seq_length)
    valid = tokenize_file(tok, cfg.valid_file, cfg.max_seq_length) if cfg.valid_file else None
    return SftMethod(cfg, tok, train, valid)


def training_rows(data: TokenizedSet) -> list[dict[str, list[int]]]:
    """The Trainer's dataset rows: ``input_ids`` and ``labels`` of each example."""
    return [{"input_ids": e.input_ids, "labels": e.labels} for e in data.examples]
