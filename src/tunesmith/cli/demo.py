"""`tunesmith demo`: the whole lifecycle on the bundled SmolLM2 and two example tasks, one where fine-tuning wins
and one where it should not.

advise -> validate + stats + cost -> `decide` on the sentiment task (prompt, structured output, few-shot, LoRA
fine-tune, fine-tune + structured) -> `decide` on the knowledge task (prompt, few-shot, RAG over the documents,
LoRA fine-tune) -> each task's recommended rung deployed under an alias (a recipe or the fine-tuned run) and the
reports published to the dashboard's Reports page (and, with ``--serve``, served). Everything is written under
one output directory, and re-running reuses finished steps: a training run whose run.json says it succeeded is
reused (and an interrupted one resumed from its last checkpoint); answers are cached per rung and example.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel, ConfigDict, Field
from rich.console import Console
from rich.rule import Rule

from tunesmith.cli import options
from tunesmith.core.atomic import atomic_dir, write_text_atomic
from tunesmith.core.errors import DatasetError


class DemoConfig(BaseModel):
    """What `tunesmith demo` runs; every path is relative to the working directory (the repository root)."""

    model_config = ConfigDict(extra="forbid")
    output_dir: Path = Field(default=Path("runs/demo"), description="Everything the demo writes goes here.")
    example_dir: Path = Field(
        default=Path("examples/sentiment"),
        description="The task where fine-tuning should win: train/val/test .jsonl and profile.yaml.",
    )
    knowledge_dir: Path | None = Field(
        default=Path("examples/countries"),
        description="The task where retrieval should win: train/val/test .jsonl and docs.jsonl (None: skip it).",
    )
    train_config: Path = Field(
        default=Path("configs/train/sentiment-lora.yaml"), description="The TrainConfig YAML of both fine-tunes."
    )
    train_overrides: list[str] = Field(
        default_factory=lambda: ["epochs=1", "eval_steps=50"],
        description="`key=value` overrides of the training config (default: one epoch, two validations, so both "
        "tasks' ladders fit in 15 minutes on 2 CPU cores; `[]` trains the config's 2 epochs).",
    )
    few_shot_k: int = Field(default=4, ge=1, description="Examples shown by the few-shot rung (nearest).")
    eval_limit: int | None = Field(default=None, ge=1, description="Measure only the first N test examples.")
    max_new_tokens: int = Field(default=12, ge=1, description="Answer length limit (a label JSON is ~8 tokens).")
    batch_size: int = Field(
        default=32, ge=1, description="Evaluation generation batch size (rows decoded together by the engine)."
    )
    alias: str = Field(default="sentiment", description="Alias the sentiment task's winner is deployed under.")
    knowledge_alias: str = Field(default="countries", description="Alias of the knowledge task's winner.")


class DemoResult(BaseModel):
    """Paths and headline numbers of a demo run."""

    run_dir: Path
    report: Path
    report_html: Path
    verdict: str
    recommendations: dict[str, str] = Field(description="Task -> recommended rung.")
    aliases: dict[str, str] = Field(description="Alias -> what it serves.")
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
        Paths of the sentiment run and report, the recommendations, the aliases, the server data directory and
        step timings.

    Raises:
        TunesmithError: a step failed; its message says which and how to fix it.
    """
    console = console or Console()
    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    steps = 4 if cfg.knowledge_dir is not None else 3

    def step(n: int, title: str, fn: Callable[[], Any]) -> Any:
        console.print(Rule(f"[bold]step {n}/{steps} · {title}"))
        t = time.perf_counter()
        result = fn()
        timings[title] = round(time.perf_counter() - t, 1)
        console.print(f"[dim]{title}: {timings[title]:.0f} s[/]")
        return result

    step(1, "advise, validate, stats and cost", lambda: advise_and_check_data(cfg, console))
    reports = {
        "sentiment": step(2, "decide: the ladder on the sentiment task", lambda: decide(cfg, "sentiment", console))
    }
    if cfg.knowledge_dir is not None:
        reports["knowledge"] = step(
            3, "decide: the ladder on the knowledge task", lambda: decide(cfg, "knowledge", console)
        )
    aliases = step(steps, "deploy each winner under an alias", lambda: deploy_winners(cfg, reports, console))
    main = reports["sentiment"]
    result = DemoResult(
        run_dir=out / "sentiment" / "train",
        report=out / "sentiment" / "report.json",
        report_html=out / "sentiment" / "report.html",
        verdict=main.verdict,
        recommendations={task: r.recommendation.candidate for task, r in reports.items()},
        aliases=aliases,
        alias=cfg.alias,
        serve_dir=out / "serve",
        seconds=round(time.perf_counter() - start, 1),
        step_seconds=timings,
    )
    write_text_atomic(out / "demo.json", result.model_dump_json(indent=2) + "\n")
    return result


def example_file(cfg: DemoConfig, name: str, folder: Path | None = None) -> Path:
    """A file of an example task (default: the sentiment one), with a clear error when it is missing."""
    path = (folder or cfg.example_dir) / name
    if not path.exists():
        raise DatasetError(
            f"{path}: missing",
            "run the demo from the repository root (it reads examples/sentiment/ and examples/countries/)",
        )
    return path


def advise_and_check_data(cfg: DemoConfig, console: Console) -> None:
    """Step 1: the advice for the task profile; validation of every split; token stats and training cost."""
    from tunesmith.advise.decide import recommend
    from tunesmith.advise.profile import TaskProfile
    from tunesmith.cli.render.data import histogram_lines, validation_lines, validation_summary
    from tunesmith.core.config import load_config
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


def decide_config(cfg: DemoConfig, task: str) -> Any:
    """The DecideConfig of one demo task (sentiment: no documents; knowledge: with its docs.jsonl)."""
    from tunesmith.ladder.config import DecideConfig

    folder = cfg.example_dir if task == "sentiment" else cfg.knowledge_dir
    assert folder is not None
    files = {name: example_file(cfg, name, folder) for name in ("train.jsonl", "val.jsonl", "test.jsonl")}
    return DecideConfig(
        train_file=files["train.jsonl"],
        val_file=files["val.jsonl"],
        test_file=files["test.jsonl"],
        docs=example_file(cfg, "docs.jsonl", folder) if task == "knowledge" else None,
        output_dir=cfg.output_dir / task,
        train_config=cfg.train_config,
        train_overrides=cfg.train_overrides,
        few_shot_k=cfg.few_shot_k,
        max_new_tokens=cfg.max_new_tokens if task == "sentiment" else 24,  # one sentence with a number
        # exact match ranks the knowledge rungs: a wrong number in the right sentence would score high on ROUGE
        metrics="auto" if task == "sentiment" else ["exact_match", "token_f1"],
        batch_size=cfg.batch_size,
        limit=cfg.eval_limit,
    )


def decide(cfg: DemoConfig, task: str, console: Console) -> Any:
    """Steps 2 and 3: the ladder on one task; prints the cheap rungs' table, the ladder and the recommendation."""
    from tunesmith.cli.render.evaluate import ladder_table, report_table
    from tunesmith.ladder.run import run_decision

    def show(event: str, payload: Any) -> None:
        console.print(report_table(payload) if event == "report" else f"[dim]{payload}[/]")

    dcfg = decide_config(cfg, task)
    report = run_decision(dcfg, show)
    rec = report.recommendation
    console.print(ladder_table(report))
    console.print(f"[bold]recommendation ({task}): {rec.approach}[/] — {rec.reason}")
    if report.comparisons:
        console.print(f"[bold]verdict ({task}):[/] {report.verdict}")
    console.print(f"report: {dcfg.output_dir / 'report.html'}")
    return report


def deploy_winners(cfg: DemoConfig, reports: dict[str, Any], console: Console) -> dict[str, str]:
    """Last step: each task's recommended rung under its alias in the demo's server data dir; publish reports."""
    from tunesmith.serve.deploy import deploy_alias
    from tunesmith.serve.settings import ServeSettings
    from tunesmith.store.db import Database

    serve_dir = cfg.output_dir / "serve"
    serve_dir.mkdir(parents=True, exist_ok=True)
    settings = ServeSettings(data_dir=serve_dir)
    names = {"sentiment": cfg.alias, "knowledge": cfg.knowledge_alias}
    aliases: dict[str, str] = {}
    db = Database(settings.resolved_database_url())  # creates the schema, as `tunesmith serve` does
    try:
        for task, report in reports.items():
            rec = report.recommendation
            recipe = next(r.recipe for r in rec.alternatives if r.name == rec.candidate)
            change = deploy_alias(db, settings, names[task], recipe, who="tunesmith demo", allow_run_dirs=True)
            aliases[names[task]] = f"{rec.candidate} ({change.to_target})"
            console.print(f"alias [bold]{names[task]}[/] -> {rec.candidate}: {change.to_target}")
    finally:
        db.close()
    for task in reports:
        published = publish_report(cfg.output_dir / task, serve_dir / "reports" / f"demo-{task}")
        console.print(f"report published to the dashboard's Reports page: {published}")
    return aliases


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


def demo_cmd(
    out: Annotated[Path, typer.Option("--out", help="Output directory (re-running reuses finished steps).")] = Path(
        "runs/demo"
    ),
    serve: Annotated[
        bool,
        typer.Option(
            "--serve",
            help="Afterwards, leave the OpenAI-compatible server running with the alias, and print how to call it.",
        ),
    ] = False,
    port: Annotated[int, typer.Option("--port", help="Port for --serve.")] = 8000,
    set_: options.SetOption = None,
) -> None:
    """The whole lifecycle on the bundled SmolLM2-135M-Instruct and two example tasks.

    1. advise on the sentiment task's profile; validate the data; token stats and training cost.
    2. decide on examples/sentiment: prompt, structured output, few-shot, LoRA fine-tune, fine-tune + structured.
    3. decide on examples/countries (facts in documents): prompt, few-shot, RAG, LoRA fine-tune.
    4. each task's recommended rung deployed under an alias (`sentiment`, `countries`); with --serve, served.

    Example: tunesmith demo --set eval_limit=50   (a quick look; --set 'train_overrides=[]' trains 2 epochs)
    """
    import secrets

    from tunesmith.core.config import load_config

    console = options.console
    cfg = load_config(DemoConfig, None, [options.as_override("output_dir", out), *(set_ or [])])
    result = run_demo(cfg, console)
    console.rule("[bold]done")
    console.print(f"total {result.seconds / 60:.1f} min; report: {result.report_html}")
    for task, rung in result.recommendations.items():
        console.print(f"[bold]{task}:[/] recommended {rung}")
    if not serve:
        console.print(f"serve it: tunesmith serve --data-dir {result.serve_dir}  (then call model={result.alias!r})")
        return
    from tunesmith.serve.server import run_server
    from tunesmith.serve.settings import ServeSettings

    key = secrets.token_urlsafe(16)
    console.print("call the alias while the server runs (Ctrl-C stops it):\n")
    messages = task_messages(cfg, "What a wonderful film!")
    console.print(
        client_snippet(f"http://127.0.0.1:{port}/v1", result.alias, key, messages), highlight=False, markup=False
    )
    run_server(ServeSettings(data_dir=result.serve_dir, port=port, api_keys=[key]))
