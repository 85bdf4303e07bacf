"""`run_decision(cfg) -> EvalReport`: the guides' decision tree as an experiment on the team's own data.

Reads top to bottom: resolve the splits -> measure the cheap rungs (prompt, structured, few-shot, RAG) ->
train the LoRA fine-tune within the budget -> measure every rung (cheap ones come from the answer cache) ->
recommend the cheapest rung not significantly worse than the best -> write one recipe per rung, report.json and
report.html. Re-running reuses finished work: cached answers, a succeeded training run, a finished split.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tunesmith.core.config import load_config
from tunesmith.core.errors import ConfigError
from tunesmith.core.pricing import load_price_table
from tunesmith.evaluate.config import CandidateSpec, EvalConfig
from tunesmith.evaluate.infer_schema import infer_schema
from tunesmith.evaluate.items import TestItem, load_items
from tunesmith.evaluate.recipe import save_recipe
from tunesmith.evaluate.retrieval import RagSettings
from tunesmith.evaluate.run import candidate_recipe, run_evaluation, save_report
from tunesmith.evaluate.schema import EvalReport
from tunesmith.ladder.config import DecideConfig
from tunesmith.ladder.recommend import recommend

Notify = Callable[[str, Any], None]


def run_decision(cfg: DecideConfig, notify: Notify | None = None) -> EvalReport:
    """Measure every rung of the ladder on the held-out set and recommend one.

    Args:
        cfg: the validated decide config.
        notify: called as ``notify(event, payload)`` between steps (the CLI prints tables from it).

    Returns:
        The final report, with ``recommendation`` (also written to ``cfg.output_dir``).

    Raises:
        ConfigError / DatasetError / EvalError: bad inputs, all listed before any model loads.
    """
    notify = notify or (lambda event, payload: None)
    train, val, test = resolve_splits(cfg)
    train_items = load_items(train)
    schema_spec, skipped = structured_setting(cfg, train_items)
    cheap = cheap_rungs(cfg, schema_spec)
    notify("step", f"measuring {len(cheap)} rungs without training: {', '.join(c.label for c in cheap)}")
    notify("report", run_evaluation(eval_config(cfg, train, test, cheap)))
    rungs = list(cheap)
    if cfg.finetune:
        done = succeeded(cfg.output_dir / "train")
        notify(
            "step",
            "reusing the finished fine-tune (delete train/ to train again)" if done else "training the fine-tune",
        )
        run_dir = train_rung(cfg, train, val)
        rungs += finetune_rungs(run_dir, schema_spec)
    else:
        skipped.append("fine-tune: finetune is false")
    if cfg.teacher is not None:
        t = cfg.teacher
        rungs.append(
            CandidateSpec(
                kind="endpoint",
                name="teacher",
                model=t.model,
                base_url=t.base_url,
                api_key_env=t.api_key_env,
                price_model=t.price_model,
            )
        )
    notify("step", "measuring every rung and recommending")
    ecfg = eval_config(cfg, train, test, rungs)
    report = run_evaluation(ecfg)
    table = load_price_table(cfg.prices)
    report.recommendation = recommend(report, table, cfg.margin, cfg.bootstrap_samples, cfg.seed, skipped)
    attach_recipes(report, ecfg, rungs, train_items)
    save_report(report, ecfg)
    save_report(report, ecfg.model_copy(update={"output_dir": cfg.output_dir}))
    return report


def resolve_splits(cfg: DecideConfig) -> tuple[Path, Path | None, Path]:
    """(train, val, test): the given files, or ``data_file`` split once into ``output_dir/data``."""
    if cfg.data_file is None:
        assert cfg.train_file is not None and cfg.test_file is not None  # DecideConfig checks it
        return cfg.train_file, cfg.val_file, cfg.test_file
    from tunesmith.data.split import SplitConfig, split_dataset

    out = cfg.output_dir / "data"
    if not (out / "manifest.json").exists():
        split_dataset(cfg.data_file, SplitConfig(seed=cfg.seed), out)
    return out / "train.jsonl", out / "val.jsonl", out / "test.jsonl"


def structured_setting(cfg: DecideConfig, train: list[TestItem]) -> tuple[str | None, list[str]]:
    """The ``json_schema`` of the structured rungs (None: skipped) and the reason when skipped."""
    if cfg.json_schema == "none":
        return None, ["structured: json_schema is none"]
    if cfg.json_schema == "infer" and infer_schema([it.reference for it in train]) is None:
        return None, ["structured: the training answers are free text, so there is no schema to constrain them to"]
    return cfg.json_schema, []


def cheap_rungs(cfg: DecideConfig, schema: str | None) -> list[CandidateSpec]:
    """Prompt, structured, few-shot and RAG, as far as the data allows, in ladder order."""
    rungs = [CandidateSpec(kind="zero-shot", name="prompt", model=cfg.model)]
    if schema is not None:
        rungs.append(CandidateSpec(kind="structured", name="structured", model=cfg.model, json_schema=schema))
    rungs.append(
        CandidateSpec(
            kind="few-shot", name="few-shot", model=cfg.model, k=cfg.few_shot_k, selection=cfg.few_shot_selection
        )
    )
    if cfg.docs is not None:
        rag = RagSettings(docs=cfg.docs, **cfg.rag.model_dump())
        rungs.append(CandidateSpec(kind="rag", name="rag", model=cfg.model, rag=rag))
    return rungs


def finetune_rungs(run_dir: Path, schema: str | None) -> list[CandidateSpec]:
    """The fine-tuned run, alone and with structured output."""
    rungs = [CandidateSpec(kind="run", name="fine-tune", path=run_dir)]
    if schema is not None:
        rungs.append(CandidateSpec(kind="run", name="fine-tune+structured", path=run_dir, json_schema=schema))
    return rungs


def eval_config(cfg: DecideConfig, train: Path, test: Path, rungs: list[CandidateSpec]) -> EvalConfig:
    """The evaluation of the given rungs (answers cached under ``output_dir/eval``)."""
    return EvalConfig(
        test_file=test,
        train_file=train,
        candidates=rungs,
        metrics=cfg.metrics,
        output_dir=cfg.output_dir / "eval",
        max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size,
        dtype=cfg.dtype,
        limit=cfg.limit,
        seed=cfg.seed,
        bootstrap_samples=cfg.bootstrap_samples,
        prices=cfg.prices,
    )


def train_rung(cfg: DecideConfig, train: Path, val: Path | None) -> Path:
    """Train the LoRA fine-tune into ``output_dir/train`` (reused when it succeeded, resumed when interrupted)."""
    from tunesmith.train.config import TrainConfig
    from tunesmith.train.run import run_training
    from tunesmith.train.setup import find_last_checkpoint

    run_dir = cfg.output_dir / "train"
    if succeeded(run_dir):
        return run_dir
    overrides = [f"model={cfg.model}", f"train_file={train}", f"output_dir={run_dir}", f"seed={cfg.seed}"]
    overrides.append(f"valid_file={val}" if val is not None else "early_stopping_patience=null")
    if cfg.budget_minutes:
        overrides.append(f"max_minutes={cfg.budget_minutes}")
    if cfg.max_steps:
        overrides.append(f"max_steps={cfg.max_steps}")
    if cfg.train_config is None:
        overrides = ["epochs=2", "lora.target_modules=all-linear", *overrides]
    train_cfg = load_config(TrainConfig, cfg.train_config, [*overrides, *cfg.train_overrides])
    if train_cfg.method not in ("lora", "qlora", "full"):
        raise ConfigError(
            f"decide trains supervised fine-tunes; the train config's method is {train_cfg.method!r}",
            "use method lora, qlora or full",
        )
    run_training(train_cfg, resume=find_last_checkpoint(train_cfg) is not None)
    return run_dir


def succeeded(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a training run whose run.json says it succeeded."""
    summary = run_dir / "run.json"
    return summary.exists() and json.loads(summary.read_text(encoding="utf-8")).get("status") == "succeeded"


def attach_recipes(report: EvalReport, ecfg: EvalConfig, rungs: list[CandidateSpec], train: list[TestItem]) -> None:
    """Write ``recipes/<rung>.yaml`` for every local rung and name it in the recommendation."""
    assert report.recommendation is not None
    paths: dict[str, str] = {}
    for spec in rungs:
        if spec.kind == "endpoint":
            continue
        path = (ecfg.output_dir.parent / "recipes" / f"{spec.label}.yaml").resolve()
        save_recipe(candidate_recipe(ecfg, spec, train), path)
        paths[spec.label] = str(path)
    for rung in report.recommendation.alternatives:
        rung.recipe = paths.get(rung.name)
