"""Batch tokenized examples without padding everything to max length.

Both collators emit ``shift_labels``: the target of each position (the next token's label), ``-100`` where no
loss is taken. The loss then needs no shifting, and it can be computed only at positions that have a target.

- :class:`PackingCollator` (``packing: true``) packs a batch's examples into rows of at most ``pack_length``
  tokens with ``position_ids`` restarting at 0 per example and no attention mask: transformers detects packed
  sequences from the position ids and builds a block-diagonal causal mask, so examples never attend to each
  other. Rows are padded only to the longest row of the batch.
- :class:`PaddingCollator` (``packing: false``) pads to the longest example of the batch (pair it with a
  length-grouped sampler so batches hold similar lengths).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from tunesmith.models.template import IGNORE_INDEX


def shifted_targets(labels: list[int]) -> list[int]:
    """Targets per position: ``labels[t + 1]``, and ``IGNORE_INDEX`` for the last position."""
    return [*labels[1:], IGNORE_INDEX]


def round_up(n: int, multiple: int) -> int:
    """``n`` rounded up to a multiple of ``multiple``."""
    return -(-n // multiple) * multiple


def pack_rows(lengths: list[int], pack_length: int) -> list[list[int]]:
    """Group example indices into rows of at most ``pack_length`` tokens (first-fit decreasing).

    An example longer than ``pack_length`` gets a row of its own. Deterministic for given lengths.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        n = lengths[i]
        slot = next((r for r, free in enumerate(room) if free >= n), None)
        if slot is None:
            rows.append([i])
            room.append(pack_length - n)
        else:
            rows[slot].append(i)
            room[slot] -= n
    return rows


@dataclass
class PackingCollator:
    """Pack a batch into padding-free rows with per-example position ids (see module docstring)."""

    pad_token_id: int
    pack_length: int = 512
    pad_to_multiple_of: int = 32  # few distinct shapes: kernel caches stay small and warm

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        rows = pack_rows([len(f["input_ids"]) for f in features], self.pack_length)
        width = max(sum(len(features[i]["input_ids"]) for i in row) for row in rows)
        width = round_up(width, self.pad_to_multiple_of)
        ids, pos, tgt = [], [], []
        for row in rows:
            r_ids, r_pos, r_tgt = [], [], []
            for i in row:
                f = features[i]
                r_ids += f["input_ids"]
                r_pos += list(range(len(f["input_ids"])))
                r_tgt += shifted_targets(f["labels"])
            pad = width - len(r_ids)
            ids.append(r_ids + [self.pad_token_id] * pad)
            pos.append(r_pos + list(range(pad)))  # padding is a separate "example": attends only to itself
            tgt.append(r_tgt + [IGNORE_INDEX] * pad)
        return {
            "input_ids": torch.tensor(ids),
            "position_ids": torch.tensor(pos),
            "shift_labels": torch.tensor(tgt),
            "n_real_tokens": torch.tensor(sum(len(f["input_ids"]) for f in features)),
        }


@dataclass
class PaddingCollator:
    """Right-pad a batch to its longest example, with an attention mask."""

    pad_token_id: int
    pad_to_multiple_of: int = 1

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = round_up(max(len(f["input_ids"]) for f in features), self.pad_to_multiple_of)
        ids, mask, tgt = [], [], []
        for f in features:
            n, pad = len(f["input_ids"]), width - len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad_token_id] * pad)
            mask.append([1] * n + [0] * pad)
            tgt.append(shifted_targets(f["labels"]) + [IGNORE_INDEX] * pad)
        return {
            "input_ids": torch.tensor(ids),
            "attention_mask": torch.tensor(mask),
            "shift_labels": torch.tensor(tgt),
            "n_real_tokens": torch.tensor(sum(len(f["input_ids"]) for f in features)),
        }
