"""The transformers Trainer, with a loss computed only where there is a target.

``SftTrainer.compute_loss`` asks the model for logits only at positions whose next token is trained
(``logits_to_keep`` as a boolean mask): the vocabulary projection (49152 x 576 for SmolLM2) is ~20% of the
FLOPs, but only a few tokens per chat example are trained. The same gathered logits give the token accuracy
(OpenAI's ``mean_token_accuracy``), summed per token for train and validation.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from transformers import Trainer

from tunesmith.models.template import IGNORE_INDEX


def bucket_positions(trained: torch.Tensor, multiple: int = 32) -> torch.Tensor:
    """``trained`` plus untrained filler positions so the kept count is a multiple of ``multiple``.

    The vocabulary projection then sees few distinct shapes (CPU kernels are built and cached per shape).
    """
    n = int(trained.sum())
    extra = min(-n % multiple, trained.numel() - n)
    if extra == 0:
        return trained
    keep = trained.clone()
    free = (~trained).flatten().nonzero().flatten()[:extra]
    keep.view(-1)[free] = True
    return keep


class SftTrainer(Trainer):
    """Trainer for assistant-only SFT on batches from :mod:`tunesmith.train.collate`."""

    loss_is_scaled_for_ga = True  # compute_loss divides by the tokens of the whole optimizer step

    def __init__(self, *args: Any, max_batch_tokens: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_batch_tokens = max_batch_tokens
        self._sums = {mode: {"loss": 0.0, "correct": 0, "tokens": 0, "real": 0} for mode in ("train", "eval")}

    def _get_num_items_in_batch(self, batch_samples: list, device: Any) -> Any:
        """Trained tokens of the whole optimizer step (every micro-batch; summed over processes).

        The loss is normalised by this count, so gradient accumulation and split batches weight every trained
        token equally. (transformers only counts batches that carry ``labels``; ours carry ``shift_labels``.)
        """
        n = sum(int((b["shift_labels"] != IGNORE_INDEX).sum()) for b in batch_samples)
        count = torch.tensor(n, device=device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:
            count = self.accelerator.gather(count).sum()
        return count

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        """One forward/backward, or several when the padded batch exceeds ``max_batch_tokens``.

        A batch larger than the budget is split into even row chunks run one after another; the loss of each is
        normalised by the whole step's trained tokens (``num_items_in_batch``, always counted by
        :meth:`_get_num_items_in_batch`), so the accumulated gradient equals the unsplit one.
        This caps activation memory at the longest batches (on CPU, a rare long batch otherwise grows the
        allocator's heap for the rest of the run).
        """
        ids = inputs["input_ids"]
        rows, width = ids.shape
        if not self.max_batch_tokens or rows * width <= self.max_batch_tokens or rows == 1:
            return super().training_step(model, inputs, num_items_in_batch)
        chunks = -(-rows * width // self.max_batch_tokens)
        per_chunk = -(-rows // chunks)  # even chunks: 8 rows over budget -> 4 + 4, not 7 + 1
        total = torch.zeros((), device=ids.device)
        for start in range(0, rows, per_chunk):
            part = {
                key: value[start : start + per_chunk]
                for key, value in inputs.items()
                if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == rows
            }
            if start == 0 and "n_real_tokens" in inputs:
                part["n_real_tokens"] = inputs["n_real_tokens"]  # counted once per batch
            total = total + super().training_step(model, part, num_items_in_batch)
        return total

    def compute_loss(
        self, model: Any, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> Any:
        """Cross-entropy over trained positions only, normalised by the step's trained-token count."""
        targets = inputs.pop("shift_labels")  # (batch, seq_len)
        n_real = inputs.pop("n_real_tokens", None)
        trained = targets != IGNORE_INDEX
        keep = bucket_positions(trained)
        outputs = model(**inputs, use_cache=False, logits_to_keep=keep)
        logits = outputs.logits.float()  # (n_kept, vocab)
        gold = targets[keep]  # IGNORE_INDEX at the bucket's filler positions
        loss_sum = F.cross_entropy(logits, gold, ignore_index=IGNORE_INDEX, reduction="sum")
        self._accumulate(model, loss_sum, logits, gold, n_real)
        if num_items_in_batch is None:
            loss = loss_sum / max(int(trained.sum()), 1)
        else:
            loss = loss_sum / num_items_in_batch
            if self.args.average_tokens_across_devices and self.accelerator.num_processes > 1:
                loss = loss * self.accelerator.num_processes  # DDP averages gradients over processes
        return (loss, outputs) if return_outputs else loss

    @torch.no_grad()
    def _accumulate(
        self,
        model: Any,
        loss_sum: torch.Tensor,
        logits: torch.Tensor,
        gold: torch.Tensor,
        n_real: torch.Tensor | None,
    ) -> None:
        sums = self._sums["train" if model.training else "eval"]
        sums["loss"] += float(loss_sum)
        valid = gold != IGNORE_INDEX
        sums["correct"] += int((logits.argmax(-1)[valid] == gold[valid]).sum())
        sums["tokens"] += int(valid.sum())
        sums["real"] += int(n_real) if n_real is not None else 0

    def prediction_step(
        self,
        model: Any,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[Any, None, None]:
        """Validation: only the loss (accuracy is summed in ``compute_loss``)."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self.compute_loss(model, dict(inputs))
        return loss.detach(), None, None

    def take_sums(self, mode: str) -> dict[str, float]:
        """Return and reset the token sums of ``mode`` (``train``/``eval``), summed over processes."""
        sums = self._sums[mode]
        self._sums[mode] = {"loss": 0.0, "correct": 0, "tokens": 0, "real": 0}
        if self.accelerator.num_processes > 1:
            vec = torch.tensor(
                [sums["loss"], sums["correct"], sums["tokens"], sums["real"]],
                dtype=torch.float64,
                device=self.args.device,
            )
            vec = self.accelerator.reduce(vec, reduction="sum")
            sums = dict(zip(("loss", "correct", "tokens", "real"), vec.tolist(), strict=True))
        return sums

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """Add token accuracy (train) and the exact token-weighted validation loss and accuracy."""
        if "eval_loss" in logs:
            sums = self.take_sums("eval")
            if sums["tokens"]:
                logs["eval_loss"] = sums["loss"] / sums["tokens"]
                logs["eval_mean_token_accuracy"] = sums["correct"] / sums["tokens"]
        elif "loss" in logs:
            sums = self.take_sums("train")
            if sums["tokens"]:
                logs["mean_token_accuracy"] = sums["correct"] / sums["tokens"]
            logs["real_tokens"] = sums["real"]
        super().log(logs, start_time)
