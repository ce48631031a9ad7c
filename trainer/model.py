"""The policy: a causal LM and its tokenizer, built (``model: tiny``) or loaded.

`load_policy` is called twice in a run with `beta > 0`: once for the policy, once for the
frozen reference. Both builds are deterministic, so a resumed run gets back the very
reference it started with without saving a copy of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trainer.config import TINY_MODEL, ConfigError, TrainConfig

if TYPE_CHECKING:
    import torch

__all__ = ["ModelError", "Policy", "load_policy", "resolve_device"]


class ModelError(ConfigError):
    """`model` or `device` names something that cannot be loaded or used here."""


@dataclass
class Policy:
    """A causal LM with its tokenizer (left padding, a pad token always set)."""

    model: Any  # a transformers PreTrainedModel
    tokenizer: Any  # a transformers PreTrainedTokenizerBase


def resolve_device(config: TrainConfig) -> torch.device:
    import torch

    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(
            f"device={config.device}, but torch sees no CUDA GPU here (torch"
            f" {torch.__version__}); set device=cpu, or device=auto to use a GPU when there is one"
        )
    return torch.device(config.device)


def load_policy(config: TrainConfig, texts: Iterable[str]) -> Policy:
    """The model named by `config.model`; `texts` (questions, system prompt) size the tiny one."""
    tokenizer: Any
    model: Any
    if config.model == TINY_MODEL:
        from trainer.tiny import build_model, build_tokenizer

        tokenizer = build_tokenizer([config.system_prompt, *texts])
        model = build_model(tokenizer, seed=config.seed)
    else:
        tokenizer, model = _pretrained(config.model)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
    model.to(resolve_device(config))
    return Policy(model, tokenizer)


def _pretrained(name: str) -> tuple[Any, Any]:
    """Tokenizer and model `name` (a hub id or a local folder), or a `ModelError` saying why not."""
    from pathlib import Path

    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(name).expanduser()
    if name.startswith((".", "/", "~")) and not path.is_dir():
        raise ModelError(
            f"model={name!r}: no such folder; give a folder that holds a Hugging Face model and"
            " its tokenizer (what save_pretrained writes), a hub id, or model=tiny"
        )
    if path.is_dir() and not (path / "config.json").is_file():
        raise ModelError(
            f"model={name!r}: the folder has no config.json, so it holds no saved Hugging Face"
            " model; give the folder save_pretrained wrote (model and tokenizer), a hub id, or"
            " model=tiny"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(name)
        model = AutoModelForCausalLM.from_pretrained(name, dtype="float32")
    except (OSError, ValueError, KeyError, ImportError) as error:
        # transformers reports a missing folder, no network, a missing tokenizer file and an
        # unknown architecture in these types, with several lines of advice; keep the first.
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ModelError(
            f"model={name!r} cannot be loaded ({type(error).__name__}: {reason}). Give a"
            " folder that holds a causal LM and its tokenizer (what save_pretrained writes), a"
            " hub id with network access or already in the Hugging Face cache, or model=tiny"
        ) from None
    return tokenizer, model
