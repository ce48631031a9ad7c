"""The policy updates of one step: `policy_updates` AdamW steps on the same rollout.

The log-probs of the policy that sampled the rollout (``old``) are those of the first
pass: no optimizer step has happened yet when it runs, so ``logp.detach()`` there *is*
pi_old, and no extra forward pass is needed. Later passes see the updated policy, and the
ratio and the clip start to act. Gradients are accumulated over micro-batches, weighted by
their share of the batch (of its completions for the loss, of its completion tokens for
the logged KL, ratio and clip fraction), so nothing depends on `micro_batch_size`.

Every pass (the policy's and the reference's) runs each prompt once for the completions
that share it (`shared_prompt_logprobs`): the same log-probs and gradients as the full
sequences, without recomputing the prompt, about two thirds of every sequence, per sample.

Both run their forward passes in the policy's `Precision` (bfloat16 autocast or float32);
the backward pass runs outside it, as ``torch.autocast`` asks.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trainer.loss import grpo_loss, shared_prompt_logprobs
from trainer.model import FLOAT32, Precision
from trainer.rollout import Rollout

if TYPE_CHECKING:
    import torch

    from trainer.config import TrainConfig

__all__ = ["UpdateStats", "policy_update", "reference_logprobs"]


@dataclass(frozen=True)
class UpdateStats:
    """Means over the updates of one step."""

    loss: float
    kl: float
    clip_fraction: float
    ratio: float
    grad_norm: float  # before clipping
    seconds: float
    # the batch's tokens per update, a prompt counted once per completion as TRL counts
    # them (the update computes each prompt once per group: `shared_prompt_logprobs`)
    tokens: int


def reference_logprobs(
    reference: Any, rollout: Rollout, config: TrainConfig, precision: Precision = FLOAT32
) -> torch.Tensor | None:
    """Log-probs (B, C) of the frozen reference model, or None when `beta` is 0."""
    import torch

    if reference is None or config.beta == 0:
        return None
    parts = []
    with torch.inference_mode(), precision.autocast():
        for start in range(0, len(rollout), config.micro_batch_size):
            part = rollout.rows(start, start + config.micro_batch_size)
            parts.append(
                shared_prompt_logprobs(
                    reference,
                    part.input_ids,
                    part.attention_mask,
                    part.completion_len,
                    config.temperature,
                )
            )
    return torch.cat(parts).clone()  # (B, C), a normal tensor usable in autograd graphs


def policy_update(
    model: Any,
    optimizer: torch.optim.Optimizer,
    rollout: Rollout,
    ref_logp: torch.Tensor | None,
    config: TrainConfig,
    precision: Precision = FLOAT32,
) -> UpdateStats:
    """Run `config.policy_updates` optimizer steps on `rollout`; return their mean stats."""
    import torch

    started = time.perf_counter()
    model.train()
    batch = len(rollout)
    completion_tokens = float(rollout.completion_mask.sum().clamp(min=1))
    old: list[torch.Tensor] = []
    totals = {"loss": 0.0, "kl": 0.0, "clip_fraction": 0.0, "ratio": 0.0, "grad_norm": 0.0}
    for update in range(config.policy_updates):
        optimizer.zero_grad(set_to_none=True)
        for index, start in enumerate(range(0, batch, config.micro_batch_size)):
            part = rollout.rows(start, start + config.micro_batch_size)
            with precision.autocast():
                logp = shared_prompt_logprobs(
                    model,
                    part.input_ids,
                    part.attention_mask,
                    part.completion_len,
                    config.temperature,
                )  # (b, C), float32
            if update == 0:
                old.append(logp.detach())
            ref = None if ref_logp is None else ref_logp[start : start + len(part)]
            parts = grpo_loss(
                logp,
                old[index],
                ref,
                part.advantages,
                part.completion_mask,
                config.clip_eps,
                config.beta,
            )
            weight = len(part) / batch  # the loss is a mean over completions
            torch.autograd.backward(parts.loss * weight)
            totals["loss"] += float(parts.loss.detach()) * weight
            # the others are means over completion tokens
            share = float(part.completion_mask.sum()) / completion_tokens
            totals["kl"] += parts.kl * share
            totals["clip_fraction"] += parts.clip_fraction * share
            totals["ratio"] += parts.ratio * share
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
        totals["grad_norm"] += float(norm)
        optimizer.step()
    n = config.policy_updates
    tokens = int(rollout.attention_mask.sum()) * n
    return UpdateStats(
        loss=totals["loss"] / n,
        kl=totals["kl"] / n,
        clip_fraction=totals["clip_fraction"] / n,
        ratio=totals["ratio"] / n,
        grad_norm=totals["grad_norm"] / n,
        seconds=time.perf_counter() - started,
        tokens=tokens,
    )
