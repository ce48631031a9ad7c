"""`precision`: what ``auto`` resolves to on each device, and the error where it cannot run."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from trainer_fixtures import fast_config  # noqa: E402

from trainer.model import ModelError, Precision, resolve_device, resolve_precision  # noqa: E402


def test_auto_is_float32_on_a_cpu_and_bfloat16_is_allowed_there() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision(fast_config(), cpu) == Precision("float32", "cpu")
    chosen = resolve_precision(fast_config(precision="bfloat16"), cpu)
    assert chosen == Precision("bfloat16", "cpu") and chosen.dtype == torch.bfloat16


@pytest.mark.parametrize("bf16", [True, False])
def test_auto_on_a_gpu_is_bfloat16_where_the_gpu_has_it(monkeypatch: Any, bf16: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla T4")
    gpu = torch.device("cuda")  # a device object only: nothing runs on it
    expected = "bfloat16" if bf16 else "float32"
    assert resolve_precision(fast_config(), gpu) == Precision(expected, "cuda")
    assert resolve_precision(fast_config(precision="float32"), gpu).name == "float32"
    if bf16:
        assert resolve_precision(fast_config(precision="bfloat16"), gpu).name == "bfloat16"
    else:
        with pytest.raises(ModelError, match=r"Tesla T4.*set precision=float32"):
            resolve_precision(fast_config(precision="bfloat16"), gpu)


def test_the_autocast_context_follows_the_precision() -> None:
    weight = torch.ones(2, 2)
    with Precision("bfloat16", "cpu").autocast():
        assert (weight @ weight).dtype == torch.bfloat16
    with Precision("float32", "cpu").autocast():
        assert (weight @ weight).dtype == torch.float32


def _saved_tiny(folder: Any, **changes: Any) -> str:
    """The embedded tiny model and tokenizer saved to `folder`, changed as asked."""
    from trainer.tiny import build_model, build_tokenizer

    tokenizer = build_tokenizer(["What is 2 + 3?"])
    model = build_model(tokenizer, seed=0)
    if "vocab_size" in changes:
        model.resize_token_embeddings(changes["vocab_size"])
    if changes.get("no_pad_no_eos"):
        tokenizer.pad_token = None
        tokenizer.eos_token = None
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_a_tokenizer_and_model_that_cannot_train_together_are_refused(tmp_path: Any) -> None:
    """An IndexError in the embedding mid-step, or 'Could not infer dtype of NoneType' from
    the engine, each with a run folder left behind: now errors before anything starts."""
    from trainer.model import load_policy

    small = _saved_tiny(tmp_path / "small", vocab_size=10)
    with pytest.raises(ModelError, match=r"the model's embedding has 10 rows, and the run uses"):
        load_policy(fast_config(model=small), [])
    # more tokens than the embedding is fine while the run uses none of them (CodeLlama's
    # tokenizer holds 4 fill-in-the-middle tokens its 32,000-row embedding lacks)
    extra = _saved_tiny(tmp_path / "extra")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(extra)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<PRE>", "<SUF>", "<MID>"]})
    tokenizer.save_pretrained(extra)
    assert load_policy(fast_config(model=extra), []).model is not None
    bare = _saved_tiny(tmp_path / "bare", no_pad_no_eos=True)
    with pytest.raises(ModelError, match="neither a pad nor an EOS token"):
        load_policy(fast_config(model=bare), [])


class _Spelling:
    """A tokenizer that spells `<think>` as a special token and cannot spell `</answer>`."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[str]:
        return [text]

    def decode(self, ids: list[str], skip_special_tokens: bool = False) -> str:
        text = ids[0]
        if text.endswith("</answer>"):
            return text.removesuffix("</answer>") + "</as>"
        if text.endswith("<think>") and skip_special_tokens:
            return text.removesuffix("<think>")
        return text


def test_tags_the_model_cannot_write_are_named() -> None:
    from trainer.model import tag_problems

    assert tag_problems(_Spelling(), ["<think>", "<answer>", "</answer>"]) == [
        "<think> (a special token, which decoding deletes)",
        "</answer> (the vocabulary cannot spell it)",
    ]


class _Spaced(_Spelling):
    """A byte-level BPE with add_prefix_space: a text decodes with a space before it."""

    def decode(self, ids: list[str], skip_special_tokens: bool = False) -> str:
        return " " + ids[0]


def test_a_tokenizer_that_adds_a_leading_space_spells_the_tags() -> None:
    from trainer.model import tag_problems

    assert tag_problems(_Spaced(), ["<think>", "</answer>"]) == []


def test_a_prompt_token_past_the_embedding_is_found() -> None:
    from trainer.model import unembedded_prompt

    class Model:
        def get_input_embeddings(self) -> Any:
            return torch.nn.Embedding(10, 4)

    assert unembedded_prompt(Model(), [1, 9, 3]) is None
    assert unembedded_prompt(Model(), [1, 12, 10]) == 12


def test_a_gpu_index_past_the_gpus_there_is_named(monkeypatch: Any) -> None:
    # cuda:3 on a one-GPU machine failed in model.to() with "invalid device ordinal".
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device(fast_config(device="cuda:0")) == torch.device("cuda:0")
    with pytest.raises(ModelError, match=r"device=cuda:3, but torch sees 1 CUDA GPU here \(cuda:0"):
        resolve_device(fast_config(device="cuda:3"))


LAYER = {"num_hidden_layers": 1, "num_attention_heads": 2, "hidden_size": 32}
DROPOUT_MODELS = {
    "gpt2": ("GPT2Config", {"n_embd": 32, "n_layer": 1, "n_head": 2}),  # ships 0.1
    # a rate its attention layers keep as a float
    "llama": ("LlamaConfig", {**LAYER, "intermediate_size": 64, "attention_dropout": 0.1}),
    # rates read from the config at every forward
    "falcon": ("FalconConfig", {**LAYER, "hidden_dropout": 0.3, "attention_dropout": 0.3}),
}


@pytest.mark.parametrize("family", sorted(DROPOUT_MODELS))
def test_dropout_is_off_so_training_computes_what_sampling_did(tmp_path: Any, family: str) -> None:
    """pi_old is the update's first pass in train mode and the sampler runs in eval mode:
    GPT-2's shipped dropout of 0.1 made them differ by up to 0.13 in log-prob, and the KL to
    an equal reference nonzero."""
    import transformers

    from trainer.loss import token_logprobs
    from trainer.model import load_policy
    from trainer.tiny import build_tokenizer

    tokenizer = build_tokenizer(["What is 2 + 3?"])
    name, shape = DROPOUT_MODELS[family]
    config = getattr(transformers, name)(
        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id, **shape
    )
    model = transformers.AutoModelForCausalLM.from_config(config)
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded = load_policy(fast_config(model=str(tmp_path)), []).model
    ids = torch.tensor([tokenizer.encode("What is 2 + 3? 5", add_special_tokens=False)])
    mask = torch.ones_like(ids)
    with torch.no_grad():
        loaded.train()
        first, second = (token_logprobs(loaded, ids, mask, 3) for _ in range(2))
        loaded.eval()
        sampling = token_logprobs(loaded, ids, mask, 3)
    assert torch.equal(first, second) and torch.equal(first, sampling)
    # the model the run saves keeps the rates it was loaded with
    from trainer.model import config_as_loaded

    with config_as_loaded(loaded):
        loaded.save_pretrained(tmp_path / "saved")
    saved = transformers.AutoConfig.from_pretrained(tmp_path / "saved")
    rates = {k: v for k, v in saved.to_dict().items() if "drop" in k}
    assert rates == {k: v for k, v in config.to_dict().items() if "drop" in k} and any(
        rates.values()
    )
