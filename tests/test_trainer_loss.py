"""The GRPO loss: clipped surrogate plus k3 KL, checked by hand and against its identities."""

from __future__ import annotations

import math
from typing import Any

import pytest

torch = pytest.importorskip("torch")

from trainer.loss import grpo_loss, token_logprobs  # noqa: E402


def test_at_ratio_one_the_clip_is_a_no_op() -> None:
    torch.manual_seed(0)
    logp = torch.randn(3, 5).log_softmax(-1).requires_grad_()
    advantages = torch.tensor([1.5, -0.5, 0.0])
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]])
    tight = grpo_loss(logp, logp.detach(), None, advantages, mask, clip_eps=1e-6, beta=0.0)
    loose = grpo_loss(logp, logp.detach(), None, advantages, mask, clip_eps=0.9, beta=0.0)
    (grad_tight,) = torch.autograd.grad(tight.loss, logp)
    (grad_loose,) = torch.autograd.grad(loose.loss, logp)
    assert float(tight.loss.detach()) == pytest.approx(float(loose.loss.detach()))
    assert torch.allclose(grad_tight, grad_loose)
    assert tight.clip_fraction == 0.0 and tight.ratio == pytest.approx(1.0)
    # the policy gradient: -A_i / (|o_i| * B) on every token of completion i
    lengths = mask.sum(1, keepdim=True)
    assert torch.allclose(grad_loose, -advantages[:, None] * mask / lengths / 3)


def test_kl_is_zero_when_the_policy_is_the_reference() -> None:
    logp = torch.randn(2, 4).log_softmax(-1)
    parts = grpo_loss(logp, logp, logp.clone(), torch.zeros(2), torch.ones(2, 4), 0.2, beta=1.0)
    assert parts.kl == 0.0
    assert float(parts.loss) == 0.0


def test_a_small_case_by_hand() -> None:
    # One completion of two tokens, advantage +1, eps 0.2, beta 0.1.
    # token 1: ratio 1.5 -> clipped to 1.2; min(1.5, 1.2) = 1.2
    # token 2: ratio 0.5 -> min(0.5, 0.8) = 0.5
    # k3 KL with ref - logp = d: exp(d) - d - 1; d1 = log 2, d2 = 0
    logp = torch.log(torch.tensor([[0.3, 0.2]]))
    old = torch.log(torch.tensor([[0.2, 0.4]]))
    ref = torch.log(torch.tensor([[0.6, 0.2]]))
    parts = grpo_loss(logp, old, ref, torch.tensor([1.0]), torch.ones(1, 2), 0.2, beta=0.1)
    kl1 = 2 - math.log(2) - 1
    expected = ((-1.2 + 0.1 * kl1) + (-0.5 + 0.0)) / 2
    assert float(parts.loss) == pytest.approx(expected, rel=1e-6)
    assert parts.kl == pytest.approx(kl1 / 2, rel=1e-6)
    assert parts.clip_fraction == pytest.approx(0.5)  # the first token's term was clipped


def test_negative_advantage_clips_below() -> None:
    # A = -1, ratio 0.5: unclipped -0.5, clipped 0.8 * -1 = -0.8; the min is -0.8 (clipped)
    logp, old = torch.log(torch.tensor([[0.1]])), torch.log(torch.tensor([[0.2]]))
    parts = grpo_loss(logp, old, None, torch.tensor([-1.0]), torch.ones(1, 1), 0.2, 0.0)
    assert float(parts.loss) == pytest.approx(0.8)
    assert parts.clip_fraction == 1.0


def test_padding_tokens_do_not_count() -> None:
    logp = torch.log(torch.tensor([[0.5, 0.9]]))
    with_pad = grpo_loss(logp, logp, None, torch.tensor([2.0]), torch.tensor([[1, 0]]), 0.2, 0.0)
    assert float(with_pad.loss) == pytest.approx(-2.0)


def test_token_logprobs_read_left_padded_prompts_like_unpadded_ones() -> None:
    from trainer.tiny import build_model, build_tokenizer

    tokenizer = build_tokenizer(["Tom has apples"])
    model = build_model(tokenizer, seed=0)
    prompt, completion = tokenizer.encode("Tom has 3 apples"), tokenizer.encode("<answer>3")
    alone = torch.tensor([prompt + completion])
    padded = torch.tensor([[tokenizer.pad_token_id] * 3 + prompt + completion])
    mask = (padded != tokenizer.pad_token_id).long()
    with torch.no_grad():
        a = token_logprobs(model, alone, torch.ones_like(alone), len(completion))
        b = token_logprobs(model, padded, mask, len(completion))
        full = model(alone).logits.log_softmax(-1)[0, len(prompt) - 1 : -1]
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(a[0], full.gather(-1, torch.tensor(completion)[:, None])[:, 0], atol=1e-5)


def _grouped_rollout(group_sizes: list[int], seed: int = 0) -> Any:
    """Left-padded prompts of different lengths, each shared by consecutive rows."""
    from trainer.rollout import make_rollout

    generator = torch.Generator().manual_seed(seed)
    prompts, completions = [], []
    for size in group_sizes:
        length = int(torch.randint(3, 12, (1,), generator=generator))
        prompt = torch.randint(4, 40, (length,), generator=generator).tolist()
        for _ in range(size):
            length = int(torch.randint(1, 9, (1,), generator=generator))
            completions.append(torch.randint(4, 40, (length,), generator=generator).tolist())
            prompts.append(prompt)
    advantages = torch.randn(len(prompts), generator=generator)
    return make_rollout(prompts, completions, advantages, 0, torch.device("cpu"))


@pytest.mark.parametrize("group_sizes", [[4, 4, 4], [3, 1, 5], [1, 1], [6]])
def test_shared_prompt_logprobs_equal_the_full_sequences(group_sizes: list[int]) -> None:
    from trainer.loss import shared_prompt_logprobs
    from trainer.tiny import build_model, build_tokenizer

    model = build_model(build_tokenizer(["Tom has apples and pens"]), seed=0).train()
    rollout = _grouped_rollout(group_sizes)
    args = (rollout.input_ids, rollout.attention_mask, rollout.completion_len, 0.9)
    full = token_logprobs(model, *args)
    shared = shared_prompt_logprobs(model, *args)
    mask = rollout.completion_mask.bool()
    assert torch.isfinite(shared).all()
    assert torch.allclose(shared[mask], full[mask], atol=1e-5)
    # the gradients of the loss through either path agree too
    params = list(model.parameters())
    old = full.detach() + 0.01
    grads = [
        torch.autograd.grad(
            grpo_loss(
                lp, old, old - 0.02, rollout.advantages, rollout.completion_mask, 0.2, 0.05
            ).loss,
            params,
        )
        for lp in (full, shared)
    ]
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_shared_prompt_logprobs_under_gradient_checkpointing_are_the_full_sequences() -> None:
    # transformers drops the KV cache when checkpointing in training; without the fallback
    # the completions were read without their prompt (log-probs off by up to 0.2).
    from trainer.hf import checkpointing_on
    from trainer.loss import shared_prompt_logprobs
    from trainer.tiny import build_model, build_tokenizer

    model = build_model(build_tokenizer(["Tom has apples and pens"]), seed=0).train()
    checkpointing_on(model, use_reentrant=False)
    rollout = _grouped_rollout([4, 4])
    args = (rollout.input_ids, rollout.attention_mask, rollout.completion_len, 0.9)
    mask = rollout.completion_mask.bool()
    shared = shared_prompt_logprobs(model, *args)
    assert torch.allclose(shared[mask], token_logprobs(model, *args)[mask], atol=1e-5)
