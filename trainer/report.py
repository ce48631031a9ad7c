"""Run folders to summary frames, plots, ``summary.md`` and run-against-run comparisons.

Reads only what a run wrote (the parquet tables, the sample files, ``config.yaml``), so
``rewardkit report`` works on any finished or killed run, on a machine without torch.
Frames here, rich tables in `trainer.console`; files are written atomically.

The "why" of a run is rewardkit's own: the last epoch's samples go through
`rewardkit.score.score_records` and `rewardkit.report.summarize`, the code behind
``rewardkit score``, which names the reason each reward is zero and the share of groups
that tie (zero reward spread: no GRPO signal).
"""

from __future__ import annotations

import json
import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rewardkit.report import Summary, summarize
from rewardkit.schemes import get_scheme
from rewardkit.score import score_records
from trainer.config import COMPUTE_ONLY
from trainer.runfiles import (
    EPOCHS,
    EVAL,
    EVAL_COLUMNS,
    SAMPLES,
    STEPS,
    atomic_write_bytes,
    atomic_write_frame,
)

__all__ = [
    "LEVELS",
    "ReportError",
    "RunData",
    "compare_runs",
    "config_differences",
    "eval_table",
    "incomplete",
    "learning_table",
    "load_run",
    "run_labels",
    "steps_to_reach",
    "write_comparison",
    "write_report",
]

LEVELS = (0.5, 1.0, 2.0)  # reward levels for "steps to reach"
# Every column of steps.parquet the report reads, besides each reward's `_mean` and `_tied`:
# checked when the run is loaded, so a table without one is named, not a KeyError.
STEP_COLUMNS = ("step", "epoch", "total_mean", "zero_spread", "seconds")
SMOOTH = 5  # steps in the rolling mean behind "steps to reach" and the plots


class ReportError(ValueError):
    """A folder that is not a run, or a run file that is damaged: the message names the file."""


@dataclass
class RunData:
    """The tables of one run."""

    root: Path
    config: dict[str, Any]
    steps: pd.DataFrame
    epochs: pd.DataFrame
    evals: pd.DataFrame

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def scheme(self) -> str:
        return str(self.config.get("scheme", "?"))

    @property
    def rewards(self) -> list[str]:
        """The scheme's reward names, in the order of the step table."""
        return [c.removesuffix("_tied") for c in self.steps.columns if c.endswith("_tied")]


def load_run(root: str | Path) -> RunData:
    """The tables of the run folder `root`; `ReportError` naming the file for anything a run
    could not have written (a damaged file, or one edited since: runs write atomically)."""
    import pyarrow as pa
    import yaml

    root = Path(root)
    if not root.exists():
        raise ReportError(
            f"{root}: no such folder; give the folder a `rewardkit train` run wrote, e.g."
            " reports/<run>"
        )
    if (root / "config.yaml").exists() and not (root / STEPS).exists():
        raise ReportError(
            f"{root}: a run folder without {STEPS} yet: a run writes it within seconds of"
            " its first step and at each checkpoint, so this run stopped (or is still"
            " starting) before then; continue it with `rewardkit train --resume"
            f" {shlex.quote(str(root))}`"
        )
    if not (root / "config.yaml").exists() or not (root / STEPS).exists():
        raise ReportError(
            f"{root}: not a run folder (it needs config.yaml and {STEPS}; a run writes them"
            " after its first step)"
        )
    damaged = (
        "a run writes its files whole, so it was damaged or edited since: restore it from a"
        " copy, or train the run again"
    )
    path = root / "config.yaml"
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        reason = str(error).splitlines()[0]
        raise ReportError(f"{path}: not readable YAML ({reason}); {damaged}") from None
    if not isinstance(config, dict):
        raise ReportError(f"{path}: not a mapping of config keys; {damaged}")

    def read(name: str, required: Sequence[str] = ()) -> pd.DataFrame:
        path = root / name
        if not path.exists():
            return pd.DataFrame(columns=list(required))
        try:
            frame = pd.read_parquet(path)
        except (pa.ArrowException, OSError) as error:
            raise ReportError(
                f"{path}: not a readable parquet table ({error}); {damaged}"
            ) from None
        _require(path, frame, required)
        return frame

    steps = read(STEPS, STEP_COLUMNS)
    run = RunData(root, config, steps, read(EPOCHS), read(EVAL, EVAL_COLUMNS))
    _require(root / STEPS, steps, [name + "_mean" for name in run.rewards])
    return run


def incomplete(run: RunData) -> str | None:
    """How far a run that has not reached its last step got, or None for a finished one: a
    run killed (or still training) before its last epoch's end reads like a finished one
    in every table, and its "end" is not the end of training.

    >>> config = {"epochs": 2}
    >>> steps, epochs = pd.DataFrame({"step": range(3)}), pd.DataFrame({"steps": [2]})
    >>> incomplete(RunData(Path("r"), config, steps, epochs, pd.DataFrame()))
    '3 of 4 steps'
    >>> incomplete(RunData(Path("r"), config, steps.head(1), pd.DataFrame(), pd.DataFrame()))
    '1 step, in epoch 1 of 2'
    >>> incomplete(RunData(Path("r"), {"epochs": 1}, steps.head(2), epochs, pd.DataFrame()))
    """
    planned = run.config.get("epochs")
    if not isinstance(planned, int) or isinstance(planned, bool) or len(run.epochs) >= planned:
        return None
    done = len(run.steps)
    if len(run.epochs) and "steps" in run.epochs.columns:  # every epoch has as many steps
        return f"{done} of {planned * int(run.epochs['steps'].iloc[0])} steps"
    return f"{done} step{'' if done == 1 else 's'}, in epoch {len(run.epochs) + 1} of {planned}"


def _require(path: Path, frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ReportError(
            f"{path}: no column(s) {', '.join(missing)}; not a table `rewardkit train` wrote"
            " (or one from another version)"
        )


# --- frames --------------------------------------------------------------------------------


def _window(steps: pd.DataFrame) -> int:
    return max(1, min(10, len(steps) // 10))


def learning_table(run: RunData) -> pd.DataFrame:
    """Per reward and total: mean over the first and the last steps, and the change.

    The window is a tenth of the run (1 to 10 steps). Also the share of groups with zero
    spread in each reward (``tied``), where the scheme gives GRPO nothing to learn from.
    """
    steps, window = run.steps, _window(run.steps)
    rows = []
    for name in [*run.rewards, "total"]:
        start = float(steps[f"{name}_mean"].head(window).mean())
        end = float(steps[f"{name}_mean"].tail(window).mean())
        tied_column = "zero_spread" if name == "total" else f"{name}_tied"
        rows.append(
            {
                "reward": name,
                "start": start,
                "end": end,
                "change": end - start,
                "tied_start": float(steps[tied_column].head(window).mean()),
                "tied_end": float(steps[tied_column].tail(window).mean()),
            }
        )
    return pd.DataFrame(rows)


def eval_table(run: RunData) -> pd.DataFrame:
    """Evaluations: one row per epoch (0 = before training), one column per metric."""
    if run.evals.empty:
        return pd.DataFrame()
    table = run.evals.pivot_table(index="epoch", columns="metric", values="value", sort=False)
    order = [m for m in run.evals["metric"].drop_duplicates() if m in table.columns]
    return table[order].reset_index()


def steps_to_reach(steps: pd.DataFrame, level: float) -> int | None:
    """The first step where the rolling mean total reward reaches `level`, or None.

    >>> steps_to_reach(pd.DataFrame({"step": [1, 2, 3], "total_mean": [0.0, 2.0, 2.0]}), 1.0)
    2
    """
    smooth = steps["total_mean"].rolling(SMOOTH, min_periods=1).mean()
    reached = steps["step"][smooth >= level]
    return None if reached.empty else int(reached.iloc[0])


def run_labels(runs: Sequence[RunData]) -> list[str]:
    """A distinct name for each run: its folder's name, with as many parent folders as it
    takes to tell runs apart (two ``.../run`` folders become ``a/run`` and ``b/run``).

    >>> runs = [RunData(Path(p), {}, *[pd.DataFrame()] * 3) for p in ("x/a/run", "y/b/run")]
    >>> run_labels(runs)
    ['a/run', 'b/run']
    """
    paths = [run.root.resolve() for run in runs]
    twice = sorted({str(p) for p in paths if paths.count(p) > 1})
    if twice:
        raise ReportError(f"{', '.join(twice)}: the same run given twice; compare other runs")
    depth = 1
    while True:
        labels = ["/".join(p.parts[-depth:]) for p in paths]
        if len(set(labels)) == len(labels):
            return labels
        depth += 1


# Config keys in which compared runs may differ: the scheme (what a comparison compares),
# what changes memory, speed or checking but not what a run learns, and logging.
NOT_COMPARED = ("scheme", *COMPUTE_ONLY, "cpu_threads", "save_every", "wandb", "wandb_project")


def config_differences(runs: Sequence[RunData]) -> dict[str, list[str]]:
    """The config keys, besides the scheme and those in `NOT_COMPARED`, whose values differ
    between `runs`, with each run's value as YAML writes it: a comparison of runs that
    differ in these (max_new_tokens, epochs, seed, the model...) is not like for like.

    >>> runs = [RunData(Path(n), c, *[pd.DataFrame()] * 3) for n, c in
    ...         (("a", {"scheme": "strict", "seed": 0, "pass_k": [1, 2], "wandb": False}),
    ...          ("b", {"scheme": "lenient", "seed": 1, "pass_k": [1, 2], "wandb": True}))]
    >>> config_differences(runs)
    {'seed': ['0', '1']}
    """
    keys = list(dict.fromkeys(key for run in runs for key in run.config))
    differences = {}
    for key in keys:
        values = [run.config.get(key) for run in runs]
        if key not in NOT_COMPARED and any(value != values[0] for value in values):
            differences[str(key)] = [_config_text(value) for value in values]
    return differences


def _config_text(value: Any) -> str:
    """A config value as config.yaml writes it: null, true, [1, 4, 8]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return "[" + ", ".join(map(_config_text, value)) + "]"
    return str(value)


def compare_runs(runs: Sequence[RunData]) -> pd.DataFrame:
    """One row per run, side by side: rewards start and end, zero spread, pass@k, speed;
    first, the config keys in which the runs differ besides the scheme (`config_differences`),
    as ``config KEY`` columns."""
    differences = config_differences(runs)
    rows = []
    for index, (run, name) in enumerate(zip(runs, run_labels(runs), strict=True)):
        learning = learning_table(run).set_index("reward")
        row: dict[str, Any] = {"run": name, "scheme": run.scheme}
        row |= {f"config {key}": values[index] for key, values in differences.items()}
        row["steps"] = len(run.steps)
        row["reward_start"] = learning.loc["total", "start"]
        row["reward_end"] = learning.loc["total", "end"]
        # the best mean over the window `reward_end` takes (a tenth of the run): at least
        # the end, since the end is one of those windows
        window = _window(run.steps)
        rolling = run.steps["total_mean"].rolling(window, min_periods=window).mean().max()
        row["reward_best"] = max(float(rolling), row["reward_end"])  # the two round apart
        for name in run.rewards:
            row[f"{name}_end"] = learning.loc[name, "end"]
        row["zero_spread_start"] = learning.loc["total", "tied_start"]
        row["zero_spread_end"] = learning.loc["total", "tied_end"]
        row["zero_spread_mean"] = float(run.steps["zero_spread"].mean())
        for name in run.rewards:  # which rewards never separate completions of a prompt
            row[f"{name}_tied_mean"] = float(run.steps[f"{name}_tied"].mean())
        evals = eval_table(run)
        for metric in [c for c in evals.columns if str(c).startswith("pass@")]:
            row[f"{metric} final"] = float(evals[metric].iloc[-1])
            row[f"{metric} best"] = float(evals[metric].max())
        for level in LEVELS:
            row[f"steps to reward {level:g}"] = steps_to_reach(run.steps, level)
        row["seconds"] = float(run.steps["seconds"].sum())
        rows.append(row)
    frame = pd.DataFrame(rows)
    for level in LEVELS:
        frame[f"steps to reward {level:g}"] = frame[f"steps to reward {level:g}"].astype("Int64")
    return frame


def why_summary(run: RunData, last: int = 1) -> Summary | None:
    """rewardkit's summary of the last `last` epochs' training samples (None without any)."""
    path = run.root / SAMPLES
    if not path.exists() or run.steps.empty:
        return None
    first_epoch = int(run.steps["epoch"].max()) - last + 1
    records = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["epoch"] >= first_epoch:
                records.append({k: record[k] for k in ("completion", "answer", "prompt_id", "id")})
    if not records:
        return None
    scheme = get_scheme(run.scheme)
    return summarize(score_records(records, [scheme], source=str(path)), [scheme])


# --- files ---------------------------------------------------------------------------------


def _markdown(frame: pd.DataFrame, digits: int = 3) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "-" if math.isnan(value) else f"{value:.{digits}f}"
        return "-" if value is None else str(value)

    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body])


NO_PLOTS = "no plots (matplotlib is not installed; it comes with the train extra)"


def summary_markdown(run: RunData, why: Summary | None, plots: Sequence[str] = ()) -> str:
    """The text of ``summary.md``; `plots` names the plot files the run folder has."""
    config = run.config
    learning = learning_table(run)
    total = learning.set_index("reward").loc["total"]
    lines = [
        f"# Run {run.name}",
        "",
        f"Model `{config.get('model')}`, scheme `{run.scheme}`, data `{config.get('dataset')}`,"
        f" {len(run.steps)} steps of {config.get('prompts_per_step')} prompts x"
        f" {config.get('num_generations')} completions, seed {config.get('seed')},"
        f" {run.steps['seconds'].sum():.0f} s of training steps.",
        "",
        f"Mean total reward: **{total['start']:.3f}** over the first {_window(run.steps)} steps,"
        f" **{total['end']:.3f}** over the last (change {total['change']:+.3f}). Groups with"
        f" zero reward spread (no GRPO signal): {total['tied_start']:.0%} at the start,"
        f" {total['tied_end']:.0%} at the end.",
        "",
        "## Rewards at the start and the end",
        "",
        "`tied` is the share of groups in which every completion got the same value of that"
        " reward: it teaches nothing there.",
        "",
        _markdown(learning),
        "",
    ]
    silent = [
        f"{name} ({run.steps[f'{name}_tied'].mean():.0%})"
        for name in run.rewards
        if run.steps[f"{name}_tied"].mean() >= 0.95
    ]
    if silent:
        lines += [
            "Rewards tied within (nearly) every group over the whole run, so they gave GRPO"
            f" no signal: {', '.join(silent)}.",
            "",
        ]
    evals = eval_table(run)
    if not evals.empty:
        lines += ["## Evaluation (epoch 0 is before training)", "", _markdown(evals), ""]
    if why is not None:
        lines += ["## Why rewards are what they are (last epoch's samples, rewardkit)", ""]
        lines += [f"- {note}" for note in why.notes] or ["- nothing stands out"]
        if not why.reasons.empty:
            top = why.reasons.groupby("reward", sort=False).head(3)
            lines += ["", _markdown(top[["reward", "reason", "share", "value", "meaning"]])]
        lines.append("")
    rescore = f"rewardkit score samples.jsonl --scheme {shlex.quote(run.scheme)}"
    lines += [
        "## Files",
        "",
        f"`steps.parquet`, `epochs.parquet`, `eval.parquet`; `samples.jsonl` (re-score with"
        f" `{rescore}`); "
        + ("plots " + ", ".join(f"`{name}`" for name in plots) if plots else NO_PLOTS)
        + "; the final model in `model/`.",
        "",
    ]
    return "\n".join(lines)


def write_report(root: str | Path) -> list[Path]:
    """Write ``summary.md`` and the plots of the run at `root`; return the files written."""
    run = load_run(root)
    plots = plot_run(run)
    text = summary_markdown(run, why_summary(run), [p.name for p in plots])
    atomic_write_bytes(run.root / "summary.md", text.encode())
    return [run.root / "summary.md", *plots]


def write_comparison(runs: Sequence[RunData], out: Path) -> tuple[pd.DataFrame, list[Path]]:
    """``comparison.csv`` and ``comparison.png`` in `out`; the comparison frame."""
    frame = compare_runs(runs)
    blocker = next((p for p in (out, *out.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise ReportError(f"{out}: {blocker} is a file, not a folder; pass another --out")
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "comparison.csv"]
    atomic_write_frame(written[0], frame)
    written += plot_comparison(runs, out / "comparison.png")
    return frame, written


# --- plots ---------------------------------------------------------------------------------


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, path: Path) -> Path:
    tmp = path.with_name(f".{path.stem}.tmp.png")
    figure.savefig(tmp, dpi=110, bbox_inches="tight")
    tmp.replace(path)
    return path


def plot_run(run: RunData) -> list[Path]:
    """rewards.png, zero_spread.png, pass_at_k.png (that one only when the scheme has a
    correctness reward to count passes by; none without matplotlib)."""
    plt = _pyplot()
    if plt is None or run.steps.empty:
        return []
    steps, written = run.steps, []
    figure, axis = plt.subplots(figsize=(7, 4))
    for name in [*run.rewards, "total"]:
        smooth = steps[f"{name}_mean"].rolling(SMOOTH, min_periods=1).mean()
        # The total dashed and black: where one reward is all of it (strict's mark in the
        # example), a solid total would hide that reward's line.
        style = {"color": "black", "linestyle": "--", "linewidth": 2} if name == "total" else {}
        axis.plot(steps["step"], smooth, label=name, **style)
    axis.set(
        xlabel="step",
        ylabel=f"mean reward (rolling {SMOOTH})",
        title=f"{run.name}: reward per component"
        + ("" if run.name == run.scheme else f" ({run.scheme})"),
    )
    axis.legend()
    written.append(_save(figure, run.root / "rewards.png"))
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(7, 4))
    axis.plot(steps["step"], steps["zero_spread"], label="total", linewidth=2.5)
    for name in run.rewards:
        axis.plot(steps["step"], steps[f"{name}_tied"], label=name, alpha=0.7)
    axis.set(
        xlabel="step",
        ylabel="share of groups",
        ylim=(-0.02, 1.02),
        title=f"{run.name}: groups with zero reward spread (no signal)",
    )
    axis.legend()
    written.append(_save(figure, run.root / "zero_spread.png"))
    plt.close(figure)

    evals = eval_table(run)
    passes = [c for c in evals.columns if str(c).startswith("pass@")]
    if passes:  # none when the scheme has no correctness reward to count a pass by
        figure, axis = plt.subplots(figsize=(7, 4))
        for metric in passes:
            axis.plot(evals["epoch"], evals[metric], marker="o", label=metric)
        axis.set(
            xlabel="epoch (0 = before training)",
            ylabel="share of test problems",
            ylim=(-0.02, 1.02),
            title=f"{run.name}: pass@k on the test split",
        )
        axis.legend()
        written.append(_save(figure, run.root / "pass_at_k.png"))
        plt.close(figure)
    return written


def plot_comparison(runs: Sequence[RunData], path: Path) -> list[Path]:
    plt = _pyplot()
    if plt is None:
        return []
    figure, axes = plt.subplots(1, 3, figsize=(15, 4))
    for run, name in zip(runs, run_labels(runs), strict=True):
        label = name if name == run.scheme else f"{name} ({run.scheme})"
        smooth = run.steps["total_mean"].rolling(SMOOTH, min_periods=1).mean()
        axes[0].plot(run.steps["step"], smooth, label=label)
        axes[1].plot(run.steps["step"], run.steps["zero_spread"], label=label)
        evals = eval_table(run)
        passes = [c for c in evals.columns if str(c).startswith("pass@")]
        if passes:  # greedy pass@1 (solid) and the largest sampled pass@k (dashed)
            line = axes[2].plot(evals["epoch"], evals[passes[0]], marker="o", label=label)[0]
            axes[2].plot(
                evals["epoch"],
                evals[passes[-1]],
                marker="o",
                linestyle="--",
                color=line.get_color(),
                label=f"{label} {passes[-1]}",
            )
    axes[0].set(xlabel="step", ylabel=f"mean total reward (rolling {SMOOTH})", title="reward")
    axes[1].set(
        xlabel="step",
        ylabel="share of groups",
        ylim=(-0.02, 1.02),
        title="zero reward spread (no signal)",
    )
    axes[2].set(
        xlabel="epoch (0 = before training)",
        ylabel="share of test problems",
        ylim=(-0.02, 1.02),
        title="pass@1 (greedy) and pass@k",
    )
    for axis in axes:
        axis.legend()
    _save(figure, path)
    plt.close(figure)
    return [path]
