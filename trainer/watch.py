"""A live warning when the scheme gives GRPO nothing to learn from.

A group whose completions all score the same has zero reward spread: every advantage in it
is 0, and only the KL term moves the policy (`trainer.advantage`). When that is nearly every
group for several steps running, the run is spending its compute on nothing; `SignalWatch`
says so while it trains, once per such stretch, with the reason codes the scheme gave most
often, rather than leaving it to be found in steps.parquet afterwards.

>>> watch = SignalWatch(window=2)
>>> samples = [{"reasons": {"format": "no_think_tag"}}] * 3 + [{"reasons": {"format": "ok"}}]
>>> watch.step({"step": 1, "zero_spread": 1.0}, samples) is None  # one step is no stretch
True
>>> print(watch.step({"step": 2, "zero_spread": 0.9}, samples))  # doctest: +ELLIPSIS
steps 1-2: 95% of groups had zero reward spread, so their advantages were 0 ... \
format: no_think_tag (75%). ...
>>> watch.step({"step": 3, "zero_spread": 1.0}, samples) is None  # said once per stretch
True
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["SignalWatch"]

WINDOW = 5  # steps
THRESHOLD = 0.9  # mean share of zero-spread groups over the window


class SignalWatch:
    """Feed it every step's row and samples; it returns a warning when one is due."""

    def __init__(self, window: int = WINDOW, threshold: float = THRESHOLD) -> None:
        self.recent: deque[tuple[int, float]] = deque(maxlen=window)
        self.threshold = threshold
        self.warned = False  # for the current stretch; re-armed when the spread comes back

    def step(self, row: Mapping[str, Any], samples: Sequence[Mapping[str, Any]]) -> str | None:
        self.recent.append((int(row["step"]), float(row["zero_spread"])))
        share = sum(s for _, s in self.recent) / len(self.recent)
        if share < self.threshold:
            self.warned = False
            return None
        if len(self.recent) < (self.recent.maxlen or 1) or self.warned:
            return None
        self.warned = True
        first, last = self.recent[0][0], self.recent[-1][0]
        return (
            f"steps {first}-{last}: {share:.0%} of groups had zero reward spread, so their"
            " advantages were 0 and GRPO learned nothing from them (only the KL term moved"
            f" the policy). Most common reasons at step {last}: {_reasons(samples)}. If it"
            " lasts, the scheme asks for what the model never produces: read the reasons in"
            " samples.jsonl (`rewardkit score RUN/samples.jsonl` explains them), or train"
            " under a more lenient scheme first"
        )


def _reasons(samples: Sequence[Mapping[str, Any]]) -> str:
    """The most common reason code of each reward, with its share, where it is not "ok"."""
    counts: dict[str, Counter[str]] = {}
    for sample in samples:
        for name, reason in sample.get("reasons", {}).items():
            counts.setdefault(name, Counter())[str(reason)] += 1
    parts = []
    for name, counter in counts.items():
        reason, count = counter.most_common(1)[0]
        if reason != "ok":
            parts.append(f"{name}: {reason} ({count / sum(counter.values()):.0%})")
    return "; ".join(parts) or "every reward mostly ok (the completions all score the same)"
