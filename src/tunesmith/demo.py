"""`tunesmith demo`: the whole lifecycle on the bundled SmolLM2 and the example sentiment task.

advise -> validate + stats + cost -> baselines (zero-shot, few-shot) -> LoRA training with validation and early
stopping -> evaluation of the fine-tuned model against the baselines (report.html + report.json + verdict) ->
the adapter registered under an alias and the reports published to the dashboard's Reports page (and, with
``--serve``, served). Everything is written under one output directory, and re-running reuses finished steps:
training is skipped when its run.json says it succeeded (and resumed from its last checkpoint when interrupted);
evaluation answers are cached per candidate and example.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.rule import Rule

from tunesmith.atomic import atomic_dir, write_text_atomic
from tunesmith.errors import DatasetError


class DemoConfig(BaseModel):
    """What `tunesmith demo` runs; every path is relative to the working directory (the repository root)."""

    model_config = ConfigDict(extra="forbid")
    output_dir: Path = Field(default=Path("runs/demo"), description="Everything the demo writes goes here.")
    example_dir: Path = Field(
        default=Path("examples/sentiment"),
        description="The example task: train/val/test/test-tweets .jsonl and profile.yaml.",
    )
    train_config: Path = Field(
        default=Path("configs/train/sentiment-lora.yaml"), description="The TrainConfig YAML used for step 3."
    )
    train_overrides: list[str] = Field(
        default_factory=list, description="`key=value` overrides of the training config (e.g. epochs=1)."
    )
    few_shot_k: int = Field(default=6, ge=1, description="Examples shown to the few-shot baseline.")
    eval_limit: int | None = Field(default=None, ge=1, description="Evaluate only the first N test examples.")
    domain_shift: bool = Field(default=True, description="Also evaluate on test-tweets.jsonl (another domain).")
    domain_shift_limit: int | None = Field(
        default=100, ge=1, description="Tweets evaluated for the domain-shift check (None: all 200)."
    )
    max_new_tokens: int = Field(default=12, ge=1, description="Answer length limit (a label JSON is ~8 tokens).")
    batch_size: int = Field(default=16, ge=1, description="Evaluation generation batch size.")
    alias: str = Field(default="sentiment", description="Alias the fine-tuned adapter is registered under.")


class DemoResult(BaseModel):
    """Paths and headline numbers of a demo run."""

    run_dir: Path
    report: Path
    report_html: Path
    verdict: str
    alias: str
    serve_dir: Path
    seconds: float
    step_seconds: dict[str, float]


def run_demo(cfg: DemoConfig, console: Console | None = None) -> DemoResult:
    """Run every lifecycle step in order, printing what each does.

    Args:
        cfg: the demo settings.
        console: where to print (default: a new rich Console).

    Returns:
        Paths of the run, the report and the server data directory, the verdict and step timings.

    Raises:
        TunesmithError: a step failed; its message says which and how to fix it.
    """
    console = console or Console()
    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.perf_counter()

    def step(n: int, title: str, fn: Callable[[], Any]) -> Any:
        console.print(Rule(f"[bold]step {n}/5 · {title}"))
        t = time.perf_counter()
        result = fn()
        timings[title] = round(time.perf_counter() - t, 1)
        console.print(f"[dim]{title}: {timings[title]:.0f} s[/]")
        return result

    step(1, "advise, validate, stats and cost", lambda: advise_and_check_data(cfg, console))
    step(2, "baselines: zero-shot and few-shot", lambda: evaluate(cfg, console, with_run=False))
    run_dir = step(3, "LoRA training with validation and early stopping", lambda: train(cfg, console))
    report = step(4, "fine-tuned vs baselines", lambda: evaluate(cfg, console, with_run=True))
    serve_dir = step(5, "register the adapter under an alias", lambda: register_alias(cfg, run_dir, console))
    seconds = round(time.perf_counter() - start, 1)
    result = DemoResult(
        run_dir=run_dir, report=out / "eval" / "report.json", report_html=out / "eval" / "report.html",
        verdict=report.verdict, alias=cfg.alias, serve_dir=serve_dir, seconds=seconds, step_seconds=timings,
    )
    write_text_atomic(out / "demo.json", result.model_dump_json(indent=2) + "\n")
    return result


def example_file(cfg: DemoConfig, name: str) -> Path:
    """A file of the example task, with a clear error when it is missing."""
    path = cfg.example_dir / name
    if not path.exists():
        raise DatasetError(
            f"{path}: missing", "run the demo from the repository root (it reads examples/sentiment/)"
        )
    return path


def advise_and_check_data(cfg: DemoConfig, console: Console) -> None:
    """Step 1: the advice for the task profile; validation of every split; token stats and training cost."""
    from tunesmith.advise.decide import recommend
    from tunesmith.advise.profile import TaskProfile
    from tunesmith.config import load_config
    from tunesmith.data.render import histogram_lines, validation_lines, validation_summary
    from tunesmith.data.stats import compute_stats
    from tunesmith.data.validate import validate_file

    advice = recommend(load_config(TaskProfile, example_file(cfg, "profile.yaml")))
    console.print(f"advice: [bold]{advice.approach}[/] {advice.method or ''} — " + "; ".join(advice.reasons))
    train, val = example_file(cfg, "train.jsonl"), example_file(cfg, "val.jsonl")
    rejects = cfg.output_dir / "data" / "rejects.jsonl"
    report = validate_file(train, val, rejects_path=rejects)
    for line in validation_lines(report, limit=10):
        console.print(line, highlight=False)
    console.print(f"validate {train.name} + {val.name}: {validation_summary(report)}")
    if not report.ok:
        raise DatasetError(f"{train}: {len(report.errors)} error(s)", f"see `tunesmith data validate {train}`")
    stats = compute_stats(train, epochs=2)
    console.print(
        f"stats: {stats.n_examples} examples, tokens/example median {stats.tokens.median:.0f} "
        f"(p95 {stats.tokens.p95:.0f}), trained tokens/example {stats.trained_tokens.mean:.1f}"
    )
    for line in histogram_lines(stats, width=30):
        console.print("  " + line, highlight=False)
    costs = ", ".join(f"{c.model} ${c.usd:.4f}" for c in stats.costs if c.usd is not None)
    console.print(f"training cost for {stats.epochs} epochs ({stats.billed_tokens:,} tokens): {costs}")


def eval_config(cfg: DemoConfig, test_name: str, out_name: str, with_run: bool, limit: int | None) -> Any:
    """The EvalConfig of the demo: zero-shot and few-shot baselines, plus the fine-tuned run when trained."""
    from tunesmith.evaluate.config import CandidateSpec, EvalConfig

    candidates = [
        CandidateSpec(kind="zero-shot"),
        CandidateSpec(kind="few-shot", k=cfg.few_shot_k, name=f"few-shot-k{cfg.few_shot_k}"),
    ]
    if with_run:
        candidates.append(CandidateSpec(kind="run", path=cfg.output_dir / "train", name="fine-tuned"))
    return EvalConfig(
        test_file=example_file(cfg, test_name), train_file=example_file(cfg, "train.jsonl"),
        candidates=candidates, output_dir=cfg.output_dir / out_name, max_new_tokens=cfg.max_new_tokens,
        batch_size=cfg.batch_size, limit=limit,
    )


def evaluate(cfg: DemoConfig, console: Console, with_run: bool) -> Any:
    """Steps 2 and 4: evaluate on the test split (and the tweets split after training); print the tables."""
    from tunesmith.evaluate.run import run_evaluation
    from tunesmith.evaluate.summary import report_table

    splits = [("test.jsonl", "eval", cfg.eval_limit)]
    if with_run and cfg.domain_shift:
        limit = min(filter(None, (cfg.eval_limit, cfg.domain_shift_limit)), default=None)
        splits.append(("test-tweets.jsonl", "eval-tweets", limit))
    main = None
    for test_name, out_name, limit in splits:
        report = run_evaluation(eval_config(cfg, test_name, out_name, with_run, limit))
        console.print(f"[bold]{test_name}[/] ({report.n_examples} examples)")
        console.print(report_table(report))
        if with_run:
            console.print(f"[bold]verdict ({test_name}):[/] {report.verdict}")
            console.print(f"report: {cfg.output_dir / out_name / 'report.html'}")
        main = main or report
    return main


def train(cfg: DemoConfig, console: Console) -> Path:
    """Step 3: LoRA training; skipped when the run succeeded before, resumed when it was interrupted."""
    from tunesmith.config import load_config
    from tunesmith.train.config import TrainConfig
    from tunesmith.train.run import run_training

    run_dir = cfg.output_dir / "train"
    summary = run_dir / "run.json"
    if summary.exists() and json.loads(summary.read_text(encoding="utf-8")).get("status") == "succeeded":
        console.print(f"reusing the finished run in {run_dir} (delete it to train again)")
        return run_dir
    overrides = [f"output_dir={run_dir}", *cfg.train_overrides]
    train_cfg = load_config(TrainConfig, cfg.train_config, overrides)
    resume = any((run_dir / "checkpoints").glob("checkpoint-*"))
    if resume:
        console.print(f"resuming the interrupted run in {run_dir}")
    result = run_training(train_cfg, resume=resume)
    console.print(
        f"trained {result.steps} steps in {result.seconds:.0f} s; adapter: {run_dir / 'adapter'}; "
        + ", ".join(f"{k}={v:.4f}" for k, v in result.final_metrics.items())
    )
    return run_dir


def register_alias(cfg: DemoConfig, run_dir: Path, console: Console) -> Path:
    """Step 5: point the alias at the fine-tuned run in the demo's server data directory; publish the reports."""
    from tunesmith.serve.deploy import deploy_alias
    from tunesmith.serve.settings import ServeSettings
    from tunesmith.store.db import Database

    serve_dir = cfg.output_dir / "serve"
    serve_dir.mkdir(parents=True, exist_ok=True)
    settings = ServeSettings(data_dir=serve_dir)
    db = Database(settings.resolved_database_url())  # creates the schema, as `tunesmith serve` does
    try:
        change = deploy_alias(db, settings, cfg.alias, str(run_dir.resolve()), who="tunesmith demo",
                              allow_run_dirs=True)
    finally:
        db.close()
    console.print(f"alias [bold]{cfg.alias}[/] -> {change.to_target} (recorded in {serve_dir / 'tunesmith.db'})")
    for name in ("eval", "eval-tweets"):
        if (cfg.output_dir / name / "report.json").exists():
            published = publish_report(cfg.output_dir / name, serve_dir / "reports" / f"demo-{name}")
            console.print(f"report published to the dashboard's Reports page: {published}")
    return serve_dir


def publish_report(report_dir: Path, dest: Path) -> Path:
    """Copy a report folder's report.json, report.html and config.yaml to ``dest`` in one rename.

    A server whose data dir holds ``dest`` under ``reports/`` lists it on the dashboard's Reports page; the
    generation caches stay behind.
    """
    with atomic_dir(dest) as tmp:
        for name in ("report.json", "report.html", "config.yaml"):
            if (report_dir / name).exists():
                shutil.copy2(report_dir / name, tmp / name)
    return dest


def task_messages(cfg: DemoConfig, text: str) -> list[dict[str, str]]:
    """A request in the example task's shape: its system prompt (from train.jsonl) and ``text``."""
    with open(example_file(cfg, "train.jsonl"), encoding="utf-8") as f:
        system = next(m["content"] for m in json.loads(f.readline())["messages"] if m["role"] == "system")
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def client_snippet(base_url: str, alias: str, api_key: str, messages: list[dict[str, str]]) -> str:
    """curl and openai-SDK calls of the alias, printed when the demo leaves the server running."""
    body = json.dumps({"model": alias, "temperature": 0, "messages": messages}).replace("'", "'\\''")
    return (
        f"curl -s {base_url}/chat/completions -H 'Authorization: Bearer {api_key}' "
        f"-H 'Content-Type: application/json' -d '{body}'\n\n"
        "from openai import OpenAI\n"
        f"client = OpenAI(base_url={base_url!r}, api_key={api_key!r})\n"
        f"reply = client.chat.completions.create(model={alias!r}, temperature=0, messages={messages!r})\n"
        "print(reply.choices[0].message.content)"
    )
