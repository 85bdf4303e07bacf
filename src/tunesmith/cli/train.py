"""`tunesmith train` and `tunesmith export`: fine-tune from a TrainConfig YAML, merge a run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tunesmith.cli.options import SetOption, console


def train_cmd(
    config: Annotated[Path, typer.Argument(help="TrainConfig YAML (see configs/train/ and docs/training.md).")],
    set_: SetOption = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue from the newest checkpoints/checkpoint-N (same data order, optimizer and scheduler state).",
        ),
    ] = False,
) -> None:
    """Fine-tune a model (LoRA by default) and write a run directory.

    The run directory (output_dir) gets adapter/ (or model/ for method: full), config.yaml, tokenizer/,
    metrics.jsonl (train/valid loss and token accuracy as training goes), checkpoints/ and run.json.
    Works unchanged under `torchrun --nproc_per_node N -m tunesmith train CONFIG` (docs/distributed.md).

    Example: tunesmith train configs/train/lora.yaml --set epochs=2 --set lora.r=8
    """
    from tunesmith.core.config import load_config
    from tunesmith.train.config import TrainConfig
    from tunesmith.train.run import run_training

    cfg = load_config(TrainConfig, config, set_)
    result = run_training(cfg, resume=resume)
    weights = result.adapter_dir or result.model_dir
    console.print(
        f"[green]trained[/] {result.method} on {result.train_examples} examples: {result.steps} steps, "
        f"{result.trained_tokens} trained tokens in {result.seconds:.0f}s -> {weights}"
    )
    for key, value in result.final_metrics.items():
        console.print(f"  {key}: {value:.4f}")


def export_cmd(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `tunesmith train`.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the exported model.")],
    merge: Annotated[
        bool,
        typer.Option("--merge/--no-merge", help="Merge the LoRA adapter into full weights (safetensors + tokenizer)."),
    ] = True,
    prompts: Annotated[
        int,
        typer.Option(
            "--parity-prompts",
            help="Validation prompts for the greedy parity check of merged vs adapter model (0: skip).",
        ),
    ] = 8,
) -> None:
    """Merge a run's adapter into full weights and check greedy outputs match the adapter model.

    Example: tunesmith export runs/train --merge --out runs/train-merged
    """
    from tunesmith.train.export import export_run

    result = export_run(run_dir, out, merge=merge, parity_prompts=prompts)
    console.print(f"[green]exported[/] {result.out_dir}")
    if result.parity_total:
        console.print(f"  parity: {result.parity_matches}/{result.parity_total} greedy outputs identical")
