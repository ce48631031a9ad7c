"""Cross-check rewardkit's lenient correctness against Math-Verify's verdict, row by row.

Math-Verify (``pip install math-verify``) is a second opinion from a different design: it
parses the gold and the completion into sympy objects (`math_verify.parse`) and compares
them (`math_verify.verify`). Where the two disagree, one of them has a bug or a different
idea of what the answer is; the rows where they disagree are listed with both readings.

Math-Verify's own timeouts use ``signal.alarm``, which only works in a process's main
thread, and cannot interrupt a hang inside C code. So each row runs in a worker process's
main thread with its timeouts on, and the parent kills a worker that is silent for longer
than `ROW_TIMEOUT_SECONDS` on one row: that row counts as ``timeout`` and the worker's
remaining rows go to a fresh one. rewardkit itself is never at the mercy of a row.

Both scorers see the same gold text, ``rewardkit.extract.gold(answer)`` (the text after
``####``). Speeds are rows per second of one core on the same rows: rewardkit's timed in
this process, Math-Verify's summed over the rows in its workers.
"""

from __future__ import annotations

import importlib.util
import math
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.connection import Connection, wait
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rewardkit.extract import fallback_text, gold, lenient_answer
from rewardkit.numbers import parse_number
from rewardkit.rewards import correctness_lenient

__all__ = [
    "INSTALL_HINT",
    "PARSING_TIMEOUT_SECONDS",
    "ROW_TIMEOUT_SECONDS",
    "VERIFY_TIMEOUT_SECONDS",
    "CrossCheck",
    "CrossCheckUnavailable",
    "RowCheck",
    "check_math_verify",
    "cross_check",
    "render_cross_check",
    "require_math_verify",
]

INSTALL_HINT = "pip install math-verify"
# Math-Verify's own limits (its defaults): seconds per parse and per comparison.
PARSING_TIMEOUT_SECONDS = 5
VERIFY_TIMEOUT_SECONDS = 5
# The parent's wall-clock guard per row: above two parses and a few comparisons at their
# limits, so it only fires on a hang that Math-Verify's alarms cannot interrupt.
ROW_TIMEOUT_SECONDS = 30.0
# A worker must import Math-Verify (sympy) before its first row.
_START_TIMEOUT_SECONDS = 120.0
_BATCH = 32
_SHOWN = 60  # characters of an extracted answer kept for display


class CrossCheckUnavailable(RuntimeError):
    """The cross-check's scorer is not installed; the message says how to install it."""


def require_math_verify() -> None:
    """Raise `CrossCheckUnavailable` with the install hint when math-verify is missing."""
    if importlib.util.find_spec("math_verify") is None:
        raise CrossCheckUnavailable(
            "--cross-check math-verify needs the math-verify package, which is not installed;"
            f" install it with `{INSTALL_HINT}`"
        )


@dataclass(frozen=True)
class RowCheck:
    """One row under both scorers. `math_verify` is None when it timed out or crashed."""

    line: int
    id: str | None
    gold: str
    rewardkit: bool
    rewardkit_answer: str
    math_verify: bool | None
    math_verify_answer: str
    status: str  # ok | timeout | crashed
    seconds: float  # Math-Verify's time on this row

    @property
    def agrees(self) -> bool:
        return self.status == "ok" and self.rewardkit == self.math_verify


@dataclass
class CrossCheck:
    """Per-row verdicts of both scorers, their agreement and their speeds on the same rows."""

    rows: list[RowCheck]
    rewardkit_seconds: float
    math_verify_seconds: float
    wall_seconds: float
    workers: int
    row_timeout: float
    math_verify_version: str
    counts: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        counts = dict.fromkeys(
            ["both_right", "both_wrong", "only_rewardkit", "only_math_verify", "timeout"], 0
        )
        counts["crashed"] = 0
        for row in self.rows:
            if row.status != "ok":
                counts[row.status] += 1
            elif row.rewardkit and row.math_verify:
                counts["both_right"] += 1
            elif row.rewardkit:
                counts["only_rewardkit"] += 1
            elif row.math_verify:
                counts["only_math_verify"] += 1
            else:
                counts["both_wrong"] += 1
        self.counts = counts

    @property
    def agreement(self) -> float:
        """Share of all rows with the same verdict; a timed-out row does not agree."""
        agreeing = self.counts["both_right"] + self.counts["both_wrong"]
        return agreeing / len(self.rows) if self.rows else math.nan

    @property
    def disagreements(self) -> list[RowCheck]:
        return [row for row in self.rows if not row.agrees]

    @staticmethod
    def _rate(rows: int, seconds: float) -> float | None:
        return rows / seconds if seconds > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: counts, agreement, speeds and every row that does not agree."""
        n = len(self.rows)
        return {
            "scorer": "math-verify",
            "math_verify_version": self.math_verify_version,
            "compared": "rewardkit lenient correctness",
            "rows": n,
            **self.counts,
            "agreement": None if math.isnan(self.agreement) else self.agreement,
            "speed": {
                "rewardkit_rows_per_s": self._rate(n, self.rewardkit_seconds),
                "math_verify_rows_per_s": self._rate(n, self.math_verify_seconds),
                "math_verify_wall_rows_per_s": self._rate(n, self.wall_seconds),
                "math_verify_workers": self.workers,
                "row_timeout_s": self.row_timeout,
            },
            "disagreements": [
                {
                    "line": row.line,
                    "id": row.id,
                    "gold": row.gold,
                    "rewardkit": row.rewardkit,
                    "rewardkit_answer": row.rewardkit_answer,
                    "math_verify": row.math_verify,
                    "math_verify_answer": row.math_verify_answer,
                    "status": row.status,
                }
                for row in self.disagreements
            ],
        }


# --- Math-Verify on one row (runs in a worker's main thread) -------------------------------


def _shown(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


def check_math_verify(
    gold_text: str,
    completion: str,
    parsing_timeout: int = PARSING_TIMEOUT_SECONDS,
    verify_timeout: int = VERIFY_TIMEOUT_SECONDS,
) -> tuple[bool | None, str]:
    """Math-Verify's verdict and its reading of the completion; None when it timed out.

    The same verdict as ``verify(parse(gold), parse(completion))`` with its defaults, except
    that a timeout is told apart from a wrong answer: errors are caught per call with
    ``raise_on_error=True`` and treated as Math-Verify treats them (no parse, no match).
    Needs the main thread (``signal.alarm``).
    """
    from math_verify import parse, verify
    from math_verify.errors import TimeoutException

    def parsed(text: str) -> list[Any]:
        try:
            return list(parse(text, parsing_timeout=parsing_timeout, raise_on_error=True))
        except Exception:  # what parse(raise_on_error=False) turns into "nothing parsed"
            return []

    try:
        golds = parsed(gold_text)
        answers = parsed(completion)
    except TimeoutException:
        return None, "(parse timed out)"
    # parse returns [sympy value, extracted text]; the text is what it read.
    reading = _shown(str(answers[-1])) if answers else "(nothing parsed)"
    timed_out = False
    # verify(golds, answers) is any() over the pairs; one pair at a time keeps the same
    # verdict and tells a timed-out pair apart from a false one.
    for expected in golds:
        for answer in answers:
            try:
                if verify(expected, answer, timeout_seconds=verify_timeout, raise_on_error=True):
                    return True, reading
            except TimeoutException:
                timed_out = True
            except Exception:  # verify(raise_on_error=False) counts an error as no match
                continue
    return (None if timed_out else False), reading


def _worker_main(conn: Connection, parsing_timeout: int, verify_timeout: int) -> None:
    """Score batches of ``(index, gold, completion)``; send one result per row as it is done."""
    # Import and a first call (lazy sympy and regex set-up) come before "ready": neither
    # the row guard nor the measured speed includes them.
    check_math_verify("1", "1", parsing_timeout, verify_timeout)
    conn.send(("ready",))
    while True:
        batch = conn.recv()
        if batch is None:
            return
        for index, gold_text, completion in batch:
            start = time.perf_counter()
            verdict, reading = check_math_verify(
                gold_text, completion, parsing_timeout, verify_timeout
            )
            conn.send(("row", index, verdict, reading, time.perf_counter() - start))


# --- the pool with a per-row guard ---------------------------------------------------------

_Job = tuple[int, str, str]


class _Worker:
    def __init__(self, context: Any, parsing_timeout: int, verify_timeout: int) -> None:
        parent, child = context.Pipe()
        self.process = context.Process(
            target=_worker_main, args=(child, parsing_timeout, verify_timeout), daemon=True
        )
        self.process.start()
        child.close()
        self.conn: Connection = parent
        self.ready = False
        self.jobs: deque[_Job] = deque()  # sent or to send, in order
        self.sent = False
        self.deadline = time.monotonic() + _START_TIMEOUT_SECONDS

    @property
    def busy(self) -> bool:
        return not self.ready or bool(self.jobs)

    def send(self, guard: float) -> None:
        self.conn.send(list(self.jobs))
        self.sent = True
        self.deadline = time.monotonic() + guard

    def stop(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except OSError:
                self.process.kill()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _run_math_verify(
    jobs: list[_Job],
    workers: int,
    row_timeout: float,
    parsing_timeout: int,
    verify_timeout: int,
) -> dict[int, tuple[bool | None, str, str, float]]:
    """``index -> (verdict, reading, status, seconds)`` for every job, whatever hangs."""
    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    context = get_context(method)
    if method == "fork":
        import math_verify  # noqa: F401 - once here, so forked workers start with it loaded
    queue = deque(jobs)
    results: dict[int, tuple[bool | None, str, str, float]] = {}
    pool = [_Worker(context, parsing_timeout, verify_timeout) for _ in range(workers)]
    try:
        while len(results) < len(jobs):
            for worker in pool:
                if worker.ready and not worker.jobs and queue:
                    worker.jobs.extend(queue.popleft() for _ in range(min(_BATCH, len(queue))))
                    worker.sent = False
                if worker.ready and worker.jobs and not worker.sent:
                    worker.send(row_timeout)
            busy = [w for w in pool if w.busy]
            if not busy:  # pragma: no cover - every job is in the queue, a worker or results
                raise RuntimeError("cross-check lost track of its rows")
            now = time.monotonic()
            timeout = max(0.0, min(w.deadline for w in busy) - now)
            by_conn = {w.conn: w for w in busy}
            for conn in wait(list(by_conn), timeout):
                worker = by_conn[conn]  # type: ignore[index]
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):  # the worker died: its current row crashed it
                    worker.deadline = -math.inf
                    continue
                if message[0] == "ready":
                    worker.ready = True
                    continue
                _, index, verdict, reading, seconds = message
                worker.jobs.popleft()
                results[index] = (
                    verdict,
                    reading,
                    "ok" if verdict is not None else "timeout",
                    seconds,
                )
                worker.deadline = time.monotonic() + row_timeout
            now = time.monotonic()
            for position, worker in enumerate(pool):
                if not worker.busy or worker.deadline > now:
                    continue
                if not worker.ready and worker.deadline != -math.inf:
                    raise RuntimeError(
                        f"a Math-Verify worker did not start in {_START_TIMEOUT_SECONDS:.0f} s"
                    )
                if not worker.ready:
                    raise RuntimeError("a Math-Verify worker exited before its first row")
                crashed = worker.deadline == -math.inf
                index = worker.jobs.popleft()[0]
                status = "crashed" if crashed else "timeout"
                reading = "(worker crashed)" if crashed else f"(no answer in {row_timeout:g} s)"
                results[index] = (None, reading, status, 0.0 if crashed else row_timeout)
                worker.stop(kill=True)
                fresh = _Worker(context, parsing_timeout, verify_timeout)
                fresh.jobs = worker.jobs  # the rest of its batch, sent once it is ready
                pool[position] = fresh
    finally:
        for worker in pool:
            worker.stop(kill=worker.busy)
    return results


# --- rewardkit's side and the whole check --------------------------------------------------


def _rewardkit_reading(completion: str) -> str:
    """What the lenient scheme reads as the answer: the number in the tag or the fallback."""
    found = lenient_answer(completion)
    text = fallback_text(completion) if found is None else found
    value = parse_number(text)
    return str(value) if value is not None else f"(no number: {_shown(text)!r})"


def cross_check(
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    *,
    workers: int | None = None,
    row_timeout: float = ROW_TIMEOUT_SECONDS,
    parsing_timeout: int = PARSING_TIMEOUT_SECONDS,
    verify_timeout: int = VERIFY_TIMEOUT_SECONDS,
) -> CrossCheck:
    """Both verdicts on every ``(line, record)``; records hold ``completion`` and ``answer``.

    `workers` None means all cores (fewer for a few rows). Raises `CrossCheckUnavailable`
    when math-verify is not installed.
    """
    require_math_verify()
    from rewardkit.score import default_workers

    records = [(line, record) for line, record in rows]
    completions = [str(record["completion"]) for _, record in records]
    answers = [str(record["answer"]) for _, record in records]
    start = time.perf_counter()
    verdicts = [
        correctness_lenient(c, a).value > 0 for c, a in zip(completions, answers, strict=True)
    ]
    rewardkit_seconds = time.perf_counter() - start
    golds = [gold(a) for a in answers]
    jobs = [(index, golds[index], completions[index]) for index in range(len(records))]
    wanted = default_workers() if workers is None else max(1, workers)
    pool_size = max(1, min(wanted, math.ceil(len(jobs) / (2 * _BATCH))))
    start = time.perf_counter()
    results = (
        _run_math_verify(jobs, pool_size, row_timeout, parsing_timeout, verify_timeout)
        if jobs
        else {}
    )
    wall = time.perf_counter() - start
    checked = []
    for index, (line, record) in enumerate(records):
        verdict, reading, status, seconds = results[index]
        raw_id = record.get("id")
        checked.append(
            RowCheck(
                line=line,
                id=None if raw_id is None else str(raw_id),
                gold=golds[index],
                rewardkit=verdicts[index],
                rewardkit_answer=_rewardkit_reading(completions[index]),
                math_verify=verdict,
                math_verify_answer=reading,
                status=status,
                seconds=seconds,
            )
        )
    try:
        mv_version = version("math-verify")
    except PackageNotFoundError:  # pragma: no cover - importable but not installed as a dist
        mv_version = "unknown"
    return CrossCheck(
        rows=checked,
        rewardkit_seconds=rewardkit_seconds,
        math_verify_seconds=sum(r.seconds for r in checked),
        wall_seconds=wall,
        workers=pool_size,
        row_timeout=row_timeout,
        math_verify_version=mv_version,
    )


# --- rich tables ---------------------------------------------------------------------------


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1%}"


def _speed(rows: int, seconds: float) -> str:
    return f"{rows / seconds:,.0f}" if seconds > 0 else "-"


def render_cross_check(console: Console, result: CrossCheck, max_listed: int = 10) -> None:
    """Agreement, speeds, and the first rows where the two scorers disagree."""
    n = len(result.rows)
    counts = result.counts
    table = Table(
        title=f"rewardkit lenient correctness against Math-Verify {result.math_verify_version}"
        f" on {n:,} rows"
    )
    columns = ["both right", "both wrong", "only rewardkit", "only math-verify", "timeout"]
    keys = ["both_right", "both_wrong", "only_rewardkit", "only_math_verify", "timeout"]
    if counts["crashed"]:
        columns.append("crashed")
        keys.append("crashed")
    for column in [*columns, "agreement"]:
        table.add_column(column, justify="right")
    table.add_row(*[f"{counts[k]:,}" for k in keys], _pct(result.agreement), style="bold")
    console.print(table)

    speed = Table(title="Speed on the same rows (one core)")
    speed.add_column("scorer")
    speed.add_column("seconds", justify="right")
    speed.add_column("rows/s", justify="right")
    speed.add_row(
        "rewardkit (lenient correctness)",
        f"{result.rewardkit_seconds:.3f}",
        _speed(n, result.rewardkit_seconds),
    )
    speed.add_row(
        "math-verify (parse gold, parse completion, verify)",
        f"{result.math_verify_seconds:.3f}",
        _speed(n, result.math_verify_seconds),
    )
    console.print(speed)
    console.print(
        f"[dim]Math-Verify ran in {result.workers} worker process(es): {result.wall_seconds:.2f} s"
        f" wall, {_speed(n, result.wall_seconds)} rows/s; a row silent for"
        f" {result.row_timeout:g} s counts as timeout.[/]"
    )

    disagreements = result.disagreements
    if not disagreements:
        return
    detail = Table(
        title=f"{len(disagreements):,} row(s) where they disagree"
        + (f" (first {max_listed})" if len(disagreements) > max_listed else "")
    )
    detail.add_column("line", justify="right")
    show_id = any(row.id is not None for row in disagreements)
    if show_id:
        detail.add_column("id")
    detail.add_column("gold", justify="right")
    detail.add_column("rewardkit")
    detail.add_column("math-verify")
    for row in disagreements[:max_listed]:
        mv = row.status if row.math_verify is None else "right" if row.math_verify else "wrong"
        cells = [str(row.line)]
        if show_id:
            cells.append(escape(str(row.id)))
        cells += [  # answers and ids are the data's text: brackets in them are not markup
            escape(row.gold),
            escape(f"{'right' if row.rewardkit else 'wrong'}: {row.rewardkit_answer}"),
            escape(f"{mv}: {row.math_verify_answer}"),
        ]
        detail.add_row(*cells)
    console.print(detail)
