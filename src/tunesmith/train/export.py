"""`tunesmith export`: merge a run's LoRA adapter into full weights and check greedy parity."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunesmith.core.atomic import atomic_dir
from tunesmith.core.config import load_config
from tunesmith.core.errors import TrainError
from tunesmith.data.load import load_examples
from tunesmith.models.generate import generate_ids
from tunesmith.models.load import load_model_and_tokenizer
from tunesmith.models.template import prompt_ids
from tunesmith.train.config import TrainConfig


@dataclass
class ExportResult:
    """Where the export went and how many greedy outputs matched the adapter model's."""

    out_dir: Path
    parity_matches: int
    parity_total: int
    mismatched_prompts: list[str]


def export_run(
    run_dir: str | Path,
    out: str | Path,
    merge: bool = True,
    parity_prompts: int = 8,
    max_new_tokens: int = 32,
) -> ExportResult:
    """Export ``run_dir``'s weights to ``out`` (merged full model + tokenizer), then check parity.

    Args:
        run_dir: a run directory written by `tunesmith train`.
        out: target directory (replaced atomically).
        merge: merge the adapter into the base weights; without it the adapter and tokenizer are copied.
        parity_prompts: how many validation (or training) prompts to compare greedily; 0 skips the check.
        max_new_tokens: generation length of the parity check.

    Raises:
        TrainError: ``run_dir`` is not a finished run.
    """
    run_dir, out = Path(run_dir), Path(out)
    if not (run_dir / "run.json").exists() or not (run_dir / "config.yaml").exists():
        raise TrainError(
            f"{run_dir} is not a finished training run (no run.json / config.yaml)",
            "pass the output_dir of a `tunesmith train` run that succeeded",
            param="run_dir",
        )
    cfg = load_config(TrainConfig, run_dir / "config.yaml")
    if cfg.method == "full" or not merge:
        src = run_dir / ("model" if cfg.method == "full" else "adapter")
        with atomic_dir(out) as tmp:
            shutil.copytree(src, tmp, dirs_exist_ok=True)
            shutil.copytree(run_dir / "tokenizer", tmp, dirs_exist_ok=True)
        return ExportResult(out, 0, 0, [])
    return merge_and_check(cfg, run_dir, out, parity_prompts, max_new_tokens)


def merge_and_check(cfg: Any, run_dir: Path, out: Path, n_prompts: int, max_new_tokens: int) -> ExportResult:
    """Merge the adapter, save it, reload the saved model and compare greedy outputs on ``n_prompts``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(run_dir / "tokenizer")
    model, _ = load_model_and_tokenizer(cfg.model, adapter=run_dir / "adapter", device="cpu")
    prompts = parity_prompt_ids(cfg, tok, n_prompts)
    expected = [greedy(model, tok, ids, max_new_tokens) for ids in prompts]
    merged = model.merge_and_unload()
    with atomic_dir(out) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
    reloaded = AutoModelForCausalLM.from_pretrained(out)
    got = [greedy(reloaded, tok, ids, max_new_tokens) for ids in prompts]
    bad = [tok.decode(p) for p, a, b in zip(prompts, expected, got, strict=True) if a != b]
    return ExportResult(out, len(prompts) - len(bad), len(prompts), bad)


def parity_prompt_ids(cfg: Any, tok: Any, n: int) -> list[list[int]]:
    """Token ids of the first ``n`` prompts (the conversation before its last assistant turn)."""
    if n <= 0:
        return []
    examples = load_examples(cfg.valid_file or cfg.train_file, kind="chat")[:n]
    out = []
    for ex in examples:
        msgs = ex.for_template()
        last = max((i for i, m in enumerate(msgs) if m["role"] == "assistant"), default=len(msgs))
        out.append(prompt_ids(tok, msgs[:last], tools=ex.tools))
    return out


def greedy(model: Any, tok: Any, ids: list[int], max_new_tokens: int) -> list[int]:
    """Greedy continuation token ids of one prompt."""
    model.eval()
    return generate_ids(model, tok, [ids], max_new_tokens)[0]
