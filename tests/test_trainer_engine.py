"""TorchEngine: stops at the stop string and keeps it, greedy at 0, seeded sampling."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from trainer_fixtures import fast_config  # noqa: E402

from trainer.config import DEFAULT_SYSTEM_PROMPT  # noqa: E402
from trainer.decode import Decoder, matches_model  # noqa: E402
from trainer.engine import EngineError, TorchEngine, make_engine, vllm_status  # noqa: E402
from trainer.model import Policy, Precision  # noqa: E402
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


def test_a_one_token_stop_spelled_by_other_tokens_is_cut_after_it() -> None:
    # `</answer>` is one token, but the vocabulary can also spell it `<` `/` `answer` `>`;
    # sampling checks the one token only, so the completion is cut afterwards.
    tokenizer = build_tokenizer([DEFAULT_SYSTEM_PROMPT, *PROMPTS])
    pieces = [tokenizer.convert_tokens_to_ids(t) for t in ["<", "/", "answer", ">"]]
    five = tokenizer.convert_tokens_to_ids("5")
    assert tokenizer.decode(pieces) == "</answer>"
    script = [five, *pieces, five, five, five]
    engine = TorchEngine(build_model(tokenizer, seed=0), tokenizer, fast_decode=False)
    calls = iter(range(len(script)))

    def scripted(ids: Any, mask: Any, positions: Any, cache: Any) -> Any:
        logits = torch.full((ids.shape[0], len(tokenizer)), -1e9)
        logits[:, script[next(calls)]] = 0.0
        return logits

    engine._forward = scripted  # type: ignore[method-assign]
    (g,) = engine.generate(PROMPTS[:1], 1, 0.0, len(script), ("</answer>",), seed=0)[0]
    assert g.text == "5</answer>"
    assert g.token_ids == (five, *pieces) and g.finished


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


def qwen2_model(tokenizer: Any) -> Any:
    """A tiny Qwen2: biases on q, k and v, and 4 query heads sharing 2 key-value heads."""
    import transformers

    config = transformers.Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model: Any = transformers.Qwen2ForCausalLM(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias"):  # zero-initialised: make them count
                parameter.normal_(0, 0.5)
    return model


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
@pytest.mark.parametrize("family", ["llama", "qwen2"])
def test_the_fast_decode_step_samples_what_the_model_forward_samples(
    policy: Policy, family: str, precision: str
) -> None:
    # trainer.decode mirrors the model's forward: same logits, so the same tokens per seed;
    # under bfloat16 autocast too, where both run the same bfloat16 kernels.
    model = policy.model if family == "llama" else qwen2_model(policy.tokenizer)
    decoder = Decoder.build(model)
    with Precision(precision, "cpu").autocast():
        assert decoder is not None and matches_model(decoder)
    fast = TorchEngine(model, policy.tokenizer, precision=Precision(precision, "cpu"))
    slow = TorchEngine(
        model, policy.tokenizer, fast_decode=False, precision=Precision(precision, "cpu")
    )
    prompts = [*PROMPTS, "Q: 7"]  # three prompt lengths: left padding in the batch
    for temperature, seed in ((1.0, 0), (1.0, 1), (0.7, 2), (0.0, 0)):
        args = (prompts, 5, temperature, 16, ("</answer>", " has"), seed)
        assert fast.generate(*args) == slow.generate(*args)
    assert fast.fast_decode is True and slow.fast_decode is False


def test_a_model_the_fast_step_does_not_mirror_uses_the_model_forward(policy: Policy) -> None:
    model = qwen2_model(policy.tokenizer)
    model.config._attn_implementation = "eager"  # another mask format: not mirrored
    assert Decoder.build(model) is None
    engine = TorchEngine(model, policy.tokenizer)
    groups = engine.generate(PROMPTS, 2, 1.0, 6, ("</answer>",), 0)
    assert engine.fast_decode is False and len(groups) == 2
    hooked = qwen2_model(policy.tokenizer)
    hooked.lm_head.register_forward_hook(lambda *_: None)  # only __call__ would run it
    assert Decoder.build(hooked) is None


def test_a_decoder_that_gives_other_logits_is_not_used(policy: Policy) -> None:
    model = qwen2_model(policy.tokenizer)
    decoder = Decoder.build(model)
    assert decoder is not None
    decoder.rotate_half = lambda x: -x  # a mirror gone wrong: a rotation that is not RoPE's
    assert not matches_model(decoder)


def test_bfloat16_sampling_runs_in_bfloat16(policy: Policy) -> None:
    """The engine samples under the policy's autocast: the first token's logits are those
    of the model's bfloat16 forward, not of its float32 one."""
    seen: list[Any] = []
    hook = policy.model.lm_head.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    try:
        for name in ("float32", "bfloat16"):
            engine = TorchEngine(policy.model, policy.tokenizer, precision=Precision(name, "cpu"))
            engine.generate(PROMPTS, 2, 1.0, 3, ("</answer>",), seed=0)
    finally:
        hook.remove()
    assert seen[0] == torch.float32 and seen[-1] == torch.bfloat16
    assert all(p.dtype == torch.float32 for p in policy.model.parameters())


def test_engine_selection(policy: Policy, monkeypatch: Any) -> None:
    engine, why = make_engine(policy, fast_config(engine="torch"))
    assert engine.name == "torch" and "engine=torch" in why
    monkeypatch.setattr("trainer.engine.vllm_status", lambda: (False, "ModuleNotFoundError"))
    engine, why = make_engine(policy, fast_config(engine="auto"))
    assert engine.name == "torch" and "auto: vllm not available" in why
    with pytest.raises(EngineError, match=r"pip install 'rewardkit\[vllm\]'.*engine=torch"):
        make_engine(policy, fast_config(engine="vllm"))


def test_auto_takes_torch_for_a_model_vllm_refuses(policy: Policy, monkeypatch: Any) -> None:
    monkeypatch.setattr("trainer.engine.vllm_status", lambda: (True, "vllm imports"))
    seen: list[str | None] = []

    def refuses(config: Any, architecture: str | None = None) -> str:
        seen.append(architecture)
        return "vLLM does not support the model's architecture (X)"

    monkeypatch.setattr("trainer.engine.vllm_refuses", refuses)
    engine, why = make_engine(policy, fast_config(engine="auto"))
    assert engine.name == "torch" and why == f"torch (auto: {refuses(None)})"
    assert seen[0] == "LlamaForCausalLM"  # a model built in memory has no architectures yet


def test_vllm_import_frames_are_let_go() -> None:
    """An exception kept at module level in vllm.* must not keep its importer's frames."""
    import gc
    import sys
    import types
    import weakref

    from trainer.engine import _unpin_import_frames

    class Big:
        pass

    module = types.ModuleType("vllm._rewardkit_test")

    def importer() -> weakref.ref[Big]:
        big = Big()  # a local of a frame above the import, as the run's policy was
        try:
            raise ImportError("no torchcodec")
        except ImportError as error:
            module.kept = error  # type: ignore[attr-defined]
        return weakref.ref(big)

    sys.modules[module.__name__] = module
    try:
        ref = importer()
        gc.collect()
        assert ref() is not None  # pinned by the kept exception's traceback
        _unpin_import_frames()
        gc.collect()
        assert ref() is None and str(module.kept) == "no torchcodec"  # type: ignore[attr-defined]
    finally:
        del sys.modules[module.__name__]


def test_vllm_status_says_why() -> None:
    available, why = vllm_status()
    assert isinstance(available, bool) and why


def test_a_vllm_that_refuses_the_weight_push_is_an_engine_error_saying_what_to_do() -> None:
    from trainer.engine import push_weights

    class OldLLM:  # an older vLLM: reload_weights takes no weights
        def collective_rpc(self, method: str, kwargs: dict[str, Any]) -> None:
            raise TypeError(
                "reload_weights() got an unexpected keyword argument 'weights_iterator'"
            )

        def reset_prefix_cache(self) -> None:
            raise AssertionError("not reached")

    with pytest.raises(EngineError, match="did not take the policy's weights") as caught:
        push_weights(OldLLM(), [])
    assert "unexpected keyword argument 'weights_iterator'" in str(caught.value)
    assert "set engine=torch" in str(caught.value)


def test_held_back_native_output_passes_on_without_the_noise(capfd: Any) -> None:
    import os
    import re

    from trainer.engine import _stderr_without

    noise = re.compile(r"^\[W\d+ .*\] Warning: NUMA binding")
    with _stderr_without(noise):
        os.write(2, b"[W1202 05:39:04.5 utils.cpp:68] Warning: NUMA binding: MEMBIND\n")
        os.write(2, b"a real warning\n")
    assert capfd.readouterr().err == "a real warning\n"
    with pytest.raises(RuntimeError), _stderr_without(noise):  # a failed start: all of it
        os.write(2, b"[W1202 05:39:04.5 utils.cpp:68] Warning: NUMA binding: MEMBIND\n")
        raise RuntimeError
    assert "NUMA binding" in capfd.readouterr().err


def test_progress_bars_come_back_as_they_were() -> None:
    from transformers.utils import logging as hf_logging

    from trainer.model import no_progress_bars

    for was_on in (True, False):
        (hf_logging.enable_progress_bar if was_on else hf_logging.disable_progress_bar)()
        with no_progress_bars():
            assert not hf_logging.is_progress_bar_enabled()
        assert hf_logging.is_progress_bar_enabled() == was_on
    hf_logging.enable_progress_bar()
