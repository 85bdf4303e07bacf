"""Terminal output for the fine-tuning ROI (`tunesmith costs`): a rich table and a one-paragraph summary."""

from __future__ import annotations

from rich.table import Table

from tunesmith.advise.costs import RoiEstimate, RoiInput


def roi_table(inp: RoiInput, roi: RoiEstimate) -> Table:
    """The two setups side by side, then savings and break-even."""
    table = Table(title=f"{inp.queries_per_day:,.0f} queries/day")
    for col in ("setup", "model", "tokens in/out", "$ / query", "$ / day"):
        table.add_column(col, justify="right" if col.startswith(("$", "tok")) else "left")
    for label, w, q, d in (
        ("large, prompted", inp.large, roi.large_cost_per_query, roi.large_daily),
        ("small, fine-tuned", inp.small, roi.small_cost_per_query, roi.small_daily),
    ):
        table.add_row(label, w.model, f"{w.prompt_tokens:.0f}/{w.completion_tokens:.0f}", f"{q:.6f}", f"{d:,.2f}")
    return table


def roi_summary(roi: RoiEstimate) -> str:
    """One paragraph: savings, training cost, break-even."""
    if roi.break_even_days is None:
        return (
            f"No saving ({roi.daily_savings:+,.2f} USD/day); training costs "
            f"{roi.training_cost:,.2f} USD and is never recovered."
        )
    return (
        f"Saves {roi.daily_savings:,.2f} USD/day; training costs {roi.training_cost:,.2f} USD, "
        f"recovered after {roi.break_even_days:.2f} days ({roi.break_even_queries:,.0f} queries); "
        f"net first-year saving {roi.yearly_savings:,.0f} USD."
    )
