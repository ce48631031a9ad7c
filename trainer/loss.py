"""Per-token log-probs and the GRPO objective: clipped surrogate plus k3 KL.

The objective is equation (3) of Shao et al. (2024), "DeepSeekMath: Pushing the Limits of
Mathematical Reasoning in Open Language Models" (arXiv:2402.03300), the GRPO paper::

    L = - 1/G sum_i 1/|o_i| sum_t [ min(r_it A_i, clip(r_it, 1-eps, 1+eps) A_i)
                                    - beta * KL_it ]

with the ratio ``r_it = pi(o_it) / pi_old(o_it)`` against the policy that sampled the batch
(PPO's clipped surrogate, Schulman et al. 2017) and ``KL_it`` the "k3" estimator of
KL(pi || pi_ref) from J. Schulman, "Approximating KL Divergence" (2020,
http://joschu.net/blog/kl-approx.html): ``exp(ref - logp) - (ref - logp) - 1``, unbiased
and never negative. Each completion's token terms are averaged over its own tokens, then
completions are averaged, as in the paper (TRL's ``loss_type="grpo"``).

Log-probs are of the distribution the engine sampled from: logits divided by the sampling
temperature, as TRL computes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trainer.hf import is_checkpointing, with_cache

if TYPE_CHECKING:
    import torch

__all__ = ["LossParts", "grpo_loss", "shared_prompt_logprobs", "token_logprobs"]


def token_logprobs(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    completion_len: int,
    temperature: float = 1.0,
) -> torch.Tensor:
    """Log-probs (B, C) of the last `completion_len` tokens of `input_ids` (B, P + C).

    Prompts are left-padded, so positions come from the mask, exactly as at sampling time.
    """
    import torch

    positions = (attention_mask.cumsum(1) - 1).clamp(min=0)  # (B, P + C)
    logits = (
        model(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=positions,
            logits_to_keep=completion_len + 1,
        )
        .logits[:, :-1, :]
        .float()
    )  # (B, C, V): the logits at t predict token t + 1
    logits = logits / temperature if temperature > 0 else logits
    targets = input_ids[:, -completion_len:]  # (B, C)
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, C)
    logp: torch.Tensor = picked - torch.logsumexp(logits, dim=-1)  # (B, C)
    return logp


def shared_prompt_logprobs(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    completion_len: int,
    temperature: float = 1.0,
) -> torch.Tensor:
    """`token_logprobs`, computing each prompt once for the rows that share it.

    A rollout holds the `num_generations` completions of a prompt in consecutive rows with
    the same (left-padded) prompt columns. Those prompts are run once, with a KV cache;
    the cache is repeated to one copy per row and the completions are run on top of it.
    Gradients flow through the shared prompt (the repeat sums them), so the values and the
    gradients are those of the full sequences, at a fraction of the prompt's cost. Falls
    back to `token_logprobs` when no two neighbouring rows share a prompt, and when the
    model keeps no cache (gradient checkpointing while training).
    """
    import torch
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    batch, width = input_ids.shape
    prompt_width = width - completion_len
    # Gradient checkpointing in training turns the KV cache off (transformers drops it with
    # a warning), which would leave the completions without their prompt.
    checkpointing = is_checkpointing(model) and model.training
    if prompt_width < 1 or completion_len < 1 or batch < 2 or checkpointing:
        return token_logprobs(model, input_ids, attention_mask, completion_len, temperature)
    prompt_ids, prompt_mask = input_ids[:, :prompt_width], attention_mask[:, :prompt_width]
    starts = torch.ones(batch, dtype=torch.bool, device=input_ids.device)  # (B,)
    starts[1:] = (prompt_ids[1:] != prompt_ids[:-1]).any(1) | (
        prompt_mask[1:] != prompt_mask[:-1]
    ).any(1)
    first = starts.nonzero().squeeze(1)  # (G,): the first row of each run of one prompt
    if len(first) == batch:
        return token_logprobs(model, input_ids, attention_mask, completion_len, temperature)
    counts = torch.diff(first, append=first.new_tensor([batch]))  # (G,)
    positions = (attention_mask.cumsum(1) - 1).clamp(min=0)  # (B, P + C)
    cache = DynamicCache()
    head = model(
        input_ids=prompt_ids[first],
        attention_mask=prompt_mask[first],
        position_ids=positions[first, :prompt_width],
        **with_cache(model, cache),
        use_cache=True,
        logits_to_keep=1,
    ).logits[:, -1:, :]  # (G, 1, V): predicts the first completion token
    if not cache.layers or not all(isinstance(layer, DynamicLayer) for layer in cache.layers):
        return token_logprobs(model, input_ids, attention_mask, completion_len, temperature)
    layers: list[Any] = list(cache.layers)  # DynamicLayer: keys and values tensors
    for layer in layers:  # (G, heads, P, d) -> (B, heads, P, d)
        layer.keys = _repeat_rows(layer.keys, counts)
        layer.values = _repeat_rows(layer.values, counts)
    parts = [_repeat_rows(head, counts)]  # (B, 1, V)
    if completion_len > 1:  # the last completion token predicts nothing: it is not fed
        end = width - 1
        parts.append(
            model(
                input_ids=input_ids[:, prompt_width:end],
                attention_mask=attention_mask[:, :end],
                position_ids=positions[:, prompt_width:end],
                **with_cache(model, cache),
                use_cache=True,
            ).logits
        )  # (B, C - 1, V)
    logits = torch.cat(parts, dim=1).float()  # (B, C, V): the logits at t predict t + 1
    logits = logits / temperature if temperature > 0 else logits
    targets = input_ids[:, prompt_width:]  # (B, C)
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, C)
    logp: torch.Tensor = picked - torch.logsumexp(logits, dim=-1)  # (B, C)
    return logp


def _repeat_rows(x: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Row g of `x` repeated counts[g] times, in order.

    With equal counts (whole groups) an expand: its backward is a sum, much cheaper on a
    CPU than the scatter-add behind ``repeat_interleave``'s.
    """
    size = int(counts[0])
    if bool((counts == size).all()):
        return x.unsqueeze(1).expand(x.shape[0], size, *x.shape[1:]).reshape(-1, *x.shape[1:])
    return x.repeat_interleave(counts, dim=0)


@dataclass(frozen=True)
class LossParts:
    """The loss and what it is made of, for logging (token means over completions)."""

    loss: torch.Tensor  # scalar, with grad
    kl: float  # mean k3 KL to the reference per completion token (0 without reference)
    clip_fraction: float  # share of tokens where the clip changed the objective
    ratio: float  # mean ratio pi / pi_old per completion token


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    ref_logp: torch.Tensor | None,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_eps: float,
    beta: float,
) -> LossParts:
    """The GRPO loss of a batch: logp, old_logp, ref_logp, mask (B, C); advantages (B,).

    >>> import torch
    >>> logp = torch.log(torch.tensor([[0.5, 0.25]]))
    >>> parts = grpo_loss(logp, logp, None, torch.tensor([2.0]), torch.ones(1, 2), 0.2, 0.0)
    >>> float(parts.loss)  # ratio 1: minus the advantage
    -2.0
    """
    import torch

    mask = mask.to(logp.dtype)
    tokens = mask.sum().clamp(min=1)
    ratio = torch.exp(logp - old_logp)  # (B, C)
    adv = advantages[:, None]  # (B, 1)
    unclipped = ratio * adv  # (B, C)
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps) * adv  # (B, C)
    per_token = -torch.min(unclipped, clipped)  # (B, C)
    kl_value = 0.0
    if ref_logp is not None and beta > 0:
        delta = ref_logp - logp  # (B, C)
        kl = torch.exp(delta) - delta - 1  # (B, C), k3 >= 0
        per_token = per_token + beta * kl
        kl_value = float((kl.detach() * mask).sum() / tokens)
    per_sequence = (per_token * mask).sum(1) / mask.sum(1).clamp(min=1)  # (B,)
    was_clipped = (clipped < unclipped).to(mask.dtype)  # (B, C): the min took the clipped term
    return LossParts(
        loss=per_sequence.mean(),
        kl=kl_value,
        clip_fraction=float((was_clipped * mask).sum() / tokens),
        ratio=float((ratio.detach() * mask).sum() / tokens),
    )
