"""Summary frames to rich tables. Reads `rewardkit.report.Summary`; computes nothing new.

Everything that comes from the data or from a user's scheme (paths, ids, scheme and reward
names, reason codes, messages) goes through `_text` or `escape`: rich reads ``[...]`` as
markup, so an id like ``gsm8k[test]-0`` would lose its brackets and ``a[/]`` would crash.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rewardkit.report import Summary, rows_of
from rewardkit.score import ScoreResult

__all__ = ["render_input", "render_summary"]


def _count(n: int, noun: str) -> str:
    """`n` and `noun`, plural unless `n` is 1.

    >>> _count(1, "row"), _count(1200, "row")
    ('1 row', '1,200 rows')
    """
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _text(value: object) -> str:
    r"""`value` as table text, shown as it is (no markup read in it).

    >>> print(_text("gsm8k[test]-0"))
    gsm8k\[test]-0
    """
    return escape(str(value))


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
        f"[bold]{_text(result.path)}[/]: {_count(result.rows_scored, 'row')} scored under"
        f" {_text(schemes)} ({_count(result.lines_read, 'line')} read)"
    )
    if result.blank_lines:
        console.print(f"[yellow]{result.blank_lines:,} blank line(s) ignored[/]")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {_text(warning)}")
    if result.skipped:
        table = Table(title=f"{len(result.skipped):,} line(s) skipped (--on-error skip)")
        table.add_column("line", justify="right")
        table.add_column("problem", overflow="fold")
        table.add_column("detail")
        for item in result.skipped[:max_listed]:
            table.add_row(str(item.line), _text(item.code), _text(item.message))
        if len(result.skipped) > max_listed:
            table.add_row("...", f"{len(result.skipped) - max_listed:,} more", "")
        console.print(table)


def render_summary(console: Console, summary: Summary, schemes: Sequence[str]) -> None:
    """Every table of `rewardkit score`, most actionable first."""
    if summary.notes:
        console.print("[bold]What stands out[/]")
        for note in summary.notes:
            console.print(f"  [red]•[/] {_text(note)}")
        console.print()
    _stats(console, summary.stats, schemes)
    if summary.compared is not None and summary.differences is not None:
        _comparison(console, summary)
    _reasons(console, summary.reasons)
    _groups(console, summary)
    _pass_at_k(console, summary.pass_at_k, summary.largest_group)


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
                _text(scheme) if index == 0 else "",
                _text(row.reward),
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
        title=f"{_text(first)} against {_text(second)}: {summary.rows_differing:,} of"
        f" {summary.rows:,} rows differ in total"
    )
    for column in ["reward", "rows differing", "share", f"mean {second} - {first}"]:
        table.add_column(_text(column), justify="left" if column == "reward" else "right")
    for row in rows_of(summary.differences):
        table.add_row(
            _text(row.reward), f"{row.rows_differing:,}", _pct(row.share), _num(row.mean_difference)
        )
    console.print(table)
    rows = summary.difference_rows
    if rows is not None and not rows.empty:
        detail = Table(title=f"First {len(rows)} rows whose totals differ, and why")
        detail.add_column("line", justify="right")
        if rows["id"].notna().any():
            detail.add_column("id", overflow="fold")
        detail.add_column(_text(first), justify="right")
        detail.add_column(_text(second), justify="right")
        detail.add_column(_text(f"reward {first}→{second} (reason)"))
        for record in rows.to_dict("records"):
            cells = [str(record["line"])]
            if rows["id"].notna().any():
                cells.append(_text(record["id"]))
            cells += [_num(record[first]), _num(record[second]), _text(record["because"])]
            detail.add_row(*cells)
        console.print(detail)


def _reasons(console: Console, reasons: pd.DataFrame) -> None:
    if reasons.empty:
        return
    for (scheme, reward), part in reasons.groupby(["scheme", "reward"], sort=False):
        below = float(part["share"].sum())
        what = str(part["what"].iloc[0])
        table = Table(title=f"Why {_text(scheme)} {_text(reward)} is {what} on {below:.1%} of rows")
        table.add_column("reason", overflow="fold")  # a code cut short reads as another code
        table.add_column("rows", justify="right")
        table.add_column("share", justify="right")
        table.add_column("value", justify="right")
        table.add_column("meaning")
        for row in rows_of(part):
            table.add_row(
                _text(row.reason),
                f"{row.rows:,}",
                _pct(row.share),
                _num(row.value),
                _text(row.meaning),
            )
        console.print(table)


def _groups(console: Console, summary: Summary) -> None:
    """The zero-spread table, or why there is none, and the rows it leaves out."""
    if summary.groups == 0:
        console.print(
            "[dim]No groups (no prompt_id or prompt field): group statistics skipped. If"
            " another field names the prompt (GSM8K's is question), pass --group-key FIELD.[/]"
        )
        return
    if summary.ungrouped_rows:
        console.print(
            f"[yellow]{summary.ungrouped_rows:,} of {summary.rows:,} rows have no prompt_id or"
            " prompt: they are left out of the group statistics and pass@k (--group-key FIELD"
            " groups by another field)[/]"
        )
    if summary.largest_group < 2:
        console.print(
            f"[dim]Every group has one sample ({_count(summary.groups, 'group')}): zero spread and"
            " pass@k for k > 1 need several samples per prompt.[/]"
        )
        return
    _ties(console, summary.ties)


def _ties(console: Console, ties: pd.DataFrame) -> None:
    if ties.empty:
        return
    groups = int(ties["groups"].iloc[0])
    table = Table(
        title=f"Groups with zero reward spread ({_count(groups, 'group')} of"
        " 2+ samples): no GRPO signal"
    )
    for column in ["scheme", "reward", "tied", "all zero", "all max", "other tie"]:
        table.add_column(column, justify="left" if column in {"scheme", "reward"} else "right")
    previous = None
    for row in rows_of(ties):
        table.add_row(
            _text(row.scheme) if row.scheme != previous else "",
            _text(row.reward),
            _pct(row.tied),
            _pct(row.all_zero),
            _pct(row.all_max),
            _pct(row.other_tie),
            style="bold" if row.reward == "total" else None,
            end_section=bool(row.reward == "total"),
        )
        previous = row.scheme
    console.print(table)


def _pass_at_k(console: Console, table_data: pd.DataFrame, largest_group: int) -> None:
    if table_data.empty:
        return
    if not (table_data["groups"] > 0).any():  # every k asked for is out of reach
        shown = ", ".join(f"pass@{k}" for k in sorted(table_data["k"].unique()))
        console.print(
            f"[yellow]{shown}: no group has that many samples (the largest has"
            f" {largest_group}); pass@k needs k <= the samples per prompt[/]"
        )
        return
    table = Table(
        title="pass@k from group correctness (pass@1: the samples' mean; pass@k: the"
        " unbiased estimator over the groups of k or more)"
    )
    table.add_column("scheme")
    ks = sorted(table_data["k"].unique())
    groups = dict(zip(table_data["k"], table_data["groups"], strict=False))
    uneven = len(set(groups.values())) > 1
    for k in ks:
        # With groups of unequal size, say how many groups each k rests on.
        label = f"pass@{k}" + (f"\n({_count(groups[k], 'group')})" if uneven else "")
        table.add_column(label, justify="right")
    falls = []  # schemes whose pass@k is lower at some larger k
    for scheme, part in table_data.groupby("scheme", sort=False):
        values = dict(zip(part["k"], part["pass_at_k"], strict=True))
        table.add_row(_text(scheme), *[_pct(float(values.get(k, math.nan))) for k in ks])
        curve = [values[k] for k in ks if k in values and not math.isnan(values[k])]
        if any(later < earlier for earlier, later in itertools.pairwise(curve)):
            falls.append(str(scheme))
    console.print(table)
    if falls:  # only unequal groups do that: per group, pass@k never falls as k grows
        console.print(
            f"[yellow]{_text(', '.join(falls))}: pass@k falls as k grows because the groups"
            " differ in size: each pass@k is the mean over the groups of k or more samples,"
            " and pass@1 the mean over samples (larger groups weigh more)[/]"
        )
    missing = [k for k in ks if groups[k] == 0]
    if missing:
        shown = ", ".join(f"pass@{k}" for k in missing)
        console.print(
            f"[yellow]{shown}: no group has that many samples (the largest has"
            f" {largest_group}); pass@k needs k <= the samples per prompt[/]"
        )
