"""The public API as a user's typed code calls it: `mypy` (strict, as CI runs it) checks this
file, so a type hint that refuses documented usage fails CI. It is not a test module and
runs nothing on import."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rewardkit.integrations.trl import reward_funcs, reward_weights
from rewardkit.integrations.verl import compute_score
from rewardkit.report import Summary, summarize
from rewardkit.rewards import Reward, correctness_lenient
from rewardkit.schemes import (
    LENIENT,
    STRICT,
    Scheme,
    SchemeReward,
    get_scheme,
    resolve_function,
    schemes_of,
)
from rewardkit.score import Keys, ScoreResult, score_file, score_records


def brevity(completion: str, answer: str) -> tuple[float, str]:
    """A custom reward returning a (value, reason) pair, as docs/schemes.md allows."""
    return (0.5, "ok") if len(completion) < 400 else (0.0, "too_long")


def length(completion: str, answer: str) -> float:
    """A custom reward returning a plain number."""
    return -len(completion) / 1000


def custom_scheme() -> Scheme:
    rewards = (
        SchemeReward("brevity", brevity, max=0.5),
        SchemeReward("length", length, weight=2.0),
        SchemeReward("sure", lambda c, a: Reward(1.0, "ok"), max=1),
        SchemeReward("file", resolve_function("examples/my_rewards.py:brevity"), max=0.5),
        LENIENT.rewards[0],
    )
    return Scheme("mine", rewards)


def score_everything(path: Path) -> tuple[pd.DataFrame, ScoreResult, Summary]:
    frame = score_records([{"completion": "<answer>5</answer>", "answer": 5}], ["strict", LENIENT])
    result = score_file(path, [STRICT, get_scheme(Path("examples/my_scheme.yaml"))], Keys())
    summary = summarize(result.frame, schemes_of(["strict", "my_scheme.yaml"]))
    return frame, result, summary


def one_reward() -> float:
    value: float = correctness_lenient("<answer>5</answer>", "5").value
    total: float = STRICT.total(STRICT.score("<answer>5</answer>", "5"))
    return value + total


def trainers() -> tuple[list[float], float]:
    funcs = reward_funcs("lenient", completion_prefix="<think>\n")
    weights: list[float] = reward_weights("lenient")
    values = funcs[0](prompts=["q"], completions=["<answer>5</answer>"], answer=["5"])
    score = compute_score("openai/gsm8k", "<answer>5</answer>", "5")["score"]
    return values, float(score) + sum(weights)
