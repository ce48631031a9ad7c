"""Generation engines behind one small interface. The only module that imports vllm.

Two engines:

- ``TorchEngine``: batched sampling with the Hugging Face model being trained and a KV
  cache; the weights are the policy's own, so there is nothing to sync.
- ``VLLMEngine``: a colocated ``vllm.LLM`` in the same process; after every optimizer step
  the trainer pushes the new weights into it (`sync_weights`) and `check_sync` compares
  vLLM's log-probs with the trainer's on a few sampled completions, stopping the run rather
  than training on stale weights.

`make_engine("auto", ...)` picks vLLM when it imports, else torch, and says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import torch


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
        """Make the engine generate with `model`'s current weights."""
        ...
