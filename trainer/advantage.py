"""Group-normalised advantages, the "group relative" of GRPO.

Shao et al. (2024), "DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open
Language Models", section 4.1.2 (outcome supervision): each completion's advantage is its
reward standardised within the group of completions of the same prompt,
``A = (r - mean(r)) / (std(r) + eps)``, applied to every token of the completion. The std is
the sample std (Bessel's correction), as TRL computes it.

A group whose rewards all tie has zero spread: every advantage in it is exactly 0 and it
contributes nothing to the policy gradient (only the KL term acts on it). `zero_spread`
counts those groups; its share per step is the first thing to look at when a scheme does
not learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["EPS", "group_advantages", "zero_spread"]

EPS = 1e-4


def group_advantages(rewards: torch.Tensor, group_size: int, eps: float = EPS) -> torch.Tensor:
    """Advantages (B,) from rewards (B,) laid out group after group, `group_size` each.

    >>> import torch
    >>> group_advantages(torch.tensor([1.0, 3.0, 2.0, 2.0]), 2)
    tensor([-0.7071,  0.7071,  0.0000,  0.0000])
    """
    if group_size < 2 or rewards.numel() % group_size:
        raise ValueError(
            f"{rewards.numel()} rewards do not split into groups of {group_size} (need >= 2)"
        )
    grouped = rewards.view(-1, group_size)  # (G, n)
    mean = grouped.mean(dim=1, keepdim=True)  # (G, 1)
    std = grouped.std(dim=1, keepdim=True)  # (G, 1)
    advantages = (grouped - mean) / (std + eps)  # (G, n)
    # A tied group's mean is not always its value in floating point (eight rewards of 0.7
    # in float32 leave a residue that eps turns into advantages of 1e-3, one sign for all).
    tied = zero_spread(rewards, group_size)[:, None]  # (G, 1)
    return advantages.masked_fill(tied, 0.0).view(-1)  # (B,)


def zero_spread(rewards: torch.Tensor, group_size: int) -> torch.Tensor:
    """Which groups have all rewards equal (G,): no gradient signal from them.

    >>> import torch
    >>> zero_spread(torch.tensor([1.0, 1.0, 0.0, 2.0]), 2)
    tensor([ True, False])
    """
    grouped = rewards.view(-1, group_size)  # (G, n)
    return grouped.amax(dim=1) == grouped.amin(dim=1)  # (G,)
