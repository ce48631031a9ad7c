"""How fast rewardkit scores a JSONL file, as ratios against a baseline measured in the same run.

Absolute timings on a shared machine say little, so every speed here is set against reading
the same file with ``json.loads`` in the same process, minutes apart. Nothing here asserts:
the script prints PASS or FAIL against each target and exits 0, and tests never time.

What it measures, each the best of ``--repeat`` runs (default 3):

- **parse only**: read the file line by line and ``json.loads`` each line, the floor.
- **score_file, workers=1**: both built-in schemes, every reward, the long frame built.
  Target: at most 3.0 times parse only.
- **score_file, workers=2** (and all cores when there are more than 2). Target: workers=2
  at least 1.7 times as fast as workers=1.
- **the CLI end to end**: ``python -m rewardkit.cli score FILE --workers 1 --out OUT.parquet
  --json > /dev/null`` in a subprocess, interpreter start and Parquet included. Skipped with
  a note while ``rewardkit.cli`` does not import. No target: it shows what a user waits for.
- **peak memory**: the max RSS of a fresh child that runs ``score_file`` (workers=1) on the
  whole file, read with ``os.wait4`` for that child alone. (``getrusage(RUSAGE_CHILDREN)``
  in this process would be the maximum over every child so far, including the pool workers
  forked from this process while it held earlier frames.) Target: under 1.5 GiB for
  200,000 lines.
- **adversarial completions** of REWARDS_SPEC.md section 5, 1,000,000 characters each:
  every reward of ``STRICT.score`` and of ``LENIENT.score``, best of 3, each on a fresh copy
  of the string (the rewards share a one-entry cache keyed by the string's identity, which a
  repeat on the same object would hit). Target: under 50 ms per scheme.

Beside each time stands the CPU time of the best run (this process and its children), and
the load average at the start and the end: wall seconds far above CPU seconds per worker
mean that other work held the cores, and the ratios of that run are not to be trusted.

The input is a seeded, GSM8K-style file built once in ``bench/_data/`` (git-ignored) and
reused while the line count, seed and generator version match: groups of 8 completions per
``prompt_id`` with ``prompt``, ``answer`` (``... #### N``) and ``id``; 300-2,000 characters
of arithmetic reasoning each, in the formats real models produce (well-formed tags, tags
without newlines, answer tag only, ``\\boxed{}``, ``#### N``, truncated ``<answer>``, free
text ending "The answer is $1,234."), numbers with commas, decimals, signs and units, right
and wrong.

    .venv/bin/python bench/bench_score.py            # 200,000 lines, best of 3
    .venv/bin/python bench/bench_score.py --quick    # 20,000 lines, 1 repeat: a smoke run
    .venv/bin/python bench/bench_score.py --json     # the same numbers as JSON on stdout
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout without installing
    sys.path.insert(0, str(ROOT))

from rewardkit.schemes import LENIENT, STRICT, Scheme  # noqa: E402
from rewardkit.score import Keys, default_workers, score_file  # noqa: E402

DATA_DIR = Path(__file__).resolve().parent / "_data"
# Bump when the generator changes: a file built by another version is not reused.
GENERATOR_VERSION = 1
GROUP_SIZE = 8
FULL_LINES = 200_000
QUICK_LINES = 20_000
SCHEMES = (STRICT, LENIENT)

# Targets. Ratios, not seconds: they hold on a slow machine as well as on a fast one.
MAX_SCORE_OVER_PARSE = 3.0
MIN_SPEEDUP_2_WORKERS = 1.7
MAX_PEAK_RSS = int(1.5 * 2**30)
MAX_ADVERSARIAL_MS = 50.0
ADVERSARIAL_CHARS = 1_000_000
ADVERSARIAL_REPEAT = 3
ADVERSARIAL_GOLD = "#### 1234567"


# --- the input file --------------------------------------------------------------------------

_NAMES = (
    "Natalia", "Weng", "Betty", "James", "Tina", "Mark", "Albert", "Julie", "Ken", "Alexis",
    "Randy", "Joy", "Carla", "Tobias", "Marco", "Priya", "Hiroshi", "Fatima", "Diego", "Greta",
)  # fmt: skip
_THINGS = (
    "apples", "cupcakes", "marbles", "books", "tickets", "eggs", "pencils", "stamps",
    "bricks", "stickers", "oranges", "cookies", "shells", "cards", "bottles",
)  # fmt: skip
# (format, weight): how often each layout appears.
_FORMATS = (
    ("well_formed", 34),  # <think>\n...\n</think>\n<answer>\n N \n</answer>\n
    ("no_newlines", 12),  # <think>...</think><answer>N</answer>
    ("answer_only", 10),  # reasoning, then <answer>N</answer>
    ("boxed", 12),  # ... $\boxed{N}$.
    ("hashes", 8),  # ...\n#### N
    ("truncated_answer", 8),  # ...<answer>\n N   (cut off before the close)
    ("truncated_think", 4),  # <think>\n...      (cut off mid-thought)
    ("free_text", 10),  # ... The answer is $1,234.
    ("two_answers", 2),  # a first answer, "Wait", a second answer pair
)
_MIN_CHARS, _MAX_CHARS = 300, 2000


class _Step(NamedTuple):
    expr: str  # GSM8K calculator text, "12*4"
    result: Decimal
    say: str  # the sentence a model writes for it


@dataclass(frozen=True)
class _Problem:
    question: str
    steps: tuple[_Step, ...]
    unit: str  # "", "dollars", "km", "degrees", ...
    money: bool

    @property
    def value(self) -> Decimal:
        return self.steps[-1].result


def _d(value: float | int | str) -> Decimal:
    return Decimal(str(value))


def _problem(rng: random.Random) -> _Problem:
    """One GSM8K-style word problem with its worked steps."""
    name, things = rng.choice(_NAMES), rng.choice(_THINGS)
    kind = rng.randrange(6)
    if kind == 0:  # a count that goes up, is multiplied and goes down
        a, b, c = rng.randint(3, 60), rng.randint(2, 40), rng.randint(2, 9)
        m = (a + b) * c
        d = rng.randint(1, m - 1)
        question = (
            f"{name} has {a} {things} and is given {b} more. {name} then buys {c - 1} more"
            f" piles of the same size. After giving {d} {things} to friends, how many"
            f" {things} does {name} have?"
        )
        steps: tuple[_Step, ...] = (
            _Step(f"{a}+{b}", _d(a + b), f"{name} has {a} + {b} = {a + b} {things} at first."),
            _Step(f"{a + b}*{c}", _d(m), f"With {c} equal piles that is {a + b} * {c} = {m}."),
            _Step(f"{m}-{d}", _d(m - d), f"Giving away {d} leaves {m} - {d} = {m - d} {things}."),
        )
        return _Problem(question, steps, things, False)
    if kind == 1:  # money with cents
        n, cents, off = rng.randint(2, 30), rng.choice((0, 25, 50, 75, 99)), rng.randint(0, 15)
        price = _d(rng.randint(1, 80))
        price = (price + _d(cents) / 100).quantize(Decimal("0.01")) if cents else price
        cost = price * n
        question = (
            f"{name} buys {n} {things} at ${price} each and uses a coupon for ${off} off."
            " How much does she pay, in dollars?"
        )
        steps = (
            _Step(
                f"{n}*{price}", cost, f"{n} {things} at ${price} each cost {n} * {price} = ${cost}."
            ),
            _Step(
                f"{cost}-{off}",
                cost - off,
                f"The coupon takes off ${off}: {cost} - {off} = ${cost - off}.",
            ),
        )
        return _Problem(question, steps, "dollars", True)
    if kind == 2:  # large counts: thousands separators
        per_hour, hours, days = rng.randint(100, 999), rng.randint(8, 24), rng.randint(200, 365)
        daily = per_hour * hours
        question = (
            f"A factory makes {per_hour} {things} an hour and runs {hours} hours a day for"
            f" {days} days a year. How many {things} does it make in a year?"
        )
        steps = (
            _Step(
                f"{per_hour}*{hours}",
                _d(daily),
                f"Per day it makes {per_hour} * {hours} = {daily:,} {things}.",
            ),
            _Step(
                f"{daily}*{days}",
                _d(daily * days),
                f"In {days} days that is {daily:,} * {days} = {daily * days:,} {things}.",
            ),
        )
        return _Problem(question, steps, things, False)
    if kind == 3:  # temperatures: negative answers
        start, drop, hours = rng.randint(-5, 15), rng.randint(1, 6), rng.randint(2, 10)
        fall = drop * hours
        question = (
            f"At midnight it was {start} degrees. The temperature fell {drop} degrees every"
            f" hour for {hours} hours. What was the temperature then?"
        )
        steps = (
            _Step(
                f"{drop}*{hours}", _d(fall), f"It falls {drop} * {hours} = {fall} degrees in all."
            ),
            _Step(
                f"{start}-{fall}",
                _d(start - fall),
                f"So it ends at {start} - {fall} = {start - fall} degrees.",
            ),
        )
        return _Problem(question, steps, "degrees", False)
    if kind == 4:  # distances: decimals and units
        speed, drive_hours, extra = (
            rng.randint(30, 120),
            rng.choice((1.5, 2, 2.5, 3, 4.5)),
            rng.randint(1, 40),
        )
        far = _d(speed) * _d(drive_hours)
        question = (
            f"{name} drives at {speed} km per hour for {drive_hours} hours, then walks {extra} km."
            " How many kilometres does she cover?"
        )
        steps = (
            _Step(
                f"{speed}*{drive_hours}", far, f"Driving covers {speed} * {drive_hours} = {far} km."
            ),
            _Step(
                f"{far}+{extra}",
                far + extra,
                f"Adding the walk, {far} + {extra} = {far + extra} km.",
            ),
        )
        return _Problem(question, steps, "km", False)
    coat, percent = rng.randint(2, 60) * 4, rng.choice((10, 15, 20, 25, 30, 40, 50))
    saved = _d(coat) * percent / 100
    question = (
        f"A coat costs ${coat}. It is on sale for {percent}% off. What is the sale price,"
        " in dollars?"
    )
    steps = (
        _Step(
            f"{coat}*{percent}/100",
            saved,
            f"{percent}% of ${coat} is {coat} * {percent} / 100 = ${saved}.",
        ),
        _Step(
            f"{coat}-{saved}",
            coat - saved,
            f"The sale price is {coat} - {saved} = ${coat - saved}.",
        ),
    )
    return _Problem(question, steps, "dollars", True)


def _gsm8k_answer(problem: _Problem) -> str:
    """The reference solution as GSM8K writes it: calculator annotations, then ``#### N``."""
    lines = [f"{s.say.split(':')[0]} <<{s.expr}={s.result}>>{s.result}" for s in problem.steps]
    return "\n".join(lines) + f"\n#### {_plain(problem.value)}"


def _plain(value: Decimal) -> str:
    value = value.normalize()
    return str(value.quantize(Decimal(1)) if value == value.to_integral_value() else value)


def _wrong(problem: _Problem, rng: random.Random) -> Decimal:
    """A plausible wrong answer: off by a little, a skipped step, a slip of a digit."""
    value = problem.value
    candidates = [value + rng.choice((-10, -2, -1, 1, 2, 10)), value * 2, -value]
    candidates += [s.result for s in problem.steps[:-1]]
    candidates.append((value / 10).quantize(Decimal("0.01")))
    options = [c for c in candidates if c != value]
    return rng.choice(options) if options else value + 1


def _render(value: Decimal, problem: _Problem, rng: random.Random) -> str:
    """The number as a model writes it: commas, cents, a sign, a unit."""
    integral = value == value.to_integral_value()
    if problem.money and not integral:
        text = f"{value:,.2f}" if rng.random() < 0.5 else f"{value:.2f}"
        text = text.rstrip("0") if rng.random() < 0.2 else text
    elif integral:
        n = int(value)
        text = f"{n:,}" if abs(n) >= 1000 and rng.random() < 0.6 else str(n)
    else:
        text = _plain(value)
    if text.startswith("-") and rng.random() < 0.1:
        text = "\u2212" + text[1:]  # a typographic minus, as some tokenizers write it
    roll = rng.random()
    if problem.money:
        return f"${text}" if roll < 0.5 else f"{text} dollars" if roll < 0.7 else text
    return f"{text} {problem.unit}" if roll < 0.25 else text


def _filler(problem: _Problem, rng: random.Random) -> str:
    """One more sentence of reasoning: a check, a restatement, some side arithmetic."""
    step = rng.choice(problem.steps)
    x, y = rng.randint(2, 99), rng.randint(2, 12)
    choice = rng.randrange(7)
    if choice == 0:
        return f"Let me double-check that step: {step.expr} = {step.result}."
    if choice == 1:
        return (
            f"Another way to see it: {x} * {y} = {x * y}, and {x * y} / {y} = {x}, as it should be."
        )
    if choice == 2:
        return f"Wait, I should re-read the question. It says: {problem.question.split('. ')[0]}."
    if choice == 3:
        return f"Hmm, {x} + {y} = {x + y} would only matter if we counted twice, which we don't."
    if choice == 4:
        return f"Checking the units: the result is in {problem.unit}, which is what is asked."
    if choice == 5:
        return f"Estimate: about {round(float(step.result), -1):,.0f}, close to {step.result}."
    return f"So far: {'; '.join(s.expr + ' = ' + str(s.result) for s in problem.steps)}."


def _reasoning(problem: _Problem, rng: random.Random, length: int) -> str:
    """Sentences of arithmetic reasoning, about `length` characters long."""
    opener = rng.choice(
        (
            "Let's work through this step by step.",
            "Okay, let me figure out what is being asked.",
            "I'll start by listing what we know.",
            "We need to follow each change in order.",
        )
    )
    words = ("First,", "Next,", "Then", "Finally,")
    core = [opener] + [
        f"{words[min(i, 3)]} {s.say[0].lower()}{s.say[1:]}" for i, s in enumerate(problem.steps)
    ]
    sentences = core[:]
    total = sum(len(s) + 1 for s in sentences)
    while total < length:
        sentence = _filler(problem, rng)
        sentences.insert(rng.randint(2, len(sentences)), sentence)
        total += len(sentence) + 1
    return " ".join(sentences)


def _completion(problem: _Problem, rng: random.Random, correct: bool) -> tuple[str, str]:
    """One completion and its format name, 300-2,000 characters."""
    fmt = rng.choices([f for f, _ in _FORMATS], weights=[w for _, w in _FORMATS])[0]
    value = problem.value if correct else _wrong(problem, rng)
    answer = _render(value, problem, rng)
    spaced = f" {answer} " if rng.random() < 0.2 else answer
    # Shorter completions are more common; leave room for the tags and the final sentence.
    target = int(rng.triangular(_MIN_CHARS + 20, _MAX_CHARS - 300, 700))
    think = _reasoning(problem, rng, target)
    conclusion = f"So the answer is {answer}."
    if fmt == "well_formed":
        text = f"<think>\n{think} {conclusion}\n</think>\n<answer>\n{spaced}\n</answer>\n"
    elif fmt == "no_newlines":
        text = f"<think>{think}</think><answer>{spaced}</answer>"
    elif fmt == "answer_only":
        text = f"{think} {conclusion}\n<answer>{spaced}</answer>"
    elif fmt == "boxed":
        boxed = answer.replace("$", "\\$")
        text = f"{think}\n\nTherefore the final answer is $\\boxed{{{boxed}}}$."
    elif fmt == "hashes":
        text = f"{think} {conclusion}\n#### {answer}"
    elif fmt == "truncated_answer":
        text = f"<think>\n{think}\n</think>\n<answer>\n{spaced}"
    elif fmt == "truncated_think":
        text = f"<think>\n{think}"[: max(_MIN_CHARS, target)]
    elif fmt == "free_text":
        text = f"{think} The answer is {answer if answer.startswith('$') else answer + '.'}"
        text = text if text.endswith(".") else text + "."
    else:
        first = _render(_wrong(problem, rng), problem, rng)
        text = (
            f"<think>\n{think}\n</think>\n<answer>\n{first}\n</answer>\n"
            f"Wait, let me check again. {conclusion}\n<answer>\n{spaced}\n</answer>\n"
        )
    assert _MIN_CHARS <= len(text) <= _MAX_CHARS, (fmt, len(text))
    return text, fmt


def _data_path(lines: int, seed: int) -> Path:
    return DATA_DIR / f"gsm8k-{lines}-s{seed}-v{GENERATOR_VERSION}.jsonl"


def build_data(lines: int, seed: int, log: Callable[[str], None]) -> tuple[Path, dict[str, Any]]:
    """The benchmark's input file, built once per (lines, seed, generator version).

    The stats file is written last, so a build that was interrupted is never reused.
    """
    path = _data_path(lines, seed)
    meta_path = path.with_suffix(".meta.json")
    params = {"lines": lines, "seed": seed, "version": GENERATOR_VERSION}
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("params") == params and meta.get("bytes") == path.stat().st_size:
            meta["reused"] = True
            return path, meta
    log(f"building {path.relative_to(ROOT)} ({lines:,} lines, seed {seed}) ...")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    formats: Counter[str] = Counter()
    lengths: list[int] = []
    correct_count = 0
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for prompt in range(math.ceil(lines / GROUP_SIZE)):
            problem = _problem(rng)
            reference = _gsm8k_answer(problem)
            skill = rng.random()  # some prompts are easy for the model, some hard
            for sample in range(min(GROUP_SIZE, lines - prompt * GROUP_SIZE)):
                correct = rng.random() < skill
                text, fmt = _completion(problem, rng, correct)
                record = {
                    "id": f"p{prompt:06d}-s{sample}",
                    "prompt_id": f"gsm8k-{prompt:06d}",
                    "prompt": problem.question,
                    "answer": reference,
                    "completion": text,
                }
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
                formats[fmt] += 1
                lengths.append(len(text))
                correct_count += correct
    tmp.replace(path)
    meta = {
        "params": params,
        "bytes": path.stat().st_size,
        "formats": dict(formats.most_common()),
        "correct_fraction": round(correct_count / lines, 3),
        "chars": {"min": min(lengths), "mean": round(sum(lengths) / lines), "max": max(lengths)},
    }
    meta_path.write_text(json.dumps(meta, indent=1))
    meta["reused"] = False
    return path, meta


# --- measurements ----------------------------------------------------------------------------


class Timing(NamedTuple):
    seconds: float  # wall clock
    cpu_seconds: float  # this process and its reaped children, user + system


def _cpu_seconds() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def best_of(repeat: int, run: Callable[[], object]) -> Timing:
    """The fastest of `repeat` runs: the run least disturbed by the neighbours."""
    best = Timing(math.inf, math.nan)
    for _ in range(repeat):
        cpu, start = _cpu_seconds(), time.perf_counter()
        run()
        seconds = time.perf_counter() - start
        if seconds < best.seconds:
            best = Timing(seconds, _cpu_seconds() - cpu)
    return best


def parse_only(path: Path) -> int:
    count = 0
    with path.open("rb") as handle:
        for line in handle:
            json.loads(line)
            count += 1
    return count


def score(path: Path, workers: int, lines: int) -> None:
    result = score_file(path, SCHEMES, keys=Keys(), workers=workers, on_error="raise")
    rows = len(result.frame)
    if rows != lines * len(SCHEMES):
        raise RuntimeError(f"score_file gave {rows} rows for {lines} lines x {len(SCHEMES)}")


class ChildRun(NamedTuple):
    seconds: float
    cpu_seconds: float
    returncode: int
    max_rss: int  # bytes, of this child (and its children) alone
    stderr: str


def run_child(argv: list[str], stdout: Any = subprocess.DEVNULL) -> ChildRun:
    """Run a command and read its own max RSS from `os.wait4`, which reaps it."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: tell Popen
        err.seek(0)
        text = err.read().decode("utf-8", "replace")
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss is KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime
    return ChildRun(seconds, cpu, proc.returncode, usage.ru_maxrss * scale, text)


_MEMORY_CHILD = """\
import sys
from rewardkit.schemes import LENIENT, STRICT
from rewardkit.score import score_file
result = score_file(sys.argv[1], [STRICT, LENIENT], workers=1)
print(len(result.frame))
"""


def peak_memory(path: Path) -> ChildRun:
    run = run_child([sys.executable, "-c", _MEMORY_CHILD, str(path)])
    if run.returncode != 0:
        raise RuntimeError(f"the memory child failed:\n{run.stderr}")
    return run


def cli_runs(path: Path, repeat: int) -> tuple[ChildRun | None, str]:
    """The fastest of `repeat` CLI runs, or None and why it was skipped."""
    probe = subprocess.run(
        [sys.executable, "-c", "import rewardkit.cli"], cwd=ROOT, capture_output=True, text=True
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"rewardkit.cli does not import yet ({last}); CLI not measured"
    best: ChildRun | None = None
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scores.parquet"
        for _ in range(repeat):
            out.unlink(missing_ok=True)
            argv = [sys.executable, "-m", "rewardkit.cli", "score", str(path)]
            run = run_child([*argv, "--workers", "1", "--out", str(out), "--json"])
            if run.returncode != 0:
                tail = "\n    ".join(run.stderr.strip().splitlines()[-5:])
                return None, f"the CLI exited {run.returncode}; CLI not measured:\n    {tail}"
            if not out.exists() or out.stat().st_size == 0:
                return None, (
                    "the CLI exited 0 but wrote no --out file (is there an"
                    " `if __name__ == '__main__'` in rewardkit/cli.py?); CLI not measured"
                )
            if best is None or run.seconds < best.seconds:
                best = run
    return best, ""


# --- adversarial completions -----------------------------------------------------------------


def _fill(unit: str, prefix: str = "", suffix: str = "") -> str:
    """`unit` repeated to make `prefix + ... + suffix` about ADVERSARIAL_CHARS long."""
    return prefix + unit * ((ADVERSARIAL_CHARS - len(prefix) - len(suffix)) // len(unit)) + suffix


def adversarial_inputs(seed: int) -> dict[str, str]:
    """The completions of REWARDS_SPEC.md section 5, and a few more of the same spirit."""
    rng = random.Random(seed)
    tokens = (
        "<think>", "</think>", "<answer>", "</answer>", "<think>\n", "</answer>\n", "\n",
        "\n</think>\n<answer>\n", "\\boxed{", "{", "}", "####", " 1,234", "-5", ".5", "1.1.",
        "１２", "\u22123", " $", " the ",
    )  # fmt: skip
    parts: list[str] = []
    size = 0
    while size < ADVERSARIAL_CHARS:
        parts.append(rng.choice(tokens))
        size += len(parts[-1])
    mix = "".join(parts)[:ADVERSARIAL_CHARS]
    sentence = "Each box holds {a} eggs, so {b} boxes hold {a} * {b} = {c:,} eggs. "
    body: list[str] = []
    size = 0
    while size < ADVERSARIAL_CHARS - 60:
        a, b = rng.randint(2, 99), rng.randint(2, 999)
        body.append(sentence.format(a=a, b=b, c=a * b))
        size += len(body[-1])
    well_formed = "<think>\n" + "".join(body) + "\n</think>\n<answer>\n1,234,567\n</answer>\n"
    return {
        "repeated \\n</think>\\n<answer>\\n": _fill("\n</think>\n<answer>\n", prefix="<think>\n"),
        "<answer> repeated, never closed": _fill("<answer>"),
        "digit run with commas 1,234,234,...": _fill(",234", prefix="1"),
        "  the same inside <answer>...</answer>": _fill(
            ",234", prefix="<think>\nx\n</think>\n<answer>\n1", suffix="\n</answer>\n"
        ),
        "unclosed \\boxed{ repeated": _fill("\\boxed{"),
        "1.1.1.1...": _fill(".1", prefix="1"),
        "minus signs --1-1-1...": _fill("-1", prefix="-"),
        "full-width digits in <answer>": _fill(
            "１２３４５６７８９０", "<answer>\n", "\n</answer>\n"
        ),
        "random mix of all tags": mix,
        "valid well-formed completion": well_formed,
    }


def time_scheme(scheme: Scheme, text: str, answer: str) -> tuple[float, float]:
    """Best-of milliseconds for every reward of `scheme`, and the scheme's total."""
    best, total = math.inf, math.nan
    for _ in range(ADVERSARIAL_REPEAT):
        # A new string object each time: the rewards' one-entry cache is keyed by identity.
        fresh = (text + " ")[:-1]
        start = time.perf_counter()
        scores = scheme.score(fresh, answer)
        best = min(best, time.perf_counter() - start)
        total = scheme.total(scores)
    return best * 1000, total


# --- the report ------------------------------------------------------------------------------


def _check(name: str, value: float, target: str, ok: bool, shown: str) -> dict[str, Any]:
    return {"check": name, "value": value, "shown": shown, "target": target, "pass": ok}


def run(lines: int, repeat: int, seed: int, log: Callable[[str], None]) -> dict[str, Any]:
    load_start = os.getloadavg()[0]
    path, meta = build_data(lines, seed, log)
    size = path.stat().st_size
    cores = default_workers()
    worker_counts = [2] + ([cores] if cores > 2 else [])
    timings: dict[str, Timing] = {}

    log("parse only ...")
    timings["parse only (json.loads per line)"] = best_of(repeat, lambda: parse_only(path))
    log("score_file, workers=1 ...")
    timings["score_file, workers=1"] = best_of(repeat, lambda: score(path, 1, lines))
    for workers in worker_counts:
        log(f"score_file, workers={workers} ...")
        timings[f"score_file, workers={workers}"] = best_of(
            repeat, functools.partial(score, path, workers, lines)
        )
    log("CLI end to end ...")
    cli, cli_note = cli_runs(path, repeat)
    if cli is not None:
        timings["CLI end to end, --workers 1"] = Timing(cli.seconds, cli.cpu_seconds)
    log("peak memory ...")
    memory = peak_memory(path)

    parse_s = timings["parse only (json.loads per line)"].seconds
    one_s = timings["score_file, workers=1"].seconds
    ratio = one_s / parse_s
    speedup = one_s / timings["score_file, workers=2"].seconds
    mib = memory.max_rss / 2**20
    checks = [
        _check(
            "score(workers=1) / parse only",
            ratio,
            f"<= {MAX_SCORE_OVER_PARSE}",
            ratio <= MAX_SCORE_OVER_PARSE,
            f"{ratio:.2f}x",
        ),
        _check(
            "speedup workers=2 vs 1",
            speedup,
            f">= {MIN_SPEEDUP_2_WORKERS}",
            speedup >= MIN_SPEEDUP_2_WORKERS,
            f"{speedup:.2f}x",
        ),
        _check(
            f"peak RSS, score_file on {lines:,} lines",
            mib,
            "< 1536 MiB",
            memory.max_rss < MAX_PEAK_RSS,
            f"{mib:,.0f} MiB",
        ),
    ]

    log("adversarial inputs ...")
    adversarial = []
    for name, text in adversarial_inputs(seed).items():
        strict_ms, strict_total = time_scheme(STRICT, text, ADVERSARIAL_GOLD)
        lenient_ms, lenient_total = time_scheme(LENIENT, text, ADVERSARIAL_GOLD)
        adversarial.append(
            {
                "input": name,
                "chars": len(text),
                "strict_ms": strict_ms,
                "lenient_ms": lenient_ms,
                "strict_total": strict_total,
                "lenient_total": lenient_total,
                "pass": max(strict_ms, lenient_ms) < MAX_ADVERSARIAL_MS,
            }
        )

    return {
        "file": str(path.relative_to(ROOT)),
        "reused": meta["reused"],
        "lines": lines,
        "bytes": size,
        "data": {k: meta[k] for k in ("formats", "correct_fraction", "chars")},
        "seed": seed,
        "repeat": repeat,
        "cores": cores,
        "load_average": [load_start, os.getloadavg()[0]],
        "python": sys.version.split()[0],
        "measurements": [
            {
                "measurement": name,
                "seconds": t.seconds,
                "cpu_seconds": t.cpu_seconds,
                "lines_per_s": lines / t.seconds,
            }
            for name, t in timings.items()
        ],
        "cli_note": cli_note or None,
        "cli_max_rss_mib": cli.max_rss / 2**20 if cli else None,
        "checks": checks,
        "adversarial": adversarial,
    }


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def print_report(r: dict[str, Any]) -> None:
    built = "reused" if r["reused"] else "built"
    print(
        f"rewardkit score benchmark: {r['lines']:,} lines ({r['bytes'] / 1e6:,.1f} MB,"
        f" {GROUP_SIZE} per prompt, seed {r['seed']}), best of {r['repeat']},"
        f" {r['cores']} cores, Python {r['python']}"
    )
    data = r["data"]
    chars = data["chars"]
    formats = ", ".join(f"{k} {v / r['lines']:.0%}" for k, v in data["formats"].items())
    start, end = r["load_average"]
    print(f"load average {start:.2f} at the start, {end:.2f} at the end (other work slows all)")
    print(f"data: {r['file']} ({built})")
    print(
        f"  completions {chars['min']}-{chars['max']} chars (mean {chars['mean']}),"
        f" {data['correct_fraction']:.0%} correct; {formats}"
    )
    print()
    print(f"{'measurement':<36} {'seconds':>9} {'cpu s':>7} {'lines/s':>10}")
    for m in r["measurements"]:
        print(
            f"{m['measurement']:<36} {m['seconds']:>9.3f} {m['cpu_seconds']:>7.2f}"
            f" {m['lines_per_s']:>10,.0f}"
        )
    print("  cpu s: CPU time of the process and its children in the best run; seconds well")
    print("  above cpu s / workers mean that other work held the cores")
    if r["cli_note"]:
        print(f"note: {r['cli_note']}")
    elif r["cli_max_rss_mib"] is not None:
        print(f"  (the CLI run peaked at {r['cli_max_rss_mib']:,.0f} MiB RSS)")
    print()
    print(f"{'check':<40} {'value':>10} {'target':>11}  result")
    for c in r["checks"]:
        print(f"{c['check']:<40} {c['shown']:>10} {c['target']:>11}  {_verdict(c['pass'])}")
    cpu = {m["measurement"]: m["cpu_seconds"] for m in r["measurements"]}
    one, two = cpu["score_file, workers=1"], cpu["score_file, workers=2"]
    print(
        f"  by CPU time, less sensitive to load: score/parse"
        f" {one / cpu['parse only (json.loads per line)']:.2f}x; workers=2 used"
        f" {two / one - 1:+.0%} CPU over workers=1"
    )
    print()
    print(
        f"adversarial completions ({ADVERSARIAL_CHARS:,} chars, gold {ADVERSARIAL_GOLD!r}),"
        f" best of {ADVERSARIAL_REPEAT}, target < {MAX_ADVERSARIAL_MS:g} ms per scheme"
    )
    print(f"{'input':<40} {'strict ms':>9} {'lenient ms':>10} {'totals s/l':>11}  result")
    for a in r["adversarial"]:
        totals = f"{a['strict_total']:g} / {a['lenient_total']:g}"
        print(
            f"{a['input']:<40} {a['strict_ms']:>9.2f} {a['lenient_ms']:>10.2f}"
            f" {totals:>11}  {_verdict(a['pass'])}"
        )
    failed = sum(not c["pass"] for c in r["checks"]) + sum(not a["pass"] for a in r["adversarial"])
    print()
    print(
        f"{failed} of {len(r['checks']) + len(r['adversarial'])} targets missed"
        if failed
        else "all targets met"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark rewardkit scoring against json.loads on the same file."
    )
    parser.add_argument("--lines", type=int, help=f"input lines (default {FULL_LINES:,})")
    parser.add_argument("--repeat", type=int, help="runs per measurement, best kept (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the input (default 0)")
    parser.add_argument(
        "--quick", action="store_true", help=f"smoke run: {QUICK_LINES:,} lines, 1 repeat"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    lines = args.lines or (QUICK_LINES if args.quick else FULL_LINES)
    repeat = args.repeat or (1 if args.quick else 3)
    if lines < 1 or repeat < 1:
        parser.error("--lines and --repeat must be at least 1")

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    results = run(lines, repeat, args.seed, log)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_report(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
