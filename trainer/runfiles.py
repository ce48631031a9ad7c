"""The run folder: what a run writes, written so that a kill never leaves half a file.

::

    config.yaml          the resolved TrainConfig (all a resume needs)
    steps.parquet        one row per step: reward stats per component, zero spread, loss...
    epochs.parquet       one row per epoch: accumulated_reward, mean_reward, samples seen...
    eval.parquet         one row per metric per evaluation (epoch 0 is before training)
    samples.jsonl        every training completion: completion, answer, prompt_id, prompt,
                         id, rewards, reasons, advantage... (`rewardkit score` reads it)
    eval_samples.jsonl   every evaluation's completions, greedy and sampled (`kind`)
    skipped_rows.jsonl   data rows `on_error: skip` left out, with why (only if any)
    checkpoint/          model, optimizer and position of the last checkpoint
    model/               the final policy (`save_pretrained`) and tokenizer
    summary.md, *.png    written at the end (`trainer.report`)

Tables are rewritten whole through a temporary file and `os.replace`, which is atomic.
Sample files only grow: each step's lines go out in one ``write`` call, and the checkpoint
records each file's size, so a resume cuts off whatever was written after it.

`steps.parquet` is not rewritten after every step (on a small batch that rewrite was a
sixth of the step): its rows are kept in memory and written at the latest `write_every`
seconds after the oldest unwritten one (default 10), before every checkpoint, at every
epoch's end, at the end of the run and when a run stops on an error. A hard kill loses at
most those seconds of rows, and never a row a checkpoint needs: `flush` runs before the
checkpoint is saved, so a resume finds every step up to it (and cuts any later ones off).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd

__all__ = ["SAMPLE_FILES", "RunFiles", "atomic_write", "atomic_write_bytes", "atomic_write_frame"]

STEPS, EPOCHS, EVAL = "steps.parquet", "epochs.parquet", "eval.parquet"
SAMPLES, EVAL_SAMPLES = "samples.jsonl", "eval_samples.jsonl"
SAMPLE_FILES = (SAMPLES, EVAL_SAMPLES)
EVAL_COLUMNS = ["epoch", "step", "metric", "k", "value"]


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Let `write` fill a temporary file beside `path`, then put it in place: readers see
    the old file or the new one, never half. If `write` fails, `path` is left as it was.

    `write` streams to disk, so a checkpoint needs no copy of itself in memory.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write(path, lambda handle: handle.write(b"old"))
    >>> def fails(handle):
    ...     handle.write(b"half")
    ...     raise OSError("disk full")
    >>> atomic_write(path, fails)
    Traceback (most recent call last):
    OSError: disk full
    >>> path.read_bytes(), sorted(p.name for p in path.parent.iterdir())
    (b'old', ['a.txt'])
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        _name_the_file(error, tmp, path)
        raise


def _name_the_file(error: BaseException, tmp: Path, path: Path) -> None:
    """An OSError about the hidden temporary file, said of the file being written: a
    read-only folder read ".comparison.csv.tmp: Read-only file system"."""
    if not isinstance(error, OSError):
        return
    if error.strerror and error.filename == str(tmp):
        raise OSError(error.errno, error.strerror, str(path)) from error
    if error.filename is None and str(tmp) in str(error):  # pyarrow names it in the message
        raise OSError(error.errno, str(error).replace(str(tmp), str(path)), str(path)) from error


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never half."""
    atomic_write(path, lambda handle: handle.write(data))


def atomic_write_frame(path: Path, frame: pd.DataFrame) -> None:
    """A DataFrame to .parquet or .csv, atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException as error:
        tmp.unlink(missing_ok=True)
        _name_the_file(error, tmp, path)
        raise


def _read(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [{str(k): v for k, v in row.items()} for row in pd.read_parquet(path).to_dict("records")]


def _count(numbers: Sequence[int], what: str) -> str:
    """``step 3``, ``steps 4-9``, ``steps 2, 5, 6``: which numbers, briefly.

    >>> _count([4, 5, 6, 7, 8, 9], "step"), _count([2, 5, 6], "step"), _count([0], "epoch")
    ('steps 4-9', 'steps 2, 5, 6', 'epoch 0')
    >>> _count([1, 3, 5, 7, 9, 11, 13], "step")
    'steps 1, 3, 5, 7, 9 and 2 more'
    """
    if len(numbers) == 1:
        return f"{what} {numbers[0]}"
    if list(numbers) == list(range(numbers[0], numbers[-1] + 1)):
        return f"{what}s {numbers[0]}-{numbers[-1]}"
    more = f" and {len(numbers) - 5} more" if len(numbers) > 5 else ""
    return f"{what}s {', '.join(str(n) for n in numbers[:5])}{more}"


WRITE_EVERY = 10.0  # seconds: how long new step rows may wait in memory


class RunFiles:
    """The tables of a run, kept in memory; evaluations and epochs are written as they come,
    steps at most `write_every` seconds late (`flush` writes them now)."""

    def __init__(self, root: Path, write_every: float = WRITE_EVERY) -> None:
        self.root = root
        self.write_every = write_every
        self._unwritten_since: float | None = None  # when the oldest unwritten step came
        self.steps: list[dict[str, Any]] = _read(root / STEPS)
        self.epochs: list[dict[str, Any]] = _read(root / EPOCHS)
        self.evals: list[dict[str, Any]] = _read(root / EVAL)

    def gaps(self, step: int, epoch: int, sizes: Mapping[str, int]) -> list[str]:
        """What the folder lacks of a checkpoint at `step` with `epoch` epochs done: rows or
        sample lines it had when the checkpoint was saved, since deleted or cut short.

        A resume on top of them would write reports with a hole (an epoch's summary counts
        its step rows), and `rollback` would pad a short sample file with zero bytes.
        """
        found = []
        steps = {r["step"] for r in self.steps}
        if missing := [s for s in range(1, step + 1) if s not in steps]:
            found.append(f"{STEPS} lacks {_count(missing, 'step')} of the {step} it had")
        epochs = {r["epoch"] for r in self.epochs}
        if missing := [e for e in range(1, epoch + 1) if e not in epochs]:
            found.append(f"{EPOCHS} lacks {_count(missing, 'epoch')}")
        evals = {r["epoch"] for r in self.evals}
        if missing := [e for e in range(0, epoch + 1) if e not in evals]:
            found.append(f"{EVAL} lacks the evaluation of {_count(missing, 'epoch')}")
        for name, size in sorted(sizes.items()):
            path = self.root / name
            now = path.stat().st_size if path.exists() else 0
            if now < size and not path.exists():
                found.append(f"{name} is gone (it had {size:,} bytes)")
            elif now < size:
                found.append(f"{name} has {now:,} of the {size:,} bytes it had")
        return found

    def rollback(self, step: int, epoch: int, sizes: Mapping[str, int]) -> None:
        """Forget what was written after a checkpoint at `step` with `epoch` epochs done."""
        self.steps = [r for r in self.steps if r["step"] <= step]
        self.epochs = [r for r in self.epochs if r["epoch"] <= epoch]
        self.evals = [r for r in self.evals if r["epoch"] <= epoch]
        for name in SAMPLE_FILES:
            path = self.root / name
            if path.exists():
                with open(path, "r+b") as handle:
                    handle.truncate(sizes.get(name, 0))
        self._write_tables()
        self._unwritten_since = None

    def sizes(self) -> dict[str, int]:
        """The size of each sample file now, for the checkpoint."""
        return {
            n: (self.root / n).stat().st_size if (self.root / n).exists() else 0
            for n in SAMPLE_FILES
        }

    def add_step(self, row: Mapping[str, Any], samples: Sequence[Mapping[str, Any]]) -> None:
        """The step's samples go out now; its row with the next `flush` (see the module)."""
        self._append(SAMPLES, samples)
        self.steps.append(dict(row))
        now = time.monotonic()
        if self._unwritten_since is None:
            self._unwritten_since = now
        if now - self._unwritten_since >= self.write_every:
            self.flush()

    def flush(self) -> None:
        """Write the step rows still in memory to steps.parquet (atomically)."""
        if self._unwritten_since is not None:
            atomic_write_frame(self.root / STEPS, pd.DataFrame(self.steps))
            self._unwritten_since = None

    def add_eval(
        self, rows: Sequence[Mapping[str, Any]], samples: Sequence[Mapping[str, Any]]
    ) -> None:
        self._append(EVAL_SAMPLES, samples)
        self.evals.extend(dict(r) for r in rows)
        atomic_write_frame(self.root / EVAL, pd.DataFrame(self.evals, columns=EVAL_COLUMNS))

    def add_epoch(self, row: Mapping[str, Any]) -> None:
        self.flush()  # the epoch row sums the step rows: both tables agree on disk
        self.epochs.append(dict(row))
        atomic_write_frame(self.root / EPOCHS, pd.DataFrame(self.epochs))

    def has_eval(self, epoch: int) -> bool:
        return any(r["epoch"] == epoch for r in self.evals)

    def _append(self, name: str, records: Sequence[Mapping[str, Any]]) -> None:
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        fd = os.open(self.root / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)  # one call: a kill leaves whole steps, cut off at resume
        finally:
            os.close(fd)

    def _write_tables(self) -> None:
        for name, rows in ((STEPS, self.steps), (EPOCHS, self.epochs)):
            if rows or (self.root / name).exists():
                atomic_write_frame(self.root / name, pd.DataFrame(rows))
        if self.evals or (self.root / EVAL).exists():
            atomic_write_frame(self.root / EVAL, pd.DataFrame(self.evals, columns=EVAL_COLUMNS))
