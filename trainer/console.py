"""What a run shows on the console while it trains: rich tables and a progress bar.

On a terminal a live area holds the latest step's rewards per component (mean, std, min,
max), the last steps' metrics and a progress bar; epoch summaries and evaluations are
printed above it and stay. Elsewhere (a pipe, CI, a test) each step is one plain line.
Reads rows the loop has already written; computes nothing new.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

__all__ = ["STEP_COLUMNS", "Display", "fmt"]

# (row key, header) of the per-step metrics, as in the list.
STEP_COLUMNS = (
    ("step", "step"),
    ("total_mean", "reward"),
    ("total_std", "std"),
    ("zero_spread", "zero spread"),
    ("loss", "loss"),
    ("kl", "KL"),
    ("clip_fraction", "clip"),
    ("completion_len", "length"),
    ("gen_tokens_per_s", "gen tok/s"),
    ("update_tokens_per_s", "update tok/s"),
)
HISTORY = 8


def fmt(value: Any, digits: int = 3) -> str:
    """A number for a table cell: short, NaN as '-'.

    >>> fmt(0.123456), fmt(12345.6), fmt(float("nan")), fmt(3)
    ('0.123', '12,346', '-', '3')
    """
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    number = float(value)
    if abs(number) >= 1000:
        return f"{number:,.0f}"
    return f"{number:.{digits}f}"


class Display:
    """The console side of a run. `Display(Console(quiet=True))` shows nothing."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.live_mode = self.console.is_terminal
        self.progress = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
        )
        self.task = self.progress.add_task("training", total=None)
        self.history: list[Mapping[str, Any]] = []
        self.live: Live | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self, total_steps: int, done_steps: int) -> None:
        self.progress.update(self.task, total=total_steps, completed=done_steps)
        if self.live_mode:
            self.live = Live(self._renderable(), console=self.console, refresh_per_second=4)
            self.live.start()

    def finish(self, root: Path, plotted: bool = True) -> None:
        from trainer.report import NO_PLOTS

        self.close()
        plots = "plots" if plotted else NO_PLOTS
        self.console.print(
            f"[bold green]done[/]: {escape(str(root))} (summary.md, steps/epochs/eval .parquet,"
            f" samples.jsonl, {plots}, model/)"
        )

    def close(self) -> None:
        """Stop the live area (also after an error, so the terminal is left clean)."""
        if self.live is not None:
            self.live.stop()
            self.live = None

    # --- events ---------------------------------------------------------------------------

    def message(self, text: str) -> None:
        self.console.print(text)

    def warning(self, text: str) -> None:
        self.console.print(f"[yellow]warning:[/] {escape(text)}")

    def step(self, row: Mapping[str, Any]) -> None:
        self.history = [*self.history[-(HISTORY - 1) :], row]
        self.progress.update(self.task, completed=row["step"])
        if self.live is not None:
            self.live.update(self._renderable())
            return
        cells = "  ".join(f"{header} {fmt(row[key])}" for key, header in STEP_COLUMNS)
        self.console.print(cells, highlight=False, soft_wrap=True)

    def evaluation(self, epoch: int, rows: Sequence[Mapping[str, Any]]) -> None:
        """The evaluation before training; later ones are shown in the epoch summary."""
        if epoch == 0:
            self.console.print(_pairs("Test split, before training", rows))

    def epoch(self, row: Mapping[str, Any], evals: Sequence[Mapping[str, Any]]) -> None:
        """The epoch's training summary, then its evaluation, in one table."""
        summary = [
            {"metric": key, "value": row[key]}
            for key in ("accumulated_reward", "mean_reward", "samples_seen", "zero_spread")
        ]
        self.console.print(_pairs(f"Epoch {row['epoch']}, then test split", summary, evals))

    # --- the live area --------------------------------------------------------------------

    def _renderable(self) -> Group:
        parts: list[Any] = []
        if self.history:
            parts += [self._history_table(), self._reward_table(self.history[-1])]
        return Group(*parts, self.progress)

    def _history_table(self) -> Table:
        table = Table(title="Steps")
        for _, header in STEP_COLUMNS:
            table.add_column(header, justify="right")
        for row in self.history:
            table.add_row(*[fmt(row[key]) for key, _ in STEP_COLUMNS])
        return table

    @staticmethod
    def _reward_table(row: Mapping[str, Any]) -> Table:
        table = Table(title=f"Rewards of step {row['step']} ({row['completions']} completions)")
        for column in ("reward", "mean", "std", "min", "max"):
            table.add_column(column, justify="left" if column == "reward" else "right")
        names = [k.removesuffix("_mean") for k in row if k.endswith("_mean")]
        for name in names:
            table.add_row(
                escape(name),  # a scheme file's reward name: its brackets are not markup
                *[fmt(row[f"{name}_{s}"]) for s in ("mean", "std", "min", "max")],
                style="bold" if name == "total" else None,
            )
        return table


def _pairs(
    title: str, rows: Sequence[Mapping[str, Any]], more: Sequence[Mapping[str, Any]] = ()
) -> Table:
    """Two columns, measure and value; `more` rows follow a rule (the evaluation)."""
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", justify="right")
    for index, row in enumerate(rows):
        table.add_row(
            escape(str(row["metric"])), fmt(row["value"]), end_section=index == len(rows) - 1
        )
    for row in more:
        table.add_row(escape(str(row["metric"])), fmt(row["value"]))
    return table


# --- `rewardkit report` ----------------------------------------------------------------------


def frame_table(frame: Any, title: str, digits: int = 3) -> Table:
    """Any small DataFrame as a rich table (numbers right-aligned)."""
    table = Table(title=title)
    for column in frame.columns:
        numeric = str(frame[column].dtype) != "object"
        table.add_column(escape(str(column)), justify="right" if numeric else "left")
    for row in frame.itertuples(index=False):
        table.add_row(*[fmt(v, digits) if not isinstance(v, str) else escape(v) for v in row])
    return table


def show(console: Console, table: Table) -> None:
    """Print `table`; into a pipe or a file at its natural width. Rich fits a table to 80
    columns there and cuts numbers to "0.2…", which reads as another number; a terminal
    keeps its own width."""
    if console.is_terminal:
        console.print(table)
        return
    width = console.width
    wide = console.options.update(max_width=10_000)
    console.width = max(width, console.measure(table, options=wide).maximum)
    try:
        console.print(table)
    finally:
        console.width = width


def render_run(console: Console, run: Any) -> None:
    """One run: rewards at the start and end, zero spread, evaluations."""
    from trainer.report import eval_table, incomplete, learning_table

    far = incomplete(run)
    steps = (
        f"[yellow]incomplete: {far}[/] (it stopped before its last step, or is still training)"
        if far is not None
        else f"{len(run.steps)} steps"
    )
    console.print(f"[bold]{escape(str(run.root))}[/]: scheme {escape(str(run.scheme))}, {steps}")
    title = "Rewards: first and last steps (tied: zero-spread groups)"
    show(console, frame_table(learning_table(run), title))
    evals = eval_table(run)
    if not evals.empty:
        show(console, frame_table(evals, "Evaluation (epoch 0 is before training)"))


def render_comparison(console: Console, frame: Any) -> None:
    """The comparison frame turned on its side: one column per run, one row per measure."""
    sideways = frame.set_index("run").T.reset_index().rename(columns={"index": "measure"})
    table = Table(title="Runs side by side")
    table.add_column("measure")
    for run in frame["run"]:
        table.add_column(escape(str(run)), justify="right")
    for row in sideways.itertuples(index=False):
        measure, *values = row
        table.add_row(
            escape(str(measure)), *[escape(v) if isinstance(v, str) else fmt(v) for v in values]
        )
    show(console, table)
