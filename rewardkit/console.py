"""Summary frames to rich tables. Reads `rewardkit.report.Summary`; computes nothing new."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from rewardkit.report import Summary, rows_of
from rewardkit.score import ScoreResult

__all__ = ["render_input", "render_summary"]


def _num(value: object, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}".rstrip("0").rstrip(".") if value != 0 else "0"
    return str(value)


def _pct(value: Any) -> str:
    value = float(value)
    return "-" if math.isnan(value) else f"{value:.1%}"


def render_input(console: Console, result: ScoreResult, max_listed: int = 10) -> None:
    """What was read: lines, skipped lines and why, blank lines, warnings."""
    schemes = ", ".join(s.name for s in result.schemes)
    console.print(
        f"[bold]{result.path}[/]: {result.rows_scored:,} rows scored under {schemes}"
        f" ({result.lines_read:,} lines read)"
    )
    if result.blank_lines:
        console.print(f"[yellow]{result.blank_lines:,} blank line(s) ignored[/]")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if result.skipped:
        table = Table(title=f"{len(result.skipped):,} line(s) skipped (--on-error skip)")
        table.add_column("line", justify="right")
        table.add_column("problem")
        table.add_column("detail")
        for item in result.skipped[:max_listed]:
            table.add_row(str(item.line), item.code, item.message)
        if len(result.skipped) > max_listed:
            table.add_row("...", f"{len(result.skipped) - max_listed:,} more", "")
        console.print(table)


def render_summary(console: Console, summary: Summary, schemes: Sequence[str]) -> None:
    """Every table of `rewardkit score`, most actionable first."""
    if summary.notes:
        console.print("[bold]What stands out[/]")
        for note in summary.notes:
            console.print(f"  [red]•[/] {note}")
        console.print()
    _stats(console, summary.stats, schemes)
    if summary.compared is not None and summary.differences is not None:
        _comparison(console, summary)
    _reasons(console, summary.reasons)
    _ties(console, summary.ties)
    _pass_at_k(console, summary.pass_at_k)


def _stats(console: Console, stats: pd.DataFrame, schemes: Sequence[str]) -> None:
    table = Table(title="Rewards per scheme")
    for column, justify in [
        ("scheme", "left"), ("reward", "left"), ("mean", "right"), ("std", "right"),
        ("min", "right"), ("max", "right"), ("of max", "right"), ("nonzero", "right"),
    ]:  # fmt: skip
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for scheme in schemes:
        part = stats[stats["scheme"] == scheme]
        for index, row in enumerate(rows_of(part)):
            style = "bold" if row.reward == "total" else None
            table.add_row(
                scheme if index == 0 else "",
                str(row.reward),
                _num(row.mean),
                _num(row.std),
                _num(row.min),
                _num(row.max),
                _num(row.max_possible),
                _pct(float(row.nonzero)),
                style=style,
                end_section=index == len(part) - 1,
            )
    console.print(table)


def _comparison(console: Console, summary: Summary) -> None:
    assert summary.compared is not None and summary.differences is not None
    first, second = summary.compared
    table = Table(
        title=f"{first} against {second}: {summary.rows_differing:,} of {summary.rows:,} rows"
        " differ in total"
    )
    for column in ["reward", "rows differing", "share", f"mean {second} - {first}"]:
        table.add_column(column, justify="left" if column == "reward" else "right")
    for row in rows_of(summary.differences):
        table.add_row(
            str(row.reward), f"{row.rows_differing:,}", _pct(row.share), _num(row.mean_difference)
        )
    console.print(table)
    rows = summary.difference_rows
    if rows is not None and not rows.empty:
        detail = Table(title=f"First {len(rows)} rows whose totals differ, and why")
        detail.add_column("line", justify="right")
        if rows["id"].notna().any():
            detail.add_column("id")
        detail.add_column(first, justify="right")
        detail.add_column(second, justify="right")
        detail.add_column(f"reward {first}→{second} (reason)")
        for record in rows.to_dict("records"):
            cells = [str(record["line"])]
            if rows["id"].notna().any():
                cells.append(str(record["id"]))
            cells += [_num(record[first]), _num(record[second]), str(record["because"])]
            detail.add_row(*cells)
        console.print(detail)


def _reasons(console: Console, reasons: pd.DataFrame) -> None:
    if reasons.empty:
        return
    for (scheme, reward), part in reasons.groupby(["scheme", "reward"], sort=False):
        below = float(part["share"].sum())
        table = Table(title=f"Why {scheme} {reward} is below its maximum on {below:.1%} of rows")
        table.add_column("reason")
        table.add_column("rows", justify="right")
        table.add_column("share", justify="right")
        table.add_column("value", justify="right")
        table.add_column("meaning")
        for row in rows_of(part):
            table.add_row(
                str(row.reason), f"{row.rows:,}", _pct(row.share), _num(row.value), row.meaning
            )
        console.print(table)


def _ties(console: Console, ties: pd.DataFrame) -> None:
    if ties.empty:
        console.print("[dim]No groups (no prompt_id or prompt field): group statistics skipped.[/]")
        return
    groups = int(ties["groups"].iloc[0])
    table = Table(
        title=f"Groups with zero reward spread ({groups:,} groups of 2+ samples): no GRPO signal"
    )
    for column in ["scheme", "reward", "tied", "all zero", "all max", "other tie"]:
        table.add_column(column, justify="left" if column in {"scheme", "reward"} else "right")
    previous = None
    for row in rows_of(ties):
        table.add_row(
            str(row.scheme) if row.scheme != previous else "",
            str(row.reward),
            _pct(row.tied),
            _pct(row.all_zero),
            _pct(row.all_max),
            _pct(row.other_tie),
            style="bold" if row.reward == "total" else None,
            end_section=bool(row.reward == "total"),
        )
        previous = row.scheme
    console.print(table)


def _pass_at_k(console: Console, table_data: pd.DataFrame) -> None:
    if table_data.empty:
        return
    table = Table(title="pass@k from group correctness (unbiased estimator)")
    table.add_column("scheme")
    ks = sorted(table_data["k"].unique())
    groups = dict(zip(table_data["k"], table_data["groups"], strict=False))
    uneven = len(set(groups.values())) > 1
    for k in ks:
        # With groups of unequal size, say how many groups each k rests on.
        label = f"pass@{k}" + (f"\n({groups[k]} groups)" if uneven else "")
        table.add_column(label, justify="right")
    for scheme, part in table_data.groupby("scheme", sort=False):
        values = dict(zip(part["k"], part["pass_at_k"], strict=True))
        table.add_row(str(scheme), *[_pct(float(values.get(k, math.nan))) for k in ks])
    console.print(table)
