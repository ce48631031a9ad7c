"""Optional Weights & Biases logging: on only when asked (`wandb: true`) and installed."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainer.config import ConfigError, TrainConfig

__all__ = ["Tracker"]


class Tracker:
    """Sends step rows and evaluations to W&B; does nothing when `config.wandb` is false."""

    def __init__(self, config: TrainConfig, root: Path) -> None:
        self.run: Any = None
        if not config.wandb:
            return
        try:
            wandb: Any = importlib.import_module("wandb")  # optional, untyped
        except ImportError:
            raise ConfigError(
                "wandb=true, but wandb is not installed: pip install wandb (or set wandb=false)"
            ) from None
        try:
            self.run = wandb.init(
                project=config.wandb_project,
                name=root.name,
                id=root.name,
                resume="allow",
                config=config.to_dict(),
                dir=str(root),
            )
        except Exception as error:  # wandb's own error types (no login, no network, ...)
            reason = (str(error).strip().splitlines() or [""])[0]
            raise ConfigError(
                f"wandb=true, but W&B did not start ({type(error).__name__}: {reason}); run"
                " `wandb login`, or set WANDB_MODE=offline to log to the run folder only, or"
                " set wandb=false"
            ) from None

    def log(self, values: Mapping[str, Any], step: int) -> None:
        if self.run is not None:
            self.run.log(dict(values), step=step)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
