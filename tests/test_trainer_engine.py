"""TorchEngine: stops at the stop string and keeps it, greedy at 0, seeded sampling."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from trainer_fixtures import fast_config  # noqa: E402

from trainer.engine import EngineError, TorchEngine, make_engine, vllm_status  # noqa: E402
from trainer.model import Policy  # noqa: E402
from trainer.tiny import TAGS, build_model, build_tokenizer  # noqa: E402

PROMPTS = ["Q: Tom has 3 apples\nA: ", "Q: Ann has 12 pens and gets 4 more\nA: "]


@pytest.fixture(scope="module")
def policy() -> Policy:
    tokenizer = build_tokenizer(PROMPTS)
    model = build_model(tokenizer, seed=0)
    # Make `</answer>` likely so that some completions stop early.
    with torch.no_grad():
        model.lm_head.weight[tokenizer.convert_tokens_to_ids("</answer>")] *= 0
        model.model.norm.weight.fill_(0.1)
    return Policy(model, tokenizer)


def test_the_tags_are_single_ordinary_tokens_that_survive_decoding(policy: Policy) -> None:
    tokenizer = policy.tokenizer
    text = "<think>\n3 + 4 = 7\n</think>\n<answer>\n7\n</answer>\n"
    ids = tokenizer.encode(text, add_special_tokens=False)
    assert tokenizer.decode(ids, skip_special_tokens=True) == text
    for tag in TAGS:
        assert len(tokenizer.encode(tag, add_special_tokens=False)) == 1


def test_completions_stop_at_the_stop_string_and_keep_it(policy: Policy) -> None:
    engine = TorchEngine(policy.model, policy.tokenizer)
    groups = engine.generate(PROMPTS, 16, 1.0, 12, ("</answer>",), seed=0)
    flat = [g for group in groups for g in group]
    stopped = [g for g in flat if g.finished]
    assert stopped and any(not g.finished for g in flat)
    for g in flat:
        assert policy.tokenizer.decode(g.token_ids, skip_special_tokens=True) == g.text
        assert g.text.count("</answer>") <= 1
        if g.finished:
            assert g.text.endswith("</answer>") or g.token_ids[-1] == policy.tokenizer.eos_token_id
        else:
            assert len(g.token_ids) == 12


def test_a_stop_string_of_several_tokens(policy: Policy) -> None:
    engine = TorchEngine(policy.model, policy.tokenizer)
    flat = [g for group in engine.generate(PROMPTS, 16, 1.0, 12, (" has",), seed=1) for g in group]
    for g in flat:
        if g.finished and g.token_ids[-1] != policy.tokenizer.eos_token_id:
            assert g.text.endswith(" has") and g.text.count(" has") == 1


def test_greedy_ignores_the_seed_and_sampling_follows_it(policy: Policy) -> None:
    engine = TorchEngine(policy.model, policy.tokenizer)

    def texts(temperature: float, seed: int) -> list[str]:
        groups = engine.generate(PROMPTS, 4, temperature, 10, ("</answer>",), seed)
        return [g.text for group in groups for g in group]

    assert texts(0.0, 1) == texts(0.0, 2)
    assert len(set(texts(0.0, 1)[:4])) == 1  # greedy: every copy the same
    assert texts(1.0, 5) == texts(1.0, 5)
    assert texts(1.0, 5) != texts(1.0, 6)
    assert policy.model.training  # restored after sampling


def test_one_prefill_per_prompt_samples_like_one_per_row(policy: Policy) -> None:
    # n copies share one prefill; with n = 1 and the prompts repeated, every row has its own.
    engine = TorchEngine(policy.model, policy.tokenizer)
    shared = engine.generate(PROMPTS, 3, 0.0, 10, ("</answer>",), 0)
    alone = engine.generate([p for p in PROMPTS for _ in range(3)], 1, 0.0, 10, ("</answer>",), 0)
    assert [g for group in shared for g in group] == [group[0] for group in alone]


def test_engine_selection(policy: Policy, monkeypatch: Any) -> None:
    engine, why = make_engine(policy, fast_config(engine="torch"))
    assert engine.name == "torch" and "engine=torch" in why
    monkeypatch.setattr("trainer.engine.vllm_status", lambda: (False, "ModuleNotFoundError"))
    engine, why = make_engine(policy, fast_config(engine="auto"))
    assert engine.name == "torch" and "auto: vllm not available" in why
    with pytest.raises(EngineError, match=r"pip install 'rewardkit\[vllm\]'.*engine=torch"):
        make_engine(policy, fast_config(engine="vllm"))


def test_vllm_status_says_why() -> None:
    available, why = vllm_status()
    assert isinstance(available, bool) and why
