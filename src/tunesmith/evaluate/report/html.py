"""One self-contained report.html: inline CSS, charts as inline base64 PNGs, no external requests."""

from __future__ import annotations

import json
from html import escape

from tunesmith.evaluate.report import plots
from tunesmith.evaluate.schema import CandidateResult, EvalReport

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1150px;
color:#222;
background:#fafafa;padding:0 1rem}
h1{margin-bottom:.2rem}h2{border-bottom:2px solid #4C72B0;padding-bottom:.2rem;margin-top:2rem}
.verdict{background:#eef3fb;border-left:5px solid #4C72B0;padding:1rem;font-size:1.05rem;line-height:1.5}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem;width:100%}
th,td{border:1px solid #ddd;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f0f0f0}td.num{text-align:right;font-variant-numeric:tabular-nums}
.grid{display:flex;flex-wrap:wrap;gap:1rem}.grid figure{margin:0;background:#fff;border:1px solid #e3e3e3;
padding:.5rem}img{max-width:100%}.pass{color:#2a7d2a}.fail{color:#b22}.muted{color:#777;font-size:.85rem}
pre{white-space:pre-wrap;margin:0;font-size:.85rem}
"""


CHOSEN = " style='background:#eef3fb'"


def _img(b64: str | None, alt: str) -> str:
    return f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{b64}"></figure>' if b64 else ""


def _fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def summary_table(report: EvalReport) -> str:
    """Candidates x metrics with intervals, plus tokens, latency and cost."""
    head = "".join(f"<th>{escape(m)}</th>" for m in report.metrics)
    rows = []
    for c in report.candidates:
        cells = "".join(
            f'<td class="num">{_fmt(c.metrics[m].value)} <span class="muted">[{_fmt(c.metrics[m].low)}, '
            f"{_fmt(c.metrics[m].high)}]</span></td>"
            if m in c.metrics
            else "<td>-</td>"
            for m in report.metrics
        )
        reg = _fmt(c.regression.pass_rate, 2) if c.regression else "-"
        rows.append(
            f"<tr><td><b>{escape(c.name)}</b><br><span class='muted'>{escape(c.model)}</span></td>{cells}"
            f"<td class='num'>{c.cost.prompt_tokens_mean:.0f} / {c.cost.completion_tokens_mean:.1f}</td>"
            f"<td class='num'>{_fmt(c.cost.latency_p50_s, 2)} / {_fmt(c.cost.latency_p95_s, 2)}</td>"
            f"<td class='num'>{_fmt(c.cost.cost_per_1k, 4)}</td><td class='num'>{reg}</td></tr>"
        )
    return (
        f"<table><tr><th>candidate</th>{head}<th>tokens in / out</th><th>latency p50 / p95 (s)</th>"
        f"<th>USD / 1k queries</th><th>regression pass</th></tr>{''.join(rows)}</table>"
    )


def examples_table(report: EvalReport, indices: list[int], cands: list[CandidateResult]) -> str:
    """The given examples side by side: question, reference and each candidate's answer with its score."""
    pm = report.primary_metric
    head = "".join(f"<th>{escape(c.name)}</th>" for c in cands)
    rows = []
    for i in indices:
        cells = "".join(
            f"<td><pre>{escape(c.examples[i].output)}</pre><span class='"
            f"{'pass' if c.examples[i].scores.get(pm, 0) >= 0.5 else 'fail'}'>{pm}="
            f"{_fmt(c.examples[i].scores.get(pm))}</span></td>"
            for c in cands
        )
        rows.append(
            f"<tr><td class='num'>{i}</td><td><pre>{escape(report.questions[i][:400])}</pre></td>"
            f"<td><pre>{escape(report.references[i])}</pre></td>{cells}</tr>"
        )
    return f"<table><tr><th>#</th><th>input</th><th>reference</th>{head}</tr>{''.join(rows)}</table>"


def comparison_section(report: EvalReport) -> str:
    """Paired tests and flip lists for each fine-tuned candidate."""
    out = []
    for comp in report.comparisons:
        cands = [report.candidate(comp.baseline), report.candidate(comp.finetuned)]
        judge = f"<p>Judge A/B (both orders): {escape(str(comp.judge_pairwise))}</p>" if comp.judge_pairwise else ""
        out.append(
            f"<h3>{escape(comp.finetuned)} vs {escape(comp.baseline)} on {escape(comp.metric)}</h3>"
            f"<p>difference {comp.diff:+.3f} (95% CI [{comp.low:+.3f}, {comp.high:+.3f}]), paired bootstrap "
            f"p={comp.p_value:.3f}; McNemar exact p={comp.mcnemar['p_value']:.3f} "
            f"({int(comp.mcnemar['only_a'])} only fine-tuned right, "
            f"{int(comp.mcnemar['only_b'])} only baseline "
            f"right)</p>{judge}"
            f"<h4>fail → pass ({len(comp.fail_to_pass)})</h4>"
            f"{examples_table(report, comp.fail_to_pass, cands)}"
            f"<h4>pass → fail ({len(comp.pass_to_fail)})</h4>"
            f"{examples_table(report, comp.pass_to_fail, cands)}"
        )
    return "".join(out) or "<p class='muted'>No fine-tuned candidate: nothing to compare.</p>"


def ladder_section(report: EvalReport) -> str:
    """`tunesmith decide`: the recommendation, the chart and one row per rung (empty for plain evaluations)."""
    rec = report.recommendation
    if rec is None:
        return ""
    rows = "".join(
        f"<tr{CHOSEN if r.name == rec.candidate else ''}><td>{i + 1}</td>"
        f"<td><b>{escape(r.name)}</b></td><td class='num'>{_fmt(r.value)} <span class='muted'>[{_fmt(r.low)}, "
        f"{_fmt(r.high)}]</span></td><td class='num'>{r.diff_vs_best:+.3f} <span class='muted'>"
        f"[{r.diff_low:+.3f}, {r.diff_high:+.3f}]</span></td><td>{'yes' if r.significantly_worse else 'no'}</td>"
        f"<td class='num'>{_fmt(r.cost_per_1k, 4)}</td><td class='num'>{_fmt(r.latency_p50_s, 2)}</td>"
        f"<td class='num'>{'-' if r.payback_queries is None else f'{r.payback_queries:,.0f}'}</td>"
        f"<td class='muted'>{escape(r.recipe or '-')}</td></tr>"
        for i, r in enumerate(rec.alternatives)
    )
    skipped = "".join(f"<li>{escape(s)}</li>" for s in rec.skipped)
    schemas = "".join(
        f"<h4>{escape(c.name)}</h4><pre>{escape(json.dumps(c.json_schema, indent=1))}</pre>"
        for c in report.candidates
        if c.json_schema and not c.name.startswith("fine-tune")
    )
    return (
        f"<h2>Recommendation: {escape(rec.approach)}</h2><div class='verdict'>{escape(rec.reason)}</div>"
        f"<p class='muted'>Test: {escape(rec.test)}. Rungs in ladder order (cheapest first).</p>"
        f"<div class='grid'>{_img(plots.ladder_chart(report), 'the ladder: quality vs cost')}</div>"
        f"<table><tr><th>#</th><th>rung</th><th>{escape(rec.metric)}</th><th>vs best ({escape(rec.best)})</th>"
        f"<th>significantly worse</th><th>USD / 1k queries</th><th>latency p50 (s)</th>"
        f"<th>fine-tune payback (queries)</th><th>recipe</th></tr>{rows}</table>"
        + (f"<p>Not run:</p><ul>{skipped}</ul>" if skipped else "")
        + (f"<h3>JSON Schema of the structured rungs</h3>{schemas}" if schemas else "")
    )


def charts(report: EvalReport) -> str:
    """Metric bars, quality vs cost, loss curves and confusion matrices."""
    figs = [_img(plots.metric_bars(report, m), f"{m} per candidate") for m in report.metrics[:4]]
    figs.append(_img(plots.quality_vs_cost(report), "quality vs cost"))
    for c in report.candidates:
        if c.loss_curve:
            figs.append(_img(plots.loss_curves(c.loss_curve, c.name), f"loss curves of {c.name}"))
    for c in report.candidates:
        if c.confusion:
            figs.append(_img(plots.confusion_plot(c.confusion, f"confusion: {c.name}"), f"confusion of {c.name}"))
    return f"<div class='grid'>{''.join(figs)}</div>"


def render_html(report: EvalReport) -> str:
    """The whole report page."""
    worst = "".join(f"<h3>{escape(c.name)}</h3>{examples_table(report, c.worst, [c])}" for c in report.candidates)
    regression = "".join(
        f"<h3>{escape(c.name)}: {c.regression.pass_rate:.0%} pass</h3>"
        f"<table><tr><th>prompt</th><th>answer</th>"
        f"<th>result</th></tr>"
        + "".join(
            f"<tr><td>{escape(r['prompt'])}</td><td><pre>{escape(r['output'])}</pre></td><td class="
            f"'{'pass' if r['passed'] else 'fail'}'>"
            f"{'pass' if r['passed'] else escape('; '.join(r['failures']))}"
            f"</td></tr>"
            for r in c.regression.cases
        )
        + "</table>"
        for c in report.candidates
        if c.regression
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>tunesmith evaluation</title>"
        f"<style>{CSS}</style></head><body><h1>tunesmith evaluation</h1>"
        f"<p class='muted'>{escape(report.test_file)} · {report.n_examples} examples · task "
        f"{escape(report.task_type)} · primary metric {escape(report.primary_metric)} · {report.created}</p>"
        f"{ladder_section(report)}"
        f"<div class='verdict'>{escape(report.verdict)}</div><h2>Summary</h2>{summary_table(report)}"
        f"<h2>Charts</h2>{charts(report)}<h2>Fine-tuned vs best baseline</h2>{comparison_section(report)}"
        f"<h2>Worst examples</h2>{worst}"
        + (f"<h2>Regression suite</h2>{regression}" if regression else "")
        + "</body></html>"
    )
