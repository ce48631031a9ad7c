"""`precision`: what ``auto`` resolves to on each device, and the error where it cannot run."""

from __future__ import annotations

from typing import Any

import pytest

torch = pytest.importorskip("torch")

from trainer_fixtures import fast_config  # noqa: E402

from trainer.model import ModelError, Precision, resolve_precision  # noqa: E402


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
    with pytest.raises(ModelError, match=r"the tokenizer has [\d,]+ tokens and the model's"):
        load_policy(fast_config(model=small), [])
    bare = _saved_tiny(tmp_path / "bare", no_pad_no_eos=True)
    with pytest.raises(ModelError, match="neither a pad nor an EOS token"):
        load_policy(fast_config(model=bare), [])


class _Spelling:
    """A tokenizer that spells `<think>` as a special token and cannot spell `</answer>`."""

    def encode(self, text: str, add_special_tokens: bool = False) -> list[str]:
        return [text]

    def decode(self, ids: list[str], skip_special_tokens: bool = False) -> str:
        text = ids[0]
        if text == "</answer>":
            return "</as>"
        return "" if text == "<think>" and skip_special_tokens else text


def test_tags_the_model_cannot_write_are_named() -> None:
    from trainer.model import tag_problems

    assert tag_problems(_Spelling(), ["<think>", "<answer>", "</answer>"]) == [
        "<think> (a special token, which decoding deletes)",
        "</answer> (the vocabulary cannot spell it)",
    ]
