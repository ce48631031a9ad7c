"""Shared pieces of the trainer tests: a fast config, a tiny policy, a scripted engine.

Not a conftest: imported by name, like `strategies`. Tests that use torch import this
after ``pytest.importorskip("torch")``.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

from trainer.config import TrainConfig
from trainer.engine import Generation


def fast_config(**changes: Any) -> TrainConfig:
    """The default run shrunk to a fraction of a second per step."""
    base: dict[str, Any] = {
        "train_samples": 12,
        "test_samples": 4,
        "prompts_per_step": 4,
        "num_generations": 4,
        "max_new_tokens": 8,
        "epochs": 1,
        "pass_k": (1, 2, 4),
        "save_every": 0,
        "engine": "torch",
    }
    return TrainConfig().replace(**{**base, **changes})


class ScriptedEngine:
    """An engine that returns given texts: `greedy[i]` at temperature 0, else `samples[i]`."""

    name = "scripted"

    def __init__(self, greedy: list[str], samples: list[list[str]]) -> None:
        self.greedy = greedy
        self.samples = samples

    def generate(
        self,
        prompts: list[str],
        n: int,
        temperature: float,
        max_new_tokens: int,
        stop: tuple[str, ...],
        seed: int,
    ) -> list[list[Generation]]:
        if temperature == 0:
            return [[Generation(text, (), True)] * n for text in self.greedy[: len(prompts)]]
        return [[Generation(t, (), True) for t in texts[:n]] for texts in self.samples]

    def sync_weights(self, model: Any) -> None:
        pass
