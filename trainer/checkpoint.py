"""Checkpoints: model, optimizer and where the run stands, in one atomically replaced file.

The data order of an epoch and the sampling seed of a step are functions of the run's seed
and the step number (`trainer.loop`), so a position and the weights are all a resumed run
needs to continue exactly where the killed one stopped.
"""

from __future__ import annotations

import contextlib
import functools
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from trainer.config import ConfigError
from trainer.runfiles import atomic_write

__all__ = [
    "CHECKPOINT",
    "Position",
    "load_checkpoint",
    "recorded_engine",
    "save_checkpoint",
    "scheme_fingerprints",
]

CHECKPOINT = Path("checkpoint") / "state.pt"


@dataclass(frozen=True)
class Position:
    """How far a run got: epochs done, steps done in the current epoch, steps done in all."""

    epoch: int = 0
    index: int = 0
    step: int = 0
    sizes: dict[str, int] = field(default_factory=dict)  # sample file sizes at this point
    data: str = ""  # the data set's fingerprint (`Data.fingerprint`); "" in older checkpoints
    engine: str = ""  # the engine that generated ("torch", "vllm"); "" in older checkpoints
    # each reward's fingerprint (`scheme_fingerprints`); empty in older checkpoints
    scheme: dict[str, str] = field(default_factory=dict)


def scheme_fingerprints(scheme: Any) -> dict[str, str]:
    """A fingerprint of each reward of `scheme`, by name: what it is (built-in and variant,
    or the file of a custom function, read whole: a constant it uses counts), its weight
    and its max. A resume compares them with the checkpoint's, to say what changed.

    >>> from rewardkit.schemes import STRICT
    >>> sorted(scheme_fingerprints(STRICT)) == sorted(STRICT.reward_names)
    True
    """
    import hashlib
    import inspect

    prints = {}
    for reward in scheme.rewards:
        fn: Any = reward.fn
        what = ""
        while isinstance(fn, functools.partial):  # its function, and what it is given
            what += _no_address(f"{fn.args!r}{fn.keywords!r}")
            fn = fn.func
        if not hasattr(fn, "__qualname__"):  # a callable object: its class
            fn = type(fn)
        what += str(fn.__qualname__)
        if reward.builtin:
            what = f"{fn.__module__}.{what}"
        else:  # a file's own text, not where it is (a module id names its path)
            with contextlib.suppress(OSError, TypeError, UnicodeDecodeError):  # no file
                what += Path(inspect.getsourcefile(fn) or "").read_text(encoding="utf-8")
        text = f"{what}|{reward.variant}|{reward.weight!r}|{reward.max!r}"
        prints[reward.name] = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return prints


def save_checkpoint(run_dir: Path, model: Any, optimizer: Any, position: Position) -> None:
    import torch

    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "position": asdict(position),
    }
    # Straight to the file: serialising into memory first held the whole checkpoint twice
    # (a Qwen2-0.5B-sized policy with its AdamW state: 6 GB, and 5.5 GB more peak RSS).
    atomic_write(run_dir / CHECKPOINT, lambda handle: torch.save(state, handle))


def recorded_engine(run_dir: Path) -> str:
    """The engine the run's checkpoint was generated with, or "" when unknown (no
    checkpoint, an older one, or one that cannot be read: `load_checkpoint` says so).

    The file is memory-mapped, not read: only the position is looked at.
    """
    import torch

    path = run_dir / CHECKPOINT
    if not path.exists():
        return ""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return str(state["position"].get("engine", ""))
    except Exception:  # damaged: load_checkpoint names it, with the way on
        return ""


def _no_address(text: str) -> str:
    """A repr without the memory addresses that differ from one process to the next.

    >>> _no_address("<object at 0x7f3a2b>")
    '<object>'
    """
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


def load_checkpoint(run_dir: Path, model: Any, optimizer: Any, data: str = "") -> Position:
    """Restore `model` and `optimizer` in place; the position to continue from.

    `data` is the fingerprint of the data the resumed run loaded (`Data.fingerprint`); a
    checkpoint saved on other data is refused before anything is restored (with the tiny
    model, other texts even give another vocabulary, so the weights would not fit).
    """
    import torch

    path = run_dir / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(
            f"{path}: no checkpoint to resume from (the run stopped before its first"
            " checkpoint); `rewardkit train --resume` starts such a run again from the beginning"
        )
    try:
        state = torch.load(path, map_location=next(model.parameters()).device, weights_only=True)
        position = Position(**state["position"])
    except Exception as error:  # torch raises several types for a damaged file
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(
            f"{path}: the checkpoint cannot be read ({first}); it is damaged or not a"
            " checkpoint (checkpoints are replaced atomically, so something else wrote it)."
            f" Restore it, or delete {path.parent} and --resume again to start the run over"
            " from the beginning with the same data order and seeds"
        ) from None
    if data and position.data and position.data != data:
        raise ConfigError(
            f"{run_dir}: the data set is not the one the run was trained on (its problems,"
            " their order or their texts differ, or a local file's name: a problem's id is"
            " the file's name and its line), so the resumed run would not continue the same"
            " data order; restore the data the run started with (a moved file keeps its"
            " name), or start a new run"
        )
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:  # shapes or names: not this model's checkpoint
        reason = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise ConfigError(
            f"{path}: the checkpoint does not fit the model the config builds ({reason})"
        ) from None
    optimizer.load_state_dict(state["optimizer"])
    return position
