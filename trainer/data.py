"""Problems to train and evaluate on: GSM8K, a local file, or a built-in synthetic set.

Every source yields `Problem`s in GSM8K's shape: a `question`, and an `answer` that is a
worked solution ending in ``#### N``. The gold is read from the answer exactly as the
rewards read it (`rewardkit.extract.gold`, spec section 1), so a problem whose gold the
rewards cannot read is caught here, not scored 0 for the whole run.

The synthetic set needs no network: one-step word problems on small numbers (sums,
differences, products), written the way GSM8K writes them.

>>> train, test = synthetic_split(3, 1, seed=0)
>>> train[0].answer.endswith("#### " + train[0].gold)
True
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit.extract import gold
from trainer.config import TrainConfig

__all__ = ["DataError", "Problem", "load_problems", "synthetic_split"]


class DataError(ValueError):
    """A data set that cannot be used; the message names the source and the fix."""


@dataclass(frozen=True)
class Problem:
    """One question with its reference answer; `gold` is what the rewards compare with."""

    id: str
    question: str
    answer: str

    @property
    def gold(self) -> str:
        return gold(self.answer)


def load_problems(config: TrainConfig) -> tuple[list[Problem], list[Problem]]:
    """The train and test problems of `config.dataset`, cut to the configured counts.

    A file or split is shuffled with the run's seed before cutting, so a run on the first
    256 problems of GSM8K sees a sample, not the first chapter of the file.
    """
    if config.dataset == "synthetic":
        return synthetic_split(
            config.train_samples or 1024, config.test_samples or 256, config.seed
        )
    if config.dataset == "gsm8k":
        train, test = _gsm8k()
    else:
        train, test = _local(Path(config.dataset), config)
    rng = random.Random(config.seed)
    rng.shuffle(train)
    rng.shuffle(test)
    return train[: config.train_samples], test[: config.test_samples]


# --- GSM8K and local files -----------------------------------------------------------------


def _gsm8k() -> tuple[list[Problem], list[Problem]]:
    try:
        import datasets
    except ImportError:
        raise DataError(
            "dataset=gsm8k needs the `datasets` package: pip install 'rewardkit[train]'"
        ) from None
    try:
        loaded = datasets.load_dataset("openai/gsm8k", "main")
    except Exception as error:  # hub errors come in many types; report, don't hide
        raise DataError(
            f"cannot load openai/gsm8k from the Hugging Face hub ({type(error).__name__}:"
            f" {error}); without network, download it elsewhere and pass the file or folder"
            " (dataset=path/to/gsm8k with train.jsonl and test.jsonl), or use dataset=synthetic"
        ) from None
    return (
        _problems(loaded["train"], "gsm8k-train", "openai/gsm8k train"),
        _problems(loaded["test"], "gsm8k-test", "openai/gsm8k test"),
    )


def _local(path: Path, config: TrainConfig) -> tuple[list[Problem], list[Problem]]:
    """A folder with train and test files, or one file split into train and test."""
    if path.is_dir():
        found = {}
        for split in ("train", "test"):
            candidates = [path / f"{split}{suffix}" for suffix in (".jsonl", ".parquet")]
            file = next((c for c in candidates if c.is_file()), None)
            if file is None:
                raise DataError(
                    f"{path}: a data folder holds train.jsonl and test.jsonl (or .parquet);"
                    f" no {split} file found"
                )
            found[split] = _problems(_rows(file), f"{file.stem}", str(file))
        return found["train"], found["test"]
    problems = _problems(_rows(path), path.stem, str(path))
    held_out = config.test_samples or max(1, len(problems) // 10)
    if len(problems) <= held_out:
        raise DataError(
            f"{path}: {len(problems)} problems cannot give {held_out} test problems and a"
            " training set; lower test_samples or give a folder with train and test files"
        )
    random.Random(config.seed).shuffle(problems)
    return problems[held_out:], problems[:held_out]


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pandas as pd

        for row in pd.read_parquet(path).to_dict("records"):
            yield {str(k): v for k, v in row.items()}
        return
    if suffix not in (".jsonl", ".json"):
        raise DataError(f"{path}: use a .jsonl or .parquet file with question and answer fields")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path}, line {number}: not valid JSON ({error.msg})") from None
            if not isinstance(record, dict):
                raise DataError(f"{path}, line {number}: expected one JSON object per line")
            yield record


def _problems(rows: Any, prefix: str, source: str) -> list[Problem]:
    problems = []
    for index, row in enumerate(rows):
        missing = [k for k in ("question", "answer") if k not in row]
        if missing:
            fields = ", ".join(sorted(map(str, row))) or "none"
            raise DataError(
                f"{source}, row {index + 1}: no {' or '.join(missing)} field (fields: {fields});"
                " each row needs question and answer (a solution ending in '#### N')"
            )
        problem = Problem(f"{prefix}-{index}", str(row["question"]), str(row["answer"]))
        if not problem.gold:
            raise DataError(
                f"{source}, row {index + 1}: the answer has no gold after '####'; every"
                " reward would be 0 on this problem"
            )
        problems.append(problem)
    if not problems:
        raise DataError(f"{source}: no problems")
    return problems


# --- the synthetic set ---------------------------------------------------------------------

_NAMES = ("Tom", "Ann", "Sam", "Mia", "Ben", "Eva")
_ITEMS = ("apples", "pens", "cards", "eggs", "books")


def _add(rng: random.Random, name: str, item: str) -> tuple[str, str]:
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    c = a + b
    return (
        f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have?",
        f"{name} has {a} + {b} = <<{a}+{b}={c}>>{c} {item}.\n#### {c}",
    )


def _subtract(rng: random.Random, name: str, item: str) -> tuple[str, str]:
    a = rng.randint(2, 9)
    b = rng.randint(1, a)
    c = a - b
    return (
        f"{name} has {a} {item} and gives {b} away. How many {item} are left?",
        f"{name} has {a} - {b} = <<{a}-{b}={c}>>{c} {item} left.\n#### {c}",
    )


def _multiply(rng: random.Random, name: str, item: str) -> tuple[str, str]:
    a, b = rng.randint(2, 5), rng.randint(2, 5)
    c = a * b
    return (
        f"{name} buys {a} bags with {b} {item} in each. How many {item} does {name} buy?",
        f"{name} buys {a} * {b} = <<{a}*{b}={c}>>{c} {item}.\n#### {c}",
    )


_KINDS = (_add, _subtract, _multiply)


def synthetic_split(train: int, test: int, seed: int) -> tuple[list[Problem], list[Problem]]:
    """`train` and `test` distinct synthetic problems in GSM8K format, drawn with `seed`.

    Questions repeat only when more are asked for than there are distinct ones.
    """
    rng = random.Random(f"synthetic-{seed}")
    seen: set[str] = set()
    problems: list[Problem] = []
    attempts = 0
    while len(problems) < train + test:
        kind = _KINDS[rng.randrange(len(_KINDS))]
        question, answer = kind(rng, rng.choice(_NAMES), rng.choice(_ITEMS))
        attempts += 1
        if question in seen and attempts < 50 * (train + test):
            continue
        seen.add(question)
        problems.append(Problem(f"synthetic-{len(problems)}", question, answer))
    return problems[:train], problems[train:]
