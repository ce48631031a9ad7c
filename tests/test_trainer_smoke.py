"""A trainer smoke test on a tiny model: GRPO moves the policy towards what the reward likes.

The reward counts one token (``<answer>``) in each completion; a few steps of sampling,
group advantages, policy updates and AdamW must raise that token's probability, change the
parameters, and keep the loss finite.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from trainer_fixtures import fast_config  # noqa: E402

from trainer.advantage import group_advantages  # noqa: E402
from trainer.engine import TorchEngine  # noqa: E402
from trainer.hf import is_checkpointing  # noqa: E402
from trainer.model import FLOAT32, Precision, enable_checkpointing  # noqa: E402
from trainer.prompt import encode_prompt, render_prompt  # noqa: E402
from trainer.rollout import Rollout, make_rollout  # noqa: E402
from trainer.tiny import build_model, build_tokenizer  # noqa: E402
from trainer.update import UpdateStats, policy_update, reference_logprobs  # noqa: E402

QUESTIONS = ["Tom has 3 apples and gets 4 more.", "Ann has 9 pens and gives 2 away."]


@pytest.mark.parametrize("name", ["float32", "bfloat16"])
def test_a_reward_for_one_token_raises_its_probability(name: str) -> None:
    config = fast_config(num_generations=8, max_new_tokens=8, policy_updates=2)
    precision = Precision(name, "cpu")  # bfloat16: autocast forwards, float32 weights
    tokenizer = build_tokenizer(QUESTIONS)
    model = build_model(tokenizer, seed=0)
    reference = build_model(tokenizer, seed=0).requires_grad_(False)
    target = tokenizer.convert_tokens_to_ids("<answer>")
    engine = TorchEngine(model, tokenizer, precision=precision)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    prompts = [render_prompt(tokenizer, q, config.system_prompt) for q in QUESTIONS]
    prompt_ids = [encode_prompt(tokenizer, p) for p in prompts]

    def probability() -> float:
        """Mean probability of `target` as the first completion token."""
        with torch.no_grad():
            return float(
                sum(
                    model(torch.tensor([ids])).logits[0, -1].softmax(-1)[target]
                    for ids in prompt_ids
                )
                / len(prompt_ids)
            )

    before = probability()
    start = [p.detach().clone() for p in model.parameters()]
    for step in range(6):
        groups = engine.generate(prompts, config.num_generations, 1.0, 8, ("</answer>",), step)
        completions = [g for group in groups for g in group]
        rewards = torch.tensor([float(c.token_ids.count(target)) for c in completions])
        rollout = make_rollout(
            [ids for ids in prompt_ids for _ in range(config.num_generations)],
            [c.token_ids for c in completions],
            group_advantages(rewards, config.num_generations),
            tokenizer.pad_token_id,
            torch.device("cpu"),
        )
        ref_logp = reference_logprobs(reference, rollout, config, precision)
        stats = policy_update(model, optimizer, rollout, ref_logp, config, precision)
        assert math.isfinite(stats.loss) and math.isfinite(stats.grad_norm)
    after = probability()
    assert after > 2 * before, (before, after)
    assert all(not torch.equal(a, p) for a, p in zip(start, model.parameters(), strict=True))
    assert all(p.dtype == torch.float32 for p in model.parameters())  # the master weights


def sampled_rollout(tokenizer: Any) -> tuple[list[str], Rollout]:
    """The questions' prompts, and 4 completions of each (seed 3), cut to 2-6 tokens and
    rewarded by their length."""
    prompts = [render_prompt(tokenizer, q, "") for q in QUESTIONS]
    prompt_ids = [encode_prompt(tokenizer, p) for p in prompts]
    groups = TorchEngine(build_model(tokenizer, seed=0), tokenizer).generate(
        prompts, 4, 1.0, 6, ("</answer>",), seed=3
    )
    flat = [g for group in groups for g in group]
    completions = [g.token_ids[: 2 + i % 5] for i, g in enumerate(flat)]
    rollout = make_rollout(
        [ids for ids in prompt_ids for _ in range(4)],
        completions,
        group_advantages(torch.tensor([float(len(c)) for c in completions]), 4),
        tokenizer.pad_token_id,
        torch.device("cpu"),
    )
    return prompts, rollout


def updated(
    model: Any, rollout: Rollout, reference: Any, config: Any, precision: Precision = FLOAT32
) -> tuple[UpdateStats, list[Any]]:
    """`policy_update` of `model` with a fresh AdamW: its stats and the new weights."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate)
    ref_logp = reference_logprobs(reference, rollout, config, precision)
    stats = policy_update(model, optimizer, rollout, ref_logp, config, precision)
    return stats, [p.detach().clone() for p in model.parameters()]


def assert_same_update(a: tuple[UpdateStats, list[Any]], b: tuple[UpdateStats, list[Any]]) -> None:
    """The same loss, statistics and weights, up to summation order. Adam divides by
    sqrt(v): a weight whose gradient is nearly 0 can move by a rounding's worth more; 5e-5
    is 1% of one step (lr 5e-3)."""
    for field in ("loss", "kl", "clip_fraction", "ratio", "grad_norm"):
        assert getattr(a[0], field) == pytest.approx(getattr(b[0], field), rel=1e-4, abs=1e-6)
    for x, y in zip(a[1], b[1], strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=5e-5)


def test_bfloat16_runs_the_forwards_in_bfloat16_and_keeps_policy_and_reference_alike() -> None:
    """Under bfloat16 the log-probs move by rounding only, and the reference runs in the
    same precision as the policy: with equal weights their KL is exactly 0, as in float32."""
    tokenizer = build_tokenizer(QUESTIONS)
    _, rollout = sampled_rollout(tokenizer)
    config = fast_config(num_generations=4, policy_updates=1)
    reference = build_model(tokenizer, seed=0).requires_grad_(False)
    logps = {}
    for name in ("float32", "bfloat16"):
        precision = Precision(name, "cpu")
        logps[name] = reference_logprobs(reference, rollout, config, precision)
        stats, _ = updated(build_model(tokenizer, seed=0), rollout, reference, config, precision)
        assert stats.kl == 0.0 and stats.ratio == 1.0, name
    gap = (logps["bfloat16"] - logps["float32"]).abs() * rollout.completion_mask
    assert 0 < float(gap.max()) < 0.1  # bfloat16 rounding: present, and small


def test_the_update_does_not_depend_on_the_micro_batch_size() -> None:
    """Gradients accumulated over micro-batches, weighted by their share, equal one batch's:
    the same loss, statistics and new weights, also when a micro-batch splits a group."""
    tokenizer = build_tokenizer(QUESTIONS)
    reference = build_model(tokenizer, seed=1).requires_grad_(False)
    _, rollout = sampled_rollout(tokenizer)
    results = []
    for micro in (8, 3, 1):  # one batch of 8 rows; 3 + 3 + 2, splitting both groups; rows
        config = fast_config(num_generations=4, policy_updates=2, micro_batch_size=micro)
        results.append(updated(build_model(tokenizer, seed=0), rollout, reference, config))
    assert_same_update(results[0], results[1])
    assert_same_update(results[0], results[2])


def test_gradient_checkpointing_changes_memory_not_the_update() -> None:
    """With checkpointing the update runs over full sequences and recomputes activations:
    the same loss, statistics and new weights; the engine keeps its fast decode step."""
    tokenizer = build_tokenizer(QUESTIONS)
    reference = build_model(tokenizer, seed=1).requires_grad_(False)
    prompts, rollout = sampled_rollout(tokenizer)
    config = fast_config(num_generations=4, policy_updates=2)
    checked = build_model(tokenizer, seed=0)
    enable_checkpointing(checked)
    engine = TorchEngine(checked, tokenizer)
    engine.generate(prompts, 2, 1.0, 4, ("</answer>",), seed=0)
    assert is_checkpointing(checked) and engine.fast_decode
    assert_same_update(
        updated(build_model(tokenizer, seed=0), rollout, reference, config),
        updated(checked, rollout, reference, config),
    )
