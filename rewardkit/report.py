"""Scored frame to summary frames: the numbers behind every table `rewardkit score` prints.

No I/O and no printing here (that is `rewardkit.console`). Each function takes the long
frame of `rewardkit.score` (one row per line per scheme) and returns a small DataFrame.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rewardkit.passk import pass_at_k
from rewardkit.rewards import REASONS
from rewardkit.schemes import Scheme, SchemeLike, schemes_of

__all__ = [
    "Summary",
    "default_ks",
    "group_ties",
    "pass_at_k_table",
    "reason_breakdown",
    "reward_stats",
    "rows_of",
    "scheme_differences",
    "summarize",
]

# A reward is "zero on many rows" when at least this share of rows are below its maximum.
MANY_ROWS = 0.10


def rows_of(frame: pd.DataFrame) -> Iterator[Any]:
    """The rows of a summary frame as named tuples (typed loosely: the columns vary)."""
    return iter(frame.itertuples())


def _columns(scheme: Scheme) -> list[str]:
    return [*scheme.reward_names, "total"]


def _maximum(scheme: Scheme, column: str) -> float | None:
    if column == "total":
        return scheme.max_total
    return next(r.max for r in scheme.rewards if r.name == column)


def reward_stats(frame: pd.DataFrame, schemes: Sequence[Scheme]) -> pd.DataFrame:
    """Per scheme and reward: mean, std, min, max, share of rows with a nonzero value.

    >>> from rewardkit.schemes import STRICT
    >>> from rewardkit.score import score_records
    >>> f = score_records([{"completion": "<answer>1</answer>", "answer": "1"},
    ...                    {"completion": "2", "answer": "1"}], [STRICT])
    >>> row = reward_stats(f, [STRICT]).set_index("reward").loc["correctness"]
    >>> float(row["mean"]), float(row["nonzero"])
    (1.0, 0.5)
    """
    rows = []
    for scheme in schemes:
        part = frame[frame["scheme"] == scheme.name]
        for column in _columns(scheme):
            values = part[column].to_numpy(dtype=float)
            rows.append(
                {
                    "scheme": scheme.name,
                    "reward": column,
                    "mean": float(values.mean()),
                    "std": float(values.std(ddof=0)),
                    "min": float(values.min()),
                    "max": float(values.max()),
                    "nonzero": float((values != 0).mean()),
                    "max_possible": _maximum(scheme, column),
                }
            )
    return pd.DataFrame(rows)


def scheme_differences(
    frame: pd.DataFrame, first: Scheme, second: Scheme, limit: int = 20
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Where two schemes disagree.

    Returns ``(per_reward, rows, rows_differing)``: per shared reward, how many rows differ
    and by how much on average; up to `limit` example rows whose totals differ, with the
    rewards that made the difference; and how many rows' totals differ in all.
    """
    a = frame[frame["scheme"] == first.name].set_index("line")
    b = frame[frame["scheme"] == second.name].set_index("line")
    shared = [n for n in first.reward_names if n in second.reward_names]
    per_reward = []
    for name in shared:
        delta = b[name].to_numpy(float) - a[name].to_numpy(float)
        per_reward.append(
            {
                "reward": name,
                "rows_differing": int((delta != 0).sum()),
                "share": float((delta != 0).mean()),
                "mean_difference": float(delta.mean()),
            }
        )
    total_delta = b["total"].to_numpy(float) - a["total"].to_numpy(float)
    differing = np.flatnonzero(total_delta != 0)
    examples = []
    for position in differing[:limit]:
        ra, rb = a.iloc[position], b.iloc[position]
        changes = [
            f"{n} {ra[n]:g}→{rb[n]:g} ({_reason_change(ra[n + '_reason'], rb[n + '_reason'])})"
            for n in shared
            if ra[n] != rb[n]
        ]
        examples.append(
            {
                "line": int(a.index[position]),
                "id": ra["id"] if "id" in a.columns else None,
                first.name: float(ra["total"]),
                second.name: float(rb["total"]),
                "because": "; ".join(changes),
            }
        )
    return pd.DataFrame(per_reward), pd.DataFrame(examples), len(differing)


def _reason_change(old: object, new: object) -> str:
    return str(old) if old == new else f"{old}→{new}"


def reason_breakdown(
    frame: pd.DataFrame, schemes: Sequence[Scheme], threshold: float = MANY_ROWS
) -> pd.DataFrame:
    """For every reward below its maximum on at least `threshold` of rows: why, by reason.

    Columns: scheme, reward, reason, rows, share (of all rows), value (mean value of those
    rows), meaning (the sentence from `REASONS` for a built-in reward, blank for a custom
    one, whose codes are its own), what ("below its maximum", or "0" for a custom reward
    that declares no `max`: then its zeros are counted). A custom reward with a negative
    weight and no `max` is left out: nothing says which of its values are the bad ones.
    """
    rows: list[dict[str, Any]] = []
    for scheme in schemes:
        part = frame[frame["scheme"] == scheme.name]
        total_rows = len(part)
        for reward in scheme.rewards:
            if reward.max is None and reward.weight < 0:
                continue
            what = "below its maximum" if reward.max is not None else "0"
            below = (
                part[part[reward.name] < reward.max]
                if reward.max is not None
                else part[part[reward.name] == 0]
            )
            if total_rows == 0 or len(below) / total_rows < threshold:
                continue
            counts = below.groupby(reward.name + "_reason", observed=True)[reward.name].agg(
                ["size", "mean"]
            )
            for reason, stats in counts.sort_values("size", ascending=False).iterrows():
                rows.append(
                    {
                        "scheme": scheme.name,
                        "reward": reward.name,
                        "reason": str(reason),
                        "rows": int(stats["size"]),
                        "share": float(stats["size"]) / total_rows,
                        "value": float(stats["mean"]),
                        "meaning": REASONS.get(str(reason), "") if reward.builtin else "",
                        "what": what,
                    }
                )
    return pd.DataFrame(
        rows, columns=["scheme", "reward", "reason", "rows", "share", "value", "meaning", "what"]
    )


def group_ties(frame: pd.DataFrame, schemes: Sequence[Scheme]) -> pd.DataFrame:
    """Per scheme and reward: the share of groups (2+ rows) whose values all tie.

    A tied group has zero reward spread, so its GRPO advantages are all zero and it teaches
    nothing. Ties are split into all at zero, all at the reward's maximum, and other.
    Empty when the frame has no ``group`` column.
    """
    columns = ["scheme", "reward", "groups", "tied", "all_zero", "all_max", "other_tie"]
    if "group" not in frame.columns:
        return pd.DataFrame(columns=columns)
    rows = []
    for scheme in schemes:
        part = frame[frame["scheme"] == scheme.name]
        sizes = part.groupby("group", sort=False).size()
        multi = part[part["group"].isin(sizes[sizes >= 2].index)]
        if multi.empty:
            continue
        grouped = multi.groupby("group", sort=False)
        for column in _columns(scheme):
            low = grouped[column].min()
            high = grouped[column].max()
            tied = low == high
            maximum = _maximum(scheme, column)
            all_zero = tied & (low == 0)
            all_max = tied & (high == maximum) if maximum is not None else tied & False
            count = len(low)
            rows.append(
                {
                    "scheme": scheme.name,
                    "reward": column,
                    "groups": count,
                    "tied": float(tied.mean()),
                    "all_zero": float(all_zero.mean()),
                    "all_max": float(all_max.mean()),
                    "other_tie": float((tied & ~all_zero & ~all_max).mean()),
                }
            )
    return pd.DataFrame(rows, columns=columns)


def default_ks(sizes: Sequence[int]) -> list[int]:
    """1, the powers of two below the largest group, and the largest group size.

    >>> default_ks([8, 8, 5])
    [1, 2, 4, 8]
    >>> default_ks([5])
    [1, 2, 4, 5]
    """
    largest = max(sizes, default=1)
    ks = [1]
    k = 2
    while k < largest:
        ks.append(k)
        k *= 2
    if largest > 1:
        ks.append(largest)
    return ks


def pass_at_k_table(
    frame: pd.DataFrame, schemes: Sequence[Scheme], ks: Sequence[int] | None = None
) -> pd.DataFrame:
    """Per scheme and k: the mean unbiased pass@k over groups with at least k samples.

    A sample is correct when its ``correctness`` is above zero; schemes without a
    ``correctness`` reward are left out. pass@1 is the mean correctness of all samples, as
    the spec defines the sampled pass@1 (with unequal group sizes this weighs groups by
    size). A group with fewer than k samples cannot give pass@k and is left out of that k:
    the ``groups`` column says how many groups each value rests on. Empty without a
    ``group`` column.
    """
    columns = ["scheme", "k", "groups", "pass_at_k"]
    if "group" not in frame.columns:
        return pd.DataFrame(columns=columns)
    rows = []
    for scheme in schemes:
        if "correctness" not in scheme.reward_names:
            continue
        part = frame[frame["scheme"] == scheme.name]
        correct = (part["correctness"] > 0).groupby(part["group"], sort=False)
        counts = correct.agg(["size", "sum"]).rename(columns={"size": "n", "sum": "c"})
        wanted = list(ks) if ks else default_ks(counts["n"].tolist())
        for k in wanted:
            usable = counts[counts["n"] >= k]
            if usable.empty:
                rows.append({"scheme": scheme.name, "k": k, "groups": 0, "pass_at_k": math.nan})
                continue
            if k == 1:
                value = float(usable["c"].sum() / usable["n"].sum())
            else:
                pairs = zip(usable["n"], usable["c"], strict=True)
                value = float(np.mean([pass_at_k(int(n), int(c), k) for n, c in pairs]))
            rows.append({"scheme": scheme.name, "k": k, "groups": len(usable), "pass_at_k": value})
    return pd.DataFrame(rows, columns=columns)


@dataclass
class Summary:
    """Everything `rewardkit score` shows, as data."""

    rows: int
    stats: pd.DataFrame
    reasons: pd.DataFrame
    ties: pd.DataFrame
    pass_at_k: pd.DataFrame
    differences: pd.DataFrame | None = None
    difference_rows: pd.DataFrame | None = None
    rows_differing: int = 0
    compared: tuple[str, str] | None = None
    notes: list[str] = field(default_factory=list)
    groups: int = 0  # groups of any size (rows with the same prompt_id, else prompt)
    largest_group: int = 0
    ungrouped_rows: int = 0  # rows in no group: left out of group ties and pass@k

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN becomes None)."""

        def records(df: pd.DataFrame | None) -> list[dict[str, Any]]:
            if df is None:
                return []
            clean = df.astype(object).where(pd.notna(df), None)
            return [{str(k): v for k, v in r.items()} for r in clean.to_dict("records")]

        return {
            "rows": self.rows,
            "groups": self.groups,
            "largest_group": self.largest_group,
            "ungrouped_rows": self.ungrouped_rows,
            "stats": records(self.stats),
            "reasons": records(self.reasons),
            "group_ties": records(self.ties),
            "pass_at_k": records(self.pass_at_k),
            "comparison": None
            if self.compared is None
            else {
                "schemes": list(self.compared),
                "rows_differing": self.rows_differing,
                "per_reward": records(self.differences),
                "examples": records(self.difference_rows),
            },
            "notes": self.notes,
        }


def summarize(
    frame: pd.DataFrame,
    schemes: SchemeLike | Iterable[SchemeLike],
    ks: Sequence[int] | None = None,
    examples: int = 20,
) -> Summary:
    """All the summary frames, plus a strict/lenient comparison when both are present.

    Rows are counted per scheme, not per input line: an lm-eval line holds several.

    >>> from rewardkit.schemes import STRICT
    >>> from rewardkit.score import score_records
    >>> f = score_records([{"completion": "<answer>1</answer>", "answer": "1", "prompt_id": "a"},
    ...                    {"completion": "2", "answer": "1", "prompt_id": "a"},
    ...                    {"completion": "2", "answer": "1"}], [STRICT])
    >>> s = summarize(f, [STRICT])
    >>> s.rows, s.groups, s.largest_group, s.ungrouped_rows
    (3, 1, 2, 1)
    """
    schemes = schemes_of(schemes)
    if frame.empty:
        raise ValueError("the frame has no rows (no records were scored): nothing to summarize")
    scored = set(frame["scheme"].unique()) if "scheme" in frame.columns else set()
    if missing := [s.name for s in schemes if s.name not in scored]:
        raise ValueError(
            f"the frame holds no rows of the scheme(s) {', '.join(missing)} (it holds:"
            f" {', '.join(sorted(map(str, scored))) or 'none'}); summarize a frame under the"
            " schemes it was scored with"
        )
    one = frame[frame["scheme"] == schemes[0].name]
    sizes = one["group"].value_counts() if "group" in one.columns else pd.Series(dtype=int)
    summary = Summary(
        rows=len(one),
        stats=reward_stats(frame, schemes),
        reasons=reason_breakdown(frame, schemes),
        ties=group_ties(frame, schemes),
        pass_at_k=pass_at_k_table(frame, schemes, ks),
        groups=len(sizes),
        largest_group=int(sizes.max()) if len(sizes) else 0,
        ungrouped_rows=len(one) - int(sizes.sum()),
    )
    if len(schemes) >= 2:
        first, second = schemes[0], schemes[1]
        names = [s.name for s in schemes]
        if "strict" in names and "lenient" in names:
            first = schemes[names.index("strict")]
            second = schemes[names.index("lenient")]
        per_reward, examples_frame, differing = scheme_differences(
            frame, first, second, max(examples, 0)
        )
        summary.differences = per_reward
        summary.difference_rows = examples_frame
        summary.rows_differing = differing
        summary.compared = (first.name, second.name)
    summary.notes = _notes(summary)
    return summary


def _notes(summary: Summary) -> list[str]:
    """Plain-language findings: the first thing a person should look at."""
    notes = []
    reasons = summary.reasons
    for (scheme, reward), part in reasons.groupby(["scheme", "reward"], sort=False):
        below = float(part["share"].sum())
        if below < 0.5 - 1e-9:  # shares summed as floats: 31/78 + 4/78 + 4/78 < 0.5
            continue
        top = part.iloc[0]
        zero = part[part["value"] == 0]["share"].sum()
        what = "0" if zero >= below - 1e-12 else str(top["what"])
        notes.append(
            f"{scheme} {reward} is {what} on {below:.0%} of rows; most often"
            f" {top['reason']} ({top['share']:.0%} of rows): {top['meaning'] or 'custom reason'}"
        )
    for row in rows_of(summary.ties):
        if row.reward == "total" and row.tied >= 0.5:
            notes.append(
                f"{row.scheme}: {row.tied:.0%} of groups have the same total on every sample"
                " (zero advantage: GRPO learns nothing from them)"
            )
    # Samples that never differ in correctness: pass@k finds nothing pass@1 does not. (Not
    # pass@k <= pass@1: with groups of unequal size the two rest on different groups.)
    table, ties = summary.pass_at_k, summary.ties
    for scheme in table["scheme"].unique() if not table.empty else []:
        part = table[(table["scheme"] == scheme) & table["pass_at_k"].notna()]
        one = part[part["k"] == 1]["pass_at_k"]
        tied = ties[(ties["scheme"] == scheme) & (ties["reward"] == "correctness")]["tied"]
        varied = 0 < one.iloc[0] < 1 if not one.empty else False
        agree = not tied.empty and tied.iloc[0] >= 1 - 1e-12
        if varied and agree and (part["k"] > 1).any():
            notes.append(
                f"{scheme}: the samples of every prompt agree in correctness (all right or"
                " all wrong), so more samples per prompt find nothing one does not"
                " (sampling temperature too low?)"
            )
    return notes
