"""The policy: a causal LM and its tokenizer, built (``model: tiny``) or loaded, and the
precision its forward passes run in.

`load_policy` is called twice in a run with `beta > 0`: once for the policy, once for the
frozen reference. Both builds are deterministic, so a resumed run gets back the very
reference it started with without saving a copy of it.
"""

from __future__ import annotations

import contextlib
import re
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rewardkit.extract import TAGS
from trainer.config import TINY_MODEL, ConfigError, TrainConfig
from trainer.hf import checkpointing_on

if TYPE_CHECKING:
    import torch

__all__ = [
    "FLOAT32",
    "ModelError",
    "Policy",
    "Precision",
    "config_as_loaded",
    "disable_dropout",
    "enable_checkpointing",
    "load_policy",
    "no_progress_bars",
    "resolve_device",
    "resolve_precision",
    "tag_problems",
    "unembedded_prompt",
]


class ModelError(ConfigError):
    """`model` or `device` names something that cannot be loaded or used here."""


@dataclass(frozen=True)
class Precision:
    """What the forward passes compute in; the weights always stay float32.

    ``bfloat16`` is mixed precision, as TRL's ``bf16=True`` (through accelerate) gives it:
    the weights, their gradients and AdamW's state stay float32, and every forward pass
    (sampling, the reference, the update) runs under ``torch.autocast``, which takes the
    matrix products and attention to bfloat16 and leaves norms and softmax in float32. The
    log-probs are taken from float32 logits either way. Pure bfloat16 weights would lose
    the updates of a small learning rate: at 1e-6 an AdamW step is below bfloat16's
    resolution for most weights. float16 is not offered; it would need loss scaling.

    >>> Precision("float32", "cpu").autocast().__class__.__name__  # nothing to change
    'nullcontext'
    >>> Precision("bfloat16", "cpu").describe()
    'bfloat16 (autocast, float32 weights)'
    """

    name: str = "float32"  # float32 or bfloat16
    device_type: str = "cpu"  # torch.device.type of the model: "cpu", "cuda"

    @property
    def dtype(self) -> torch.dtype:
        import torch

        dtype: torch.dtype = getattr(torch, self.name)
        return dtype

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The context every forward pass runs in (wrap forwards only, not `backward`)."""
        if self.name == "float32":
            return contextlib.nullcontext()
        import torch

        return torch.autocast(self.device_type, dtype=self.dtype)

    def describe(self) -> str:
        return "float32" if self.name == "float32" else f"{self.name} (autocast, float32 weights)"


FLOAT32 = Precision()  # the default: every forward in float32


@dataclass
class Policy:
    """A causal LM with its tokenizer (left padding, a pad token always set)."""

    model: Any  # a transformers PreTrainedModel
    tokenizer: Any  # a transformers PreTrainedTokenizerBase
    precision: Precision = field(default_factory=Precision)  # of its forward passes


def resolve_device(config: TrainConfig) -> torch.device:
    import torch

    if config.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(
            f"device={config.device}, but torch sees no CUDA GPU here (torch"
            f" {torch.__version__}); set device=cpu, or device=auto to use a GPU when there is one"
        )
    device = torch.device(config.device)
    if device.index is not None and device.index >= (count := torch.cuda.device_count()):
        raise ModelError(
            f"device={config.device}, but torch sees {count} CUDA GPU{'' if count == 1 else 's'}"
            f" here (cuda:0 to cuda:{count - 1}); pick one of those, or set device=cuda"
        )
    return device


def resolve_precision(config: TrainConfig, device: torch.device) -> Precision:
    """`config.precision` on `device`: ``auto`` is bfloat16 on a CUDA GPU that supports it
    (Ampere and later), float32 elsewhere. bfloat16 on a CPU is allowed (torch autocasts
    there too) but rarely faster."""
    import torch

    bf16_gpu = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if config.precision == "auto":
        return Precision("bfloat16" if bf16_gpu else "float32", device.type)
    if config.precision == "bfloat16" and device.type == "cuda" and not bf16_gpu:
        raise ModelError(
            f"precision=bfloat16, but this GPU ({torch.cuda.get_device_name(device)}) does not"
            " compute in bfloat16; set precision=float32 (or auto)"
        )
    return Precision(config.precision, device.type)


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
        _check_pair(config.model, tokenizer, model)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        tokenizer.padding_side = "left"
    disable_dropout(model)
    device = resolve_device(config)
    model.to(device)
    return Policy(model, tokenizer, resolve_precision(config, device))


def disable_dropout(model: Any) -> int:
    """Every dropout in `model` set to 0; returns how many were not 0 already.

    The update takes pi_old from its own first pass (`trainer.update`) and the KL against
    a reference in eval mode, so the policy must compute the same log-probs in training
    as when it sampled: with dropout on (GPT-2's configs ship 0.1) pi_old would not be the
    sampling policy and the KL would not be 0 at equal weights. That covers
    ``torch.nn.Dropout`` modules, the float rates layers keep as attributes
    (``attention_dropout``, read only in training) and those some models read from their
    config at each forward (Falcon's ``hidden_dropout``); `config_as_loaded` puts the
    config's back while the model is saved.

    >>> import torch
    >>> layer = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Dropout(0.1))
    >>> layer.attention_dropout = 0.1
    >>> disable_dropout(layer), layer[1].p, layer.attention_dropout
    (2, 0.0, 0.0)
    """
    import torch

    nn = torch.nn
    dropouts = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
    changed = 0
    for module in model.modules():
        if isinstance(module, dropouts) and module.p:
            module.p = 0.0
            changed += 1
        changed += len(_zeroed_rates(module))
    config = getattr(model, "config", None)
    if config is not None and (rates := _zeroed_rates(config)):
        _CONFIG_RATES[model] = rates
        changed += len(rates)
    return changed


def _zeroed_rates(holder: Any) -> dict[str, float]:
    """`holder`'s nonzero float attributes named like a dropout rate (``attention_dropout``,
    ``hidden_dropout``, GPT-2's ``resid_pdrop``), set to 0; returns what they were."""
    rates = {
        key: value
        for key, value in vars(holder).items()
        if _RATE_NAME.search(key) and isinstance(value, float) and value
    }
    for key in rates:
        setattr(holder, key, 0.0)
    return rates


@contextlib.contextmanager
def config_as_loaded(model: Any) -> Iterator[None]:
    """`model`'s config with the dropout rates it was loaded with, meanwhile: a model
    saved by the run keeps them for whoever trains it next."""
    rates = _CONFIG_RATES.get(model, {})
    for key, value in rates.items():
        setattr(model.config, key, value)
    try:
        yield
    finally:
        for key in rates:
            setattr(model.config, key, 0.0)


# Float dropout rates transformers' layers keep as attributes (Llama, Qwen2, Mistral:
# attention_dropout; OPT: dropout, activation_dropout; Bloom: hidden_dropout) and the
# config fields some read at every forward (Falcon, Persimmon; GPT-2's *_pdrop).
_RATE_NAME = re.compile(r"dropout|pdrop")
_CONFIG_RATES: weakref.WeakKeyDictionary[Any, dict[str, float]] = weakref.WeakKeyDictionary()


def _check_pair(name: str, tokenizer: Any, model: Any) -> None:
    """A `ModelError` where the tokenizer and the model cannot train together: a token the
    run uses (padding, EOS, BOS, the tags) with an id past the model's embedding (an
    IndexError mid-step; `unembedded_prompt` checks the prompts), or neither a pad nor an
    EOS token (batches are padded, and generation stops at EOS). A tokenizer may hold more
    tokens than the embedding (CodeLlama's fill-in-the-middle ones) when the run uses none.
    """
    if tokenizer.pad_token is None and tokenizer.eos_token is None:
        raise ModelError(
            f"model={name!r}: the tokenizer has neither a pad nor an EOS token; batches are"
            " padded and completions end at EOS: set one (tokenizer.eos_token = ..., or"
            " tokenizer.add_special_tokens({'pad_token': ...})) and save it again"
        )
    size = _embedding_rows(model)
    used = {
        f"{what} token": getattr(tokenizer, f"{what}_token_id", None)
        for what in ("pad", "eos", "bos")
    }
    for tag in TAGS:
        ids = tokenizer.encode(tag, add_special_tokens=False)
        used[tag] = max(ids) if ids else None
    past = [f"{what} (id {i})" for what, i in used.items() if isinstance(i, int) and i >= size]
    if past:
        raise ModelError(
            f"model={name!r}: the model's embedding has {size:,} rows, and the run uses"
            f" {', '.join(past)} past them; resize it (model.resize_token_embeddings("
            "len(tokenizer))) and save both again"
        )


def unembedded_prompt(model: Any, ids: Iterable[int]) -> int | None:
    """The first of a prompt's token `ids` that the model has no embedding for, or None."""
    size = _embedding_rows(model)
    return next((i for i in ids if i >= size), None)


def _embedding_rows(model: Any) -> int:
    embedding = model.get_input_embeddings()
    return int(getattr(embedding, "num_embeddings", 0) or model.config.vocab_size)


def tag_problems(tokenizer: Any, tags: Iterable[str]) -> list[str]:
    """Why the model could not write each of `tags` as the rewards read it, or [] when it
    can: completions are decoded with special tokens skipped, so a tag that is a special
    token vanishes, and a tag the vocabulary cannot spell never appears. Each tag is
    encoded after other text, as it stands in a completion (a tokenizer that adds a space
    before a text's start would otherwise seem to misspell it).

    >>> from trainer.tiny import TAGS, build_tokenizer
    >>> tag_problems(build_tokenizer(["2 + 3"]), TAGS)
    []
    """
    problems = []
    for tag in tags:
        ids = tokenizer.encode("2" + tag, add_special_tokens=False)
        if not tokenizer.decode(ids, skip_special_tokens=False).endswith(tag):
            problems.append(f"{tag} (the vocabulary cannot spell it)")
        elif not tokenizer.decode(ids, skip_special_tokens=True).endswith(tag):
            problems.append(f"{tag} (a special token, which decoding deletes)")
    return problems


def enable_checkpointing(model: Any) -> None:
    """Gradient checkpointing for `model`'s training forwards: each layer's activations are
    recomputed in the backward pass instead of kept, which bounds memory by one layer's
    activations at the cost of a second forward. Non-reentrant (torch's advice), so the
    inputs need not require grad: the hook transformers adds for that is removed again,
    which keeps the torch engine's fast decode step (`trainer.decode`) usable, since it
    refuses models with hooks. Under it the update runs over full sequences
    (`trainer.loss.shared_prompt_logprobs` falls back: transformers drops the KV cache)."""
    checkpointing_on(model, use_reentrant=False)
    model.disable_input_require_grads()


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


@contextlib.contextmanager
def no_progress_bars() -> Iterator[None]:
    """transformers' progress bars off meanwhile ("Writing model shards" in a live run)."""
    from transformers.utils import logging as hf_logging

    was_on = hf_logging.is_progress_bar_enabled()
    off: Any = hf_logging.disable_progress_bar  # untyped
    on: Any = hf_logging.enable_progress_bar
    off()
    try:
        yield
    finally:
        if was_on:
            on()
