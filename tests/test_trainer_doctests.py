"""The `>>>` examples in the trainer's docstrings (the pytest config collects rewardkit's)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

MODULES = [
    "trainer.advantage",
    "trainer.checkpoint",
    "trainer.cli",
    "trainer.config",
    "trainer.console",
    "trainer.data",
    "trainer.engine",
    "trainer.evaluate",
    "trainer.hf",
    "trainer.loop",
    "trainer.lock",
    "trainer.loss",
    "trainer.model",
    "trainer.prompt",
    "trainer.report",
    "trainer.rollout",
    "trainer.runfiles",
    "trainer.tracking",
    "trainer.watch",
]
NEED_TORCH = {"trainer.advantage", "trainer.loss", "trainer.rollout", "trainer.loop"}
NEED_TRANSFORMERS = {"trainer.model"}  # its examples build the tiny tokenizer


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    if name in NEED_TORCH:
        pytest.importorskip("torch")
    if name in NEED_TRANSFORMERS:
        pytest.importorskip("transformers")
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_every_module_with_examples_is_listed() -> None:
    # trainer.engine's and trainer.runfiles' examples once went unrun for want of a line.
    trainer = Path(__file__).resolve().parent.parent / "trainer"
    with_examples = {
        f"trainer.{path.stem}" for path in trainer.glob("*.py") if ">>>" in path.read_text()
    }
    assert with_examples == set(MODULES)
