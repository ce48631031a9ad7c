"""The `>>>` examples in the trainer's docstrings (the pytest config collects rewardkit's)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "trainer.advantage",
    "trainer.config",
    "trainer.console",
    "trainer.data",
    "trainer.evaluate",
    "trainer.loop",
    "trainer.loss",
    "trainer.prompt",
    "trainer.report",
    "trainer.rollout",
]
NEED_TORCH = {"trainer.advantage", "trainer.loss", "trainer.rollout", "trainer.loop"}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    if name in NEED_TORCH:
        pytest.importorskip("torch")
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
