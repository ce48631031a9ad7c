"""The policy: a causal LM and its tokenizer, built (``model: tiny``) or loaded.

`load_policy` is called twice in a run with `beta > 0`: once for the policy, once for the
frozen reference. Both builds are deterministic, so a resumed run gets back the very
reference it started with without saving a copy of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trainer.config import TINY_MODEL, TrainConfig

if TYPE_CHECKING:
    import torch

__all__ = ["Policy", "load_policy", "resolve_device"]


@dataclass
class Policy:
    """A causal LM with its tokenizer (left padding, a pad token always set)."""

    model: Any  # a transformers PreTrainedModel
    tokenizer: Any  # a transformers PreTrainedTokenizerBase


def resolve_device(config: TrainConfig) -> torch.device:
    import torch

    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
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
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(config.model)
        model = AutoModelForCausalLM.from_pretrained(config.model, dtype="float32")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
    model.to(resolve_device(config))
    return Policy(model, tokenizer)
