"""Optional Weights & Biases logging: on only when asked (`wandb: true`) and installed."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainer.config import ConfigError, TrainConfig
from trainer.runfiles import atomic_write_bytes

__all__ = ["ID_FILE", "Tracker", "run_id"]

ID_FILE = "wandb_id.txt"  # the run's W&B id, kept so that --resume continues that run


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
        wandb_id = run_id(root)
        try:
            self.run = wandb.init(
                project=config.wandb_project,
                name=root.name,
                id=wandb_id,
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
        if not (root / ID_FILE).is_file():  # only once W&B took it: a failed start leaves none
            atomic_write_bytes(root / ID_FILE, wandb_id.encode())

    def log(self, values: Mapping[str, Any], step: int) -> None:
        if self.run is not None:
            self.run.log(dict(values), step=step)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()


def run_id(root: Path) -> str:
    """The W&B id of the run in `root`: the one kept in `root` (`ID_FILE`, written once
    W&B has started with it), else a new one: the folder's name, in the characters W&B
    allows, and 8 random hex digits.

    The folder's name alone is not unique: every ``--schemes`` comparison has runs named
    ``strict`` and ``lenient``, and with ``resume="allow"`` W&B would log a second
    comparison into the first one's runs. A run begun before the id was kept has none on
    disk and goes on with its folder's name, the id it was given then.

    >>> import re, tempfile
    >>> root = Path(tempfile.mkdtemp()) / "it's run 2"
    >>> root.mkdir()
    >>> bool(re.fullmatch(r"it-s-run-2-[0-9a-f]{8}", run_id(root)))
    True
    """
    import re
    import secrets

    path = root / ID_FILE
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    if (root / "wandb").is_dir():  # logged to W&B before ids were kept: its old id
        return root.name
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", root.name)[:48]
    return f"{name}-{secrets.token_hex(4)}"
