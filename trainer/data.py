"""Problems to train and evaluate on: GSM8K, a local file, or a built-in synthetic set.

Every source yields `Problem`s in GSM8K's shape: a `question`, and an `answer` that is a
worked solution ending in ``#### N`` (or the number alone). The gold is read from the
answer exactly as the rewards read it (`rewardkit.extract.gold`, spec section 1) and must
be a number written plainly (``72``, ``-3``, ``0.5``, ``1,000``; not ``72.0`` or ``0,25``,
see `_unplain`), so a problem on which a completion with the right number would be scored
wrong (``#### seven``, ``#### $10``, a sentence with no ``####``, which would be the gold
word for word) is caught here, not scored 0 for the whole run.

A row that cannot be a problem (a line that is not JSON, no question or answer, an empty
question, an answer whose gold is not a plain number) stops the run with an error that
names the file, the line and the fix; with ``on_error: skip`` the run trains on every good
row instead and `Data.skipped` lists each bad one with its reason (the run writes them to
``skipped_rows.jsonl``). A file without a single row is an error either way. Repeated
questions are kept as given and warned about (`Data.notes`), except that a training row
that repeats a test question is left out of training, so the evaluation measures problems
the model did not train on. Once the
model is loaded, `fit_prompts` does the same with the problems whose prompt leaves no room
for the completion in the model's context. JSON lines are read by
`rewardkit.readers.read_objects`, the reader behind ``rewardkit score``.

The synthetic set needs no network: one-step word problems on small numbers (sums,
differences, products), written the way GSM8K writes them.

>>> train, test = synthetic_split(3, 1, seed=0)
>>> train[0].answer.endswith("#### " + train[0].gold)
True
"""

from __future__ import annotations

import functools
import hashlib
import math
import numbers
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeAlias

from rewardkit.extract import gold
from rewardkit.numbers import decimal_text, parse_number, strict_norm
from rewardkit.score import a_json_type
from trainer.config import TrainConfig

__all__ = [
    "Data",
    "DataError",
    "Problem",
    "Skipped",
    "fit_prompts",
    "load_problems",
    "synthetic_split",
]


class DataError(ValueError):
    """A data set that cannot be used; the message names the source and the fix."""


@dataclass(frozen=True)
class Problem:
    """One question with its reference answer; `gold` is what the rewards compare with."""

    id: str
    question: str
    answer: str
    source: str = field(default="", compare=False)  # the file or hub split it came from
    where: str = field(default="", compare=False)  # "line 3", "item 3", "row 3" in `source`

    @property
    def gold(self) -> str:
        return gold(self.answer)

    @property
    def place(self) -> str:
        """Where the problem is, for a message: ``"data.jsonl, line 3"``, else its id."""
        return f"{self.source}, {self.where}" if self.source else self.id


@dataclass(frozen=True)
class Skipped:
    """A row left out with ``on_error: skip``: where it is and why it is not a problem."""

    source: str  # the file, or the hub split
    where: str  # "line 3" in a JSON-lines file, "item 3" in a JSON array, "row 3" in a table
    reason: str


@dataclass(frozen=True)
class Data:
    """The problems a run trains and evaluates on, and the rows it left out."""

    train: list[Problem]
    test: list[Problem]
    skipped: list[Skipped] = field(default_factory=list)
    # what a run should warn about: repeated questions, test problems left out of training,
    # fewer problems than asked for
    notes: list[str] = field(default_factory=list, compare=False)

    @functools.cached_property
    def fingerprint(self) -> str:
        """A digest of both splits, in order: equal exactly when a run would see the same
        problems in the same order (a resume checks it against the checkpoint's).

        >>> a = Data([Problem("p-0", "2+2?", "#### 4")], [])
        >>> a.fingerprint == Data([Problem("p-0", "2+2?", "#### 4")], []).fingerprint
        True
        >>> a.fingerprint == Data([Problem("p-0", "2+2?", "#### 5")], []).fingerprint
        False
        """
        digest = hashlib.sha256()
        for split in (self.train, self.test):
            for problem in split:
                for text in (problem.id, problem.question, problem.answer):
                    digest.update(text.encode() + b"\0")
            digest.update(b"\1")
        return digest.hexdigest()[:16]


def load_problems(config: TrainConfig) -> Data:
    """The train and test problems of `config.dataset`, cut to the configured counts.

    A file or split is shuffled with the run's seed before cutting, so a run on the first
    256 problems of GSM8K sees a sample, not the first chapter of the file.
    """
    if config.dataset == "synthetic":
        train, test = synthetic_split(
            config.train_samples or 1024, config.test_samples or 256, config.seed
        )
        return Data(train, test)
    reader = _Reader(skip=config.on_error == "skip")
    if config.dataset == "gsm8k":
        train, test = _gsm8k(reader)
    else:
        train, test = _local(Path(config.dataset), config, reader)
    notes = _repeats(train + test)
    rng = random.Random(config.seed)
    rng.shuffle(train)
    rng.shuffle(test)
    test = test[: config.test_samples]
    before = len(train)
    train, leaked = _apart(train, test)
    leaked_count = before - len(train)
    if leaked:
        notes.append(leaked)
    if config.train_samples is not None and len(train) < config.train_samples:
        without = f", nor the {leaked_count} that repeat a test question" if leaked else ""
        notes.append(
            f"train_samples={config.train_samples}, but {config.dataset} has only {len(train)}"
            f" problems to train on (not counting the {len(test)} test problems{without}):"
            f" the run trains on {len(train)}; set train_samples={len(train)}, or null for"
            " all, to say so"
        )
    if config.test_samples is not None and len(test) < config.test_samples:
        notes.append(
            f"test_samples={config.test_samples}, but {config.dataset} has only {len(test)}"
            f" test problems: each evaluation runs on {len(test)}; set"
            f" test_samples={len(test)}, or null for all, to say so"
        )
    data = Data(train[: config.train_samples], test, reader.skipped, notes)
    _check_steps(data, config)
    return data


def _question_key(question: str) -> str:
    """What makes two questions the same: their words, however spaced."""
    return " ".join(question.split())


def _repeats(problems: list[Problem]) -> list[str]:
    """Warnings for questions that appear in more than one row, and for those among them
    whose rows give different golds. The rows are kept as given: a repeat may be meant (to
    weigh a problem), and which of two golds is right only the data's author knows.

    >>> rows = [Problem(str(i), q, a, "d.jsonl", f"line {i}")
    ...         for i, (q, a) in enumerate([("2+2?", "4"), ("1+1?", "2"), ("2+2? ", "5")], 1)]
    >>> for note in _repeats(rows):
    ...     print(note[:76])
    1 question appears in more than one row (2 rows in all), e.g. '2+2?' at d.js
    1 repeated question has different golds in its rows, e.g. '2+2?': '4' at d.j
    """
    groups: dict[str, list[Problem]] = {}
    for problem in problems:
        groups.setdefault(_question_key(problem.question), []).append(problem)
    repeated = [group for group in groups.values() if len(group) > 1]
    if not repeated:
        return []
    one = len(repeated) == 1
    first = repeated[0]
    notes = [
        f"{len(repeated)} question{'' if one else 's'} appear{'s' if one else ''} in more than"
        f" one row ({sum(map(len, repeated))} rows in all), e.g. {_quote(first[0].question)}"
        f" at {' and '.join(p.place for p in first[:2])}; the rows are kept as given, so a"
        " repeated training problem is trained on as often as it appears (remove the repeats"
        " to weigh every problem alike)"
    ]
    conflicting = [group for group in repeated if len({p.gold for p in group}) > 1]
    if conflicting:
        one = len(conflicting) == 1
        group = conflicting[0]
        golds = ", ".join(f"{p.gold!r} at {p.place}" for p in group[:3])
        notes.append(
            f"{len(conflicting)} repeated question{' has' if one else 's have'} different golds"
            f" in {'its' if one else 'their'} rows, e.g. {_quote(group[0].question)}: {golds};"
            " a completion can be right against only one of them: correct or remove the"
            " wrong rows"
        )
    return notes


def _apart(train: list[Problem], test: list[Problem]) -> tuple[list[Problem], str]:
    """`train` without the problems whose question is one of `test`'s, and a warning that
    says how many it left out ("" for none). A test problem the model trained on measures
    recall, not what training taught; the test split is kept whole, as asked for.

    >>> train = [Problem("a", "2+2?", "4"), Problem("b", "3+3?", "6")]
    >>> kept, note = _apart(train, [Problem("t", "2+2?", "4")])
    >>> [p.id for p in kept], note[:56]
    (['b'], '1 training row repeats a question of the test split, e.g')
    """
    asked = {_question_key(p.question) for p in test}
    kept = [p for p in train if _question_key(p.question) not in asked]
    if len(kept) == len(train):
        return train, ""
    left = [p for p in train if _question_key(p.question) in asked]
    one = len(left) == 1
    return kept, (
        f"{len(left)} training row{' repeats' if one else 's repeat'} a question of the test"
        f" split, e.g. {_quote(left[0].question)} at {left[0].place}; left out of training,"
        " so that the evaluation measures problems the model did not train on"
    )


def _check_steps(data: Data, config: TrainConfig) -> None:
    if len(data.train) < config.prompts_per_step:
        raise DataError(
            f"{config.dataset}: {len(data.train)} training problems, fewer than"
            f" prompts_per_step={config.prompts_per_step}, so an epoch would have no step;"
            " lower prompts_per_step or give more problems"
        )


def fit_prompts(
    data: Data, prompt_tokens: Callable[[Problem], int], context: int, config: TrainConfig
) -> Data:
    """`data` without the problems whose prompt leaves no room for `max_new_tokens` within
    the model's `context` (its ``max_position_embeddings``): past it a model computes
    positions it never saw and vLLM refuses the request mid-run. `prompt_tokens` counts a
    problem's prompt as the engines encode it. A problem that does not fit raises
    `DataError` naming its row, or with ``on_error: skip`` joins `Data.skipped`.

    >>> from trainer.config import TrainConfig
    >>> data = Data([Problem("a", "2+2?", "#### 4"), Problem("b", "a long one", "#### 1")],
    ...             [Problem("c", "1+1?", "#### 2")])
    >>> config = TrainConfig(prompts_per_step=1, max_new_tokens=8, on_error="skip")
    >>> fitted = fit_prompts(data, lambda p: len(p.question), 16, config)
    >>> [p.id for p in fitted.train], fitted.skipped[0].reason[:28]
    (['a'], 'the prompt is 10 tokens; wit')
    """
    room = context - config.max_new_tokens
    if room <= 0:  # no prompt can fit: say so once, not as a bad row to skip
        raise DataError(
            f"max_new_tokens={config.max_new_tokens} leaves no room for a prompt in the"
            f" model's context of {context} tokens; lower max_new_tokens below {context}"
        )
    skipped = list(data.skipped)
    splits: list[list[Problem]] = []
    for split in (data.train, data.test):
        kept = []
        for problem in split:
            tokens = prompt_tokens(problem)
            if tokens <= room:
                kept.append(problem)
                continue
            reason = (
                f"the prompt is {tokens} tokens; with max_new_tokens={config.max_new_tokens}"
                f" it passes the model's context of {context} tokens"
            )
            if config.on_error != "skip":
                raise DataError(
                    f"{problem.place}: {reason}. Shorten the question or the system prompt, lower"
                    " max_new_tokens, or set on_error=skip to train on the problems that fit"
                )
            skipped.append(Skipped(problem.source or config.dataset, problem.where, reason))
        splits.append(kept)
    if len(skipped) == len(data.skipped):
        return data
    fitted = Data(splits[0], splits[1], skipped, data.notes)
    if len(fitted.train) < config.prompts_per_step:
        fewer = (
            f", lower prompts_per_step to {len(fitted.train)} or fewer, or give more problems"
            if fitted.train
            else ""
        )
        raise DataError(
            f"{config.dataset}: {len(fitted.train)} training problems fit the model's context"
            f" of {context} tokens with max_new_tokens={config.max_new_tokens}"
            f" ({len(data.train) - len(fitted.train)} prompts are too long), fewer than"
            f" prompts_per_step={config.prompts_per_step}; lower max_new_tokens, shorten the"
            f" system prompt, use a model with a longer context{fewer}"
        )
    _check_steps(fitted, config)
    if not fitted.test:
        raise DataError(
            f"{config.dataset}: no test problem fits the model's context of {context} tokens"
            f" with max_new_tokens={config.max_new_tokens}; lower max_new_tokens"
        )
    return fitted


# --- GSM8K and local files -----------------------------------------------------------------


def _gsm8k(reader: _Reader) -> tuple[list[Problem], list[Problem]]:
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
    empty = "the split has no rows"
    return (
        reader.problems(_numbered(loaded["train"]), "gsm8k-train", "openai/gsm8k train", empty),
        reader.problems(_numbered(loaded["test"]), "gsm8k-test", "openai/gsm8k test", empty),
    )


def _local(path: Path, config: TrainConfig, reader: _Reader) -> tuple[list[Problem], list[Problem]]:
    """A folder with train and test files, or one file split into train and test."""
    if path.is_dir():
        found = {}
        for split in ("train", "test"):
            candidates = [path / f"{split}{suffix}" for suffix in (".jsonl", ".json", ".parquet")]
            file = next((c for c in candidates if c.is_file()), None)
            if file is None:
                raise DataError(
                    f"{path}: a data folder holds train.jsonl and test.jsonl (or .json,"
                    f" .parquet); no {split} file found"
                )
            found[split] = reader.problems(_rows(file), file.stem, str(file), _empty(file))
        return found["train"], found["test"]
    problems = reader.problems(_rows(path), path.stem, str(path), _empty(path))
    held_out = config.test_samples or max(1, len(problems) // 10)
    if len(problems) <= held_out:
        raise DataError(
            f"{path}: {len(problems)} problems cannot give {held_out} test problems and a"
            " training set; lower test_samples or give a folder with train and test files"
        )
    random.Random(config.seed).shuffle(problems)
    return problems[held_out:], problems[:held_out]


Row: TypeAlias = "tuple[str, Mapping[str, Any] | str]"  # where; the row, or why it is unusable


def _numbered(rows: Iterable[Mapping[str, Any]]) -> Iterator[Row]:
    return ((f"row {index}", row) for index, row in enumerate(rows, 1))


def _rows(path: Path) -> Iterator[Row]:
    """Each row of a .jsonl, .json or .parquet file, with where it is: a line, an item of a
    JSON array, or a table row."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import numpy as np
        import pandas as pd
        import pyarrow as pa

        try:
            table = pd.read_parquet(path)
        except (pa.ArrowException, OSError) as error:
            raise DataError(f"{path}: not a readable parquet file ({error})") from None
        records = table.to_dict("records")
        # to_dict makes a float32 or float16 value a Python float, whose shortest digits are
        # float64's: 2.3 stored as float32 came out "2.299999952316284". Keep numpy's
        # scalars for those columns, so that the gold is written in the column's precision.
        for column in table.columns:
            if table[column].dtype in (np.float32, np.float16):
                for record, value in zip(records, table[column].to_numpy(), strict=True):
                    record[column] = value
        yield from _numbered({str(k): v for k, v in row.items()} for row in records)
        return
    if suffix not in (".jsonl", ".json"):
        raise DataError(
            f"{path}: use a .jsonl, .json or .parquet file with question and answer fields"
        )
    if suffix == ".json" and _starts_with(path, b"["):
        yield from _json_array(path)
        return
    from rewardkit.readers import read_objects
    from rewardkit.score import InputError

    try:
        for line, row in read_objects(path):
            yield f"line {line}", row.message if isinstance(row, InputError) else row
    except InputError as error:  # the file as a whole: missing, a folder, unreadable
        raise DataError(str(error)) from None


def _empty(path: Path) -> str:
    """Why a file of this kind that gave no rows at all holds no problem."""
    if path.suffix.lower() == ".parquet":
        return "the table has no rows"
    if path.suffix.lower() == ".json":
        return "the file is empty, blank, or an empty JSON array"
    return "the file is empty or holds only blank lines"


def _starts_with(path: Path, text: bytes) -> bool:
    with path.open("rb") as handle:
        head = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(text)


def _json_array(path: Path) -> Iterator[Row]:
    """The items of a .json file that holds one array of objects."""
    import json

    try:
        items = json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: not a readable JSON array ({error})") from None
    for index, item in enumerate(items, 1):
        why = f"the item is {a_json_type(item)}, not an object"
        yield f"item {index}", item if isinstance(item, dict) else why


class _Reader:
    """Rows to problems; a bad row raises, or with `skip` is listed in `skipped`."""

    def __init__(self, skip: bool) -> None:
        self.skip = skip
        self.skipped: list[Skipped] = []

    def problems(self, rows: Iterable[Row], prefix: str, source: str, empty: str) -> list[Problem]:
        """The problems of `rows`, read from `source`; `empty` says why there is none when
        `rows` is empty."""
        problems: list[Problem] = []
        count = 0
        for index, (where, row) in enumerate(rows):
            count += 1
            if isinstance(row, str):
                reason = row  # why the line could not be read as an object
            elif (unusable := _unusable(row)) is None:
                question, answer = str(row["question"]), _text(row)
                problems.append(Problem(f"{prefix}-{index}", question, answer, source, where))
                continue
            else:
                reason = unusable
            if not self.skip:
                raise DataError(
                    f"{source}, {where}: {reason} (set on_error=skip to train on the good rows"
                    " and list the bad ones)"
                )
            self.skipped.append(Skipped(source, where, reason))
        if not count:
            raise DataError(
                f"{source}: no problems ({empty}); give it rows with a question and an answer"
                " that ends in '#### N'"
            )
        if not problems:  # every row was bad, and skipped: without skip the first one raised
            first = next(s for s in self.skipped if s.source == source)
            raise DataError(
                f"{source}: no problems; all {count} rows were skipped, the first:"
                f" {first.where}: {first.reason}"
            )
        return problems


def _unusable(row: Mapping[str, Any]) -> str | None:
    """Why `row` cannot be a problem, or None when it can."""
    missing = [k for k in ("question", "answer") if k not in row]
    if missing:
        fields = ", ".join(sorted(map(str, row))) or "none"
        return (
            f"no {' or '.join(missing)} field (fields: {fields}); each row needs question and"
            " answer (a solution ending in '#### N')"
        )
    question, answer = row["question"], row["answer"]
    if not isinstance(question, str) or not question.strip():
        what = "empty" if isinstance(question, str) else a_json_type(question)
        return f"the question is {what}, not text"
    if isinstance(answer, bool) or not isinstance(answer, (str, numbers.Real, Decimal)):
        return f"the answer is {a_json_type(answer)}, not text or a number"
    if not isinstance(answer, str) and not _finite(answer):
        if answer != answer:  # NaN: a parquet column's empty cell
            return "the answer is missing (NaN)"
        return f"the answer is {answer}, not a finite number; give the final number"
    return _bad_gold(_text(row))


def _finite(number: numbers.Real | Decimal) -> bool:
    if isinstance(number, Decimal):
        return number.is_finite()
    return isinstance(number, numbers.Integral) or math.isfinite(number)


# The gold a completion can be right against under every scheme: a number written plainly,
# as GSM8K writes it after "####" (72, -3, 0.5, 1,000). Strict correctness compares the gold
# as text and lenient compares the last number in it (spec sections 3 and 4), so against
# "$10" or "14 apples" a right answer misses under strict, against "seven" under both, and
# "\frac{1}{2}" reads as 2.
_PLAIN_NUMBER = re.compile(r"-?(?:[0-9]+(?:,[0-9]+)*(?:\.[0-9]+)?|\.[0-9]+)")

_END_WITH_GOLD = "end the solution with '#### N' (N the final number), or give the number alone"


def _bad_gold(answer: str) -> str | None:
    """Why no completion can be right against the gold of `answer`, or None when one can.

    >>> [_bad_gold(a) for a in ("3 + 4 = 7\\n#### 7", "1,000", "#### -0.5")]
    [None, None, None]
    >>> print(_bad_gold("So 14 in total."))
    the answer has no '#### N' line, so its whole text 'So 14 in total.' is the gold, and \
strict correctness would need a completion to repeat it word for word; end the solution \
with '#### N' (N the final number), or give the number alone
    """
    value = gold(answer)
    if _PLAIN_NUMBER.fullmatch(value):
        return _unplain(value, "####" in answer)
    number = parse_number(value)
    if "####" in answer:
        if not value:
            return (
                "the answer has no gold after '####'; every reward would be 0 on this problem;"
                " write the final number after it, e.g. '#### 72'"
            )
        if number is None:
            return (
                f"the gold {_quote(value)} after '####' is not a number, so a completion"
                " that answers with the number is scored wrong; write it in digits, e.g."
                " '#### 72'"
            )
        return (
            f"the gold {_quote(value)} after '####' is not a plain number: strict correctness"
            f" compares it as written and lenient reads {number}, so a right answer can be"
            " scored wrong; write the number alone, e.g. '#### 72'"
        )
    if not value:
        return f"the answer is empty; {_END_WITH_GOLD}"
    if number is None:
        return (
            f"the answer {_quote(value)} has no '#### N' line and no number, so a completion"
            f" that answers with a number is scored wrong; {_END_WITH_GOLD}"
        )
    return (
        f"the answer has no '#### N' line, so its whole text {_quote(value)} is the gold,"
        f" and strict correctness would need a completion to repeat it word for word;"
        f" {_END_WITH_GOLD}"
    )


# Digit groups of three, as thousands are written (1,000 and 12,345.5; not 0,25 nor 12,3456).
_THOUSANDS = re.compile(r"-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")


def _unplain(value: str, marked: bool) -> str | None:
    """Why the plain number `value` is a gold a natural answer misses, or None.

    A completion writes a number in its normal form (`_plain`: 72, 0.5, -3), with or
    without thousands separators. Strict correctness compares ``strict_norm`` of both
    texts, which drops only the commas between digits, and lenient compares the values
    `parse_number` reads, which drops those commas too (spec section 3). So the gold is
    right against that answer exactly when its commas separate thousands and, without
    them, it is the normal form of its value: ``72.0``, ``3.00``, ``.5``, ``00012`` and
    ``-0`` miss under strict, and ``0,25`` reads as 25 under both.

    >>> [_unplain(v, True) for v in ("72", "-3", "0.5", "1,000", "12,345.5", "0")]
    [None, None, None, None, None, None]
    >>> print(_unplain("72.0", True))
    the gold '72.0' is not written as its value's plain form '72': strict correctness \
compares the text, so a completion that answers 72 is scored wrong; write '#### 72'
    >>> print(_unplain("0,25", False))
    the gold '0,25' has a comma that does not separate thousands: the rewards drop a comma \
between digits and read 25, so a completion that answers 0.25 is scored wrong; write '0.25' \
if the comma is a decimal point, or '25'
    """
    number = parse_number(value)
    assert number is not None  # a plain number has digits
    normal = _plain(number)

    def write(text: str) -> str:
        return repr(f"#### {text}" if marked else text)

    if "," in value and not _THOUSANDS.fullmatch(value):
        meant = _plain(Decimal(value.replace(",", "."))) if value.count(",") == 1 else None
        answered = f"a completion that answers {meant}" if meant else "a right answer"
        instead = f"{write(meant)} if the comma is a decimal point, or " if meant else ""
        return (
            f"the gold {_quote(value)} has a comma that does not separate thousands: the"
            f" rewards drop a comma between digits and read {normal}, so {answered} is scored"
            f" wrong; write {instead}{write(normal)}"
        )
    if strict_norm(value) != normal:
        return (
            f"the gold {_quote(value)} is not written as its value's plain form {normal!r}:"
            f" strict correctness compares the text, so a completion that answers {normal} is"
            f" scored wrong; write {write(normal)}"
        )
    return None


def _quote(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _text(row: Mapping[str, Any]) -> str:
    """The answer as text. A bare number (some exports store the gold alone, and a parquet
    column of them may come as floats or decimals) is written as the gold would be: in
    plain digits, without an exponent or trailing zeros, a float in its own precision (a
    float32 2.3 is "2.3", not float64's 2.299999952316284).

    >>> [_text({"answer": a}) for a in ("#### 72", 72, 72.0, 0.5, 12_000_000.0, 1.5e-7)]
    ['#### 72', '72', '72', '0.5', '12000000', '0.00000015']
    >>> import numpy as np
    >>> [_text({"answer": a}) for a in (np.float32(2.3), np.float16(0.5), np.int64(7))]
    ['2.3', '0.5', '7']
    >>> [_text({"answer": Decimal(a)}) for a in ("19.99", "2.50", "1E+1", "-0.00", "72.00")]
    ['19.99', '2.5', '10', '0', '72']
    """
    answer = row["answer"]
    if isinstance(answer, str):
        return answer
    if isinstance(answer, Decimal):
        return _plain(answer)
    if isinstance(answer, numbers.Integral):
        return str(int(answer))
    if float(answer).is_integer():
        return str(int(answer))
    # in its own precision; repr would write 1.5e-07, whose last number is 7 (spec 3)
    return decimal_text(answer)


def _plain(number: Decimal) -> str:
    """`number` in plain digits: no exponent, no trailing zeros after the point, no sign on
    zero. The text of its value that a completion writes, and that strict compares with.

    >>> _plain(Decimal("1.2300")), _plain(Decimal("-5E+2")), _plain(Decimal("0.000"))
    ('1.23', '-500', '0')
    """
    text = format(number, "f")  # exact, whatever the decimal context's precision
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


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
        index = len(problems)
        problems.append(
            Problem(f"synthetic-{index}", question, answer, "synthetic", f"problem {index}")
        )
    return problems[:train], problems[train:]
