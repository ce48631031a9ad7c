"""Group-normalised advantages: the properties GRPO relies on."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from trainer.advantage import group_advantages, zero_spread  # noqa: E402

rewards_lists = st.lists(
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=4, max_size=4), min_size=1, max_size=5
)


@settings(max_examples=60, deadline=None)
@given(rewards_lists)
def test_every_group_has_mean_zero(groups: list[list[float]]) -> None:
    rewards = torch.tensor([r for g in groups for r in g], dtype=torch.float64)
    advantages = group_advantages(rewards, 4).view(-1, 4)
    assert torch.allclose(
        advantages.mean(1), torch.zeros(len(groups), dtype=torch.float64), atol=1e-9
    )


@settings(max_examples=60, deadline=None)
@given(rewards_lists, st.floats(-100, 100, allow_nan=False))
def test_a_constant_shift_changes_nothing(groups: list[list[float]], shift: float) -> None:
    rewards = torch.tensor([r for g in groups for r in g], dtype=torch.float64)
    assert torch.allclose(
        group_advantages(rewards, 4), group_advantages(rewards + shift, 4), atol=1e-6
    )


def test_tied_groups_get_exactly_zero_and_are_counted() -> None:
    rewards = torch.tensor([0.0, 0.0, 0.0, 3.5, 3.5, 3.5, 1.0, 2.0, 3.0])
    advantages = group_advantages(rewards, 3)
    assert advantages[:6].tolist() == [0.0] * 6
    assert advantages[6] < 0 < advantages[8]
    assert zero_spread(rewards, 3).tolist() == [True, True, False]


@settings(max_examples=100, deadline=None)
@given(st.floats(-10, 10, allow_nan=False, width=32), st.integers(2, 16))
def test_a_tied_group_of_any_value_gets_exactly_zero(value: float, size: int) -> None:
    # Before: eight rewards of 0.7 in float32 got advantages of 1.2e-3, all of one sign.
    rewards = torch.full((size,), value, dtype=torch.float32)
    assert group_advantages(rewards, size).tolist() == [0.0] * size


def test_standardised_within_the_group() -> None:
    # (r - mean) / (sample std + eps): [1, 3] -> mean 2, std sqrt(2)
    advantages = group_advantages(torch.tensor([1.0, 3.0]), 2, eps=0.0)
    assert advantages.tolist() == pytest.approx([-(2**-0.5), 2**-0.5])


def test_rewards_that_do_not_split_into_groups_raise() -> None:
    with pytest.raises(ValueError, match="groups of 4"):
        group_advantages(torch.zeros(6), 4)
