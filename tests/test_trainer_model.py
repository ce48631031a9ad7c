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
