"""Claim: the generation engine answers the demo's ladders (every rung's held-out prompts) at least 2x faster
than static batched `generate`, with the same greedy answers.

Builds the exact prompts `make demo` sends (both tasks, every rung: prompt, structured, few-shot, RAG, and the
fine-tunes when `runs/demo/<task>/train` exists), then answers each rung twice, side by side in one process on
one model per rung:
  static  transformers `generate` on left-padded batches of `--batch-size` prompts, each batch run until its
          longest answer (what tunesmith's evaluation did before the engine, and the guides' batched way);
          structured rungs decode token by token under the same llguidance grammar;
  engine  tunesmith's LocalGenerator (what `eval`/`decide` run now): continuous batching, prefix reuse, and
          greedy structured output over a few allowed documents ranked instead of decoded.
It prints seconds per rung and side, answers per second, how many answers are identical, and the ratio.
Answers of unconstrained rungs must be identical; on structured rungs the engine ranks the allowed documents
(docs/generation.md), so their answers differ by design and are counted, not required equal.

usage: python bench/demo_generation.py [--limit N] [--batch-size 32] [--runs runs/demo] [--tasks sentiment,knowledge]
                                      [--rungs prompt,few-shot]
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

from serve_throughput import cpu_facts  # bench/ is on sys.path when run as a script
from tunesmith.cli.demo import DemoConfig, decide_config
from tunesmith.evaluate.generate import LocalGenerator
from tunesmith.evaluate.items import load_items
from tunesmith.evaluate.recipe import RecipePrompter
from tunesmith.evaluate.run import candidate_recipe, grammar_of
from tunesmith.ladder.run import cheap_rungs, eval_config, finetune_rungs, structured_setting
from tunesmith.models.generate import end_token_ids, generate_rows, split_at_end
from tunesmith.models.runs import load_for_inference, resolve_run
from tunesmith.models.template import prompt_ids

REPO = Path(__file__).resolve().parent.parent


def rungs_of(task: str, runs: Path, limit: int | None, batch_size: int) -> tuple[list, object, list]:
    """The demo's rungs for ``task`` (fine-tunes only where the demo trained them), its eval config and items."""
    dcfg = decide_config(DemoConfig(eval_limit=limit, batch_size=batch_size), task)
    train = load_items(dcfg.train_file)
    schema, _ = structured_setting(dcfg, train)
    rungs = cheap_rungs(dcfg, schema)
    run_dir = runs / task / "train"
    if (run_dir / "run.json").exists():
        rungs += finetune_rungs(run_dir, schema)
    else:
        print(json.dumps({"task": task, "skipped": f"fine-tune rungs: no {run_dir} (run `make demo` first)"}))
    ecfg = eval_config(dcfg, dcfg.train_file, dcfg.test_file, rungs).model_copy(
        update={"output_dir": Path("/tmp/tunesmith-bench-demo-generation")}
    )
    return rungs, ecfg, train


def static_answers(model, tok, prompts: list[list[int]], max_new: int, grammar: str | None, batch: int) -> list[str]:
    """Left-padded `generate` batches, each run to its longest answer."""
    ends = end_token_ids(model, tok)
    out = []
    for start in range(0, len(prompts), batch):
        rows = generate_rows(model, tok, prompts[start : start + batch], max_new, grammar=grammar).rows
        out += [tok.decode(split_at_end(r, ends)[0], skip_special_tokens=True).strip() for r in rows]
    return out


def engine_answers(model, tok, messages: list, max_new: int, grammar: str | None, batch: int) -> list[str]:
    """The evaluation's own path: one LocalGenerator per rung (prefix cache across its batches)."""
    gen = LocalGenerator(model, tok, max_new, grammar=grammar)
    out = []
    for start in range(0, len(messages), batch):
        out += [row["output"] for row in gen(messages[start : start + batch])]
    return out


def measure_rung(spec, ecfg, train, items) -> dict:
    recipe = candidate_recipe(ecfg, spec, train)
    messages = RecipePrompter(recipe, shots=train).prepare([it.messages for it in items])
    run = resolve_run(spec.path) if spec.kind == "run" else None
    model, tok = load_for_inference(run.model if run else spec.model, run.adapter if run else None, "cpu")
    ids = [prompt_ids(tok, m) for m in messages]
    grammar = grammar_of(recipe.response_format)
    max_new, batch = ecfg.max_new_tokens, ecfg.batch_size
    static_answers(model, tok, ids[:2], 2, grammar, batch)  # warm-up, untimed: neither side pays first calls
    engine_answers(model, tok, messages[:2], 2, grammar, batch)
    t0 = time.perf_counter()
    static = static_answers(model, tok, ids, max_new, grammar, batch)
    t1 = time.perf_counter()
    engine = engine_answers(model, tok, messages, max_new, grammar, batch)
    t2 = time.perf_counter()
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    del model
    gc.collect()
    same = sum(a == b for a, b in zip(static, engine, strict=True))
    return {
        "rung": spec.label,
        "prompts": len(ids),
        "mean_prompt_tokens": round(sum(map(len, ids)) / len(ids), 1),
        "structured": grammar is not None,
        "dtype": dtype,
        "static_s": round(t1 - t0, 2),
        "engine_s": round(t2 - t1, 2),
        "engine_vs_static": round((t1 - t0) / (t2 - t1), 2),
        "identical_answers": same,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="first N test examples per task (default: all)")
    ap.add_argument("--batch-size", type=int, default=DemoConfig().batch_size, help="the demo's (32)")
    ap.add_argument("--runs", type=Path, default=REPO / "runs" / "demo", help="where `make demo` trained")
    ap.add_argument("--tasks", default="sentiment,knowledge")
    ap.add_argument("--rungs", default=None, help="only these rungs, e.g. prompt,few-shot (default: all)")
    args = ap.parse_args()
    import torch

    print(json.dumps({"machine": cpu_facts(), "torch_threads": torch.get_num_threads(), "batch": args.batch_size}))
    rows = []
    for task in args.tasks.split(","):
        rungs, ecfg, train = rungs_of(task, args.runs, args.limit, args.batch_size)
        items = load_items(ecfg.test_file, ecfg.limit)
        for spec in rungs:
            if args.rungs and spec.label not in args.rungs.split(","):
                continue
            row = {"task": task, **measure_rung(spec, ecfg, train, items)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    if not rows:
        raise SystemExit(f"no rung measured: --rungs {args.rungs!r} names none of this task's rungs")
    for label, chosen in (("all rungs", rows), ("unconstrained rungs", [r for r in rows if not r["structured"]])):
        if not chosen:
            continue
        static, engine = sum(r["static_s"] for r in chosen), sum(r["engine_s"] for r in chosen)
        same = sum(r["identical_answers"] for r in chosen)
        total = sum(r["prompts"] for r in chosen)
        print(
            json.dumps(
                {
                    "total": label,
                    "static_s": round(static, 1),
                    "engine_s": round(engine, 1),
                    "engine_vs_static": round(static / engine, 2),
                    "identical_answers": f"{same}/{total}",
                }
            )
        )


if __name__ == "__main__":
    main()
