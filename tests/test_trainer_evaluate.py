"""Evaluation: the unbiased pass@k against brute force, greedy pass@1, and the warnings."""

from __future__ import annotations

import itertools
import os
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewardkit.passk import pass_at_k
from rewardkit.schemes import LENIENT, STRICT

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def brute_force(outcomes: list[bool], k: int) -> Fraction:
    """The share of all k-subsets of the samples that hold a correct one."""
    subsets = list(itertools.combinations(outcomes, k))
    return Fraction(sum(any(s) for s in subsets), len(subsets))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=9), st.data())
def test_pass_at_k_equals_brute_force_over_subsets(
    outcomes: list[bool], data: st.DataObject
) -> None:
    k = data.draw(st.integers(1, len(outcomes)))
    assert pass_at_k(len(outcomes), sum(outcomes), k) == pytest.approx(
        float(brute_force(outcomes, k)), abs=1e-12
    )


RIGHT = "<think>\nok\n</think>\n<answer>\n5\n</answer>\n"
WRONG = "<think>\nok\n</think>\n<answer>\n6\n</answer>\n"


def _evaluate(greedy: list[str], samples: list[list[str]], **changes: object) -> Any:
    pytest.importorskip("torch")
    from trainer_fixtures import ScriptedEngine, fast_config

    from trainer.data import Problem
    from trainer.evaluate import evaluate

    problems = [Problem(f"p{i}", "q", "#### 5") for i in range(len(greedy))]
    config = fast_config(**changes)
    engine = ScriptedEngine(greedy, samples)
    return evaluate(engine, problems, ["q"] * len(problems), LENIENT, config, seed=0)


def test_pass_at_k_of_the_samples_matches_brute_force() -> None:
    samples = [[RIGHT, WRONG, WRONG, WRONG], [WRONG] * 4, [RIGHT, RIGHT, WRONG, RIGHT]]
    result = _evaluate([RIGHT, WRONG, WRONG], samples)
    values = {row["metric"]: row["value"] for row in result.rows}
    assert values["pass@1 (greedy)"] == pytest.approx(1 / 3)
    for k in (1, 2, 4):
        expected = sum(float(brute_force([s == RIGHT for s in group], k)) for group in samples) / 3
        assert values[f"pass@{k}"] == pytest.approx(expected)
    assert values["greedy total"] == pytest.approx((3.5 + 1.5 + 1.5) / 3)
    assert result.warnings == []


def test_a_warning_when_samples_do_not_differ() -> None:
    # Every sample equals the greedy answer: pass@4 == pass@1 (greedy), 0 < p < 1.
    greedy = [RIGHT, WRONG]
    result = _evaluate(greedy, [[g] * 4 for g in greedy], eval_temperature=0.01)
    (warning,) = result.warnings
    assert "pass@4" in warning and "eval_temperature" in warning and "0.01" in warning


def test_stop_cost_names_what_a_stop_string_makes_unreachable() -> None:
    from trainer.evaluate import stop_cost

    assert stop_cost(LENIENT, ["</answer>"]) is None
    assert stop_cost(STRICT, ["</answer>\n"]) is None
    message = stop_cost(STRICT, ["</answer>"])
    assert message is not None
    assert "2.875 instead of 3.5" in message and "missing_newline_after_answer_close" in message
