"""`Rollout`: one step's prompts and sampled completions as the tensors the loss reads.

Each row is a left-padded prompt followed by a right-padded completion, so every
completion starts at the same column and the loss reads the last C columns::

    <pad> <pad> p0 p1 p2 | c0 c1 c2 <pad>
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["Rollout", "make_rollout"]


@dataclass(frozen=True)
class Rollout:
    """Token tensors of a batch of completions, with their advantages."""

    input_ids: torch.Tensor  # (B, P + C)
    attention_mask: torch.Tensor  # (B, P + C)
    completion_mask: torch.Tensor  # (B, C): 1 on sampled tokens, 0 on padding
    advantages: torch.Tensor  # (B,)

    @property
    def completion_len(self) -> int:
        return int(self.completion_mask.shape[1])

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def rows(self, start: int, stop: int) -> Rollout:
        """Rows ``[start, stop)``, for micro-batches."""
        return Rollout(
            self.input_ids[start:stop],
            self.attention_mask[start:stop],
            self.completion_mask[start:stop],
            self.advantages[start:stop],
        )


def make_rollout(
    prompts: Sequence[Sequence[int]],
    completions: Sequence[Sequence[int]],
    advantages: torch.Tensor,
    pad_id: int,
    device: torch.device,
) -> Rollout:
    """Pad prompt ids (left) and completion ids (right) into one `Rollout`.

    >>> import torch
    >>> r = make_rollout([[5, 6], [7]], [[1], [2, 3]], torch.zeros(2), 0, torch.device("cpu"))
    >>> r.input_ids.tolist(), r.completion_mask.tolist()
    ([[5, 6, 1, 0], [0, 7, 2, 3]], [[1, 0], [1, 1]])
    """
    import torch

    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    width = max(len(p) for p in prompts)
    length = max(1, max(len(c) for c in completions))
    ids, mask, completion_mask = [], [], []
    for prompt, completion in zip(prompts, completions, strict=True):
        left, right = width - len(prompt), length - len(completion)
        ids.append([pad_id] * left + list(prompt) + list(completion) + [pad_id] * right)
        mask.append([0] * left + [1] * (len(prompt) + len(completion)) + [0] * right)
        completion_mask.append([1] * len(completion) + [0] * right)
    return Rollout(
        torch.tensor(ids, dtype=torch.long, device=device),  # (B, P + C)
        torch.tensor(mask, dtype=torch.long, device=device),  # (B, P + C)
        torch.tensor(completion_mask, dtype=torch.long, device=device),  # (B, C)
        advantages.to(device=device, dtype=torch.float32),  # (B,)
    )
