"""Golden fixtures: every case's rewards recorded once, then checked on every change.

`golden/cases.jsonl` holds hand-written completions, one JSON object a line (``id``,
``completion``, ``answer``, ``note``). `golden/expected/<scheme>.jsonl` holds what each
scheme gave for each case: the total, and every reward's value and reason code.

Recording and checking are separate entry points, as in TRL's invariant tests: `update`
(``rewardkit golden update``) writes the expected files, `check` (``rewardkit golden
check`` and the test suite) only compares. A change in the expected files is a change in
what a reward means, so it is explained in the commit message that makes it.

The module is pure apart from `load_cases`, `check` and `update` (which read and write the
files) and `run_check` and `run_update` (which also print).

>>> case = GoldenCase("bare_answer", "<answer>123</answer>", "123", "spec table row 2")
>>> from rewardkit.schemes import STRICT
>>> record = compute([case], STRICT)[0]
>>> record["total"], record["correctness"], record["format_reason"]
(2.5, 2.0, 'no_think_tag')
>>> diff([record], [{**record, "total": 0.5}])
[Change(case_id='bare_answer', kind='changed', field='total', old=2.5, new=0.5)]
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from rewardkit.schemes import RewardError, Scheme, schemes_of

__all__ = [
    "DEFAULT_CASES",
    "DEFAULT_EXPECTED",
    "INSTALLED",
    "Change",
    "GoldenCase",
    "GoldenError",
    "GoldenReport",
    "SchemeResult",
    "check",
    "compute",
    "diff",
    "expected_path",
    "load_cases",
    "load_expected",
    "run_check",
    "run_update",
    "update",
]

# In a checkout (and an editable install) the files are the repository's golden/, beside
# the package folder; an installed copy carries them as rewardkit/_golden (pyproject.toml).
_CHECKOUT = Path(__file__).resolve().parent.parent / "golden"
INSTALLED = not (_CHECKOUT / "cases.jsonl").is_file()
_HOME = Path(__file__).resolve().parent / "_golden" if INSTALLED else _CHECKOUT
DEFAULT_CASES = _HOME / "cases.jsonl"
DEFAULT_EXPECTED = _HOME / "expected"

_REQUIRED = ("id", "completion", "answer")
_KEYS = frozenset({*_REQUIRED, "note"})
_ID = re.compile(r"[A-Za-z0-9_.:-]+")
_FIXED_FIELDS = frozenset({"id", "scheme", "total"})

Record = dict[str, Any]


class GoldenError(ValueError):
    """A cases or expected file that cannot be used; the message names the file, line and fix."""


@dataclass(frozen=True)
class GoldenCase:
    """One hand-written case: a completion, its reference answer, and why it is there."""

    id: str
    completion: str
    answer: str
    note: str = ""


@dataclass(frozen=True)
class Change:
    """One difference between the expected and the actual records.

    `kind` is ``changed`` (then `field` is a reward name, ``<reward>_reason``, ``total`` or
    ``scheme``, and `old`/`new` its values; None where the field is absent), ``added`` (a
    case with no expected record) or ``removed`` (an expected record with no case).
    """

    case_id: str
    kind: Literal["changed", "added", "removed"]
    field: str | None = None
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class SchemeResult:
    """What one scheme gave on the cases, next to what its expected file holds."""

    scheme: Scheme
    path: Path
    actual: tuple[Record, ...]
    expected: tuple[Record, ...] | None  # None: the expected file did not exist
    changes: tuple[Change, ...]

    @property
    def missing(self) -> bool:
        return self.expected is None


@dataclass(frozen=True)
class GoldenReport:
    """The outcome of `check` or `update`: one `SchemeResult` per scheme."""

    cases_path: Path
    cases: tuple[GoldenCase, ...]
    results: tuple[SchemeResult, ...]
    written: bool  # True for `update`, which rewrote the expected files
    # schemes whose file `update` rewrote with no value changed: lines now in the cases' order
    reordered: tuple[str, ...] = ()

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(change for result in self.results for change in result.changes)

    @property
    def ok(self) -> bool:
        """No change and no missing expected file."""
        return not any(result.changes or result.missing for result in self.results)


# --- reading -------------------------------------------------------------------------------


def _lines(path: Path, what: str, fix: str) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8-sig")  # a BOM from a Windows editor is fine
    except FileNotFoundError:
        raise GoldenError(
            f"{path}: {what} not found; check the path (rewardkit golden --cases FILE)"
        ) from None
    except IsADirectoryError:
        raise GoldenError(f"{path}: is a folder, not a {what}; {fix}") from None
    except UnicodeDecodeError as error:
        line = _line_of_byte(path, error.start)
        raise GoldenError(f"{path}:{line}: not UTF-8 ({error.reason}); save it as UTF-8") from None
    except OSError as error:
        raise GoldenError(f"{path}: cannot read the {what} ({error.strerror})") from None
    # Split on "\n" only: str.splitlines would also split on U+2028 and friends, which may
    # stand unescaped inside a JSON string.
    return [line.removesuffix("\r") for line in text.split("\n")]


def _line_of_byte(path: Path, byte_offset: int) -> int:
    """The 1-based line of `byte_offset` in the file at `path`."""
    with path.open("rb") as handle:
        return handle.read(byte_offset).count(b"\n") + 1


def _json_object(path: Path, number: int, line: str, fix: str) -> dict[str, Any]:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as error:
        raise GoldenError(
            f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno}); {fix}"
        ) from None
    if not isinstance(data, dict):
        raise GoldenError(
            f"{path}:{number}: expected a JSON object, got {type(data).__name__}; {fix}"
        )
    return data


def load_cases(path: str | Path) -> list[GoldenCase]:
    """Read a cases file: one JSON object a line with ``id``, ``completion``, ``answer``
    and an optional ``note``. Blank lines are skipped. Ids must be unique.

    Every problem raises `GoldenError` naming the file, the line and the fix.
    """
    path = Path(path)
    fix = (
        'write one JSON object per line: {"id": ..., "completion": ..., "answer": ..., "note": ...}'
    )
    cases: list[GoldenCase] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(_lines(path, "cases file", fix), 1):
        if not line.strip():
            continue
        data = _json_object(path, number, line, fix)
        where = f"{path}:{number}"
        missing = [key for key in _REQUIRED if key not in data]
        if missing:
            raise GoldenError(f"{where}: missing key(s) {', '.join(missing)}; {fix}")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise GoldenError(
                f"{where}: unknown key(s) {', '.join(unknown)};"
                f" valid keys: {', '.join(sorted(_KEYS))}"
            )
        for key in _KEYS & set(data):
            if not isinstance(data[key], str):
                raise GoldenError(
                    f"{where}: {key!r} must be a string, got {type(data[key]).__name__}"
                )
        case_id = data["id"]
        if not _ID.fullmatch(case_id):
            raise GoldenError(
                f"{where}: id {case_id!r} must be letters, digits and _ . : - only"
                " (a stable name such as comma_thousands_strict_answer)"
            )
        if case_id in seen:
            raise GoldenError(
                f"{where}: duplicate id {case_id!r} (first on line {seen[case_id]});"
                " give each case a distinct id"
            )
        seen[case_id] = number
        cases.append(GoldenCase(case_id, data["completion"], data["answer"], data.get("note", "")))
    if not cases:
        raise GoldenError(f"{path}: the cases file holds no cases; {fix}")
    return cases


def load_expected(path: str | Path) -> list[Record] | None:
    """The records of an expected file, or None when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    fix = "regenerate it with `rewardkit golden update`"
    records: list[Record] = []
    seen: set[str] = set()
    for number, line in enumerate(_lines(path, "expected file", fix), 1):
        if not line.strip():
            continue
        record = _json_object(path, number, line, fix)
        case_id = record.get("id")
        if not isinstance(case_id, str):
            raise GoldenError(f"{path}:{number}: a record without a string `id`; {fix}")
        if case_id in seen:
            raise GoldenError(f"{path}:{number}: duplicate id {case_id!r}; {fix}")
        seen.add(case_id)
        records.append(record)
    return records


# --- computing and comparing (pure) --------------------------------------------------------


def _check_field_names(scheme: Scheme) -> None:
    names = scheme.reward_names
    fields = [*names, *(f"{name}_reason" for name in names)]
    clashes = sorted({f for f in fields if f in _FIXED_FIELDS or fields.count(f) > 1})
    if clashes:
        raise GoldenError(
            f"scheme {scheme.name!r} ({scheme.source}): reward name(s) clash with the golden"
            f" record field(s) {', '.join(clashes)}; rename those rewards in the scheme"
        )


def compute(cases: Iterable[GoldenCase], scheme: Scheme) -> list[Record]:
    """One record per case: id, scheme, total, and each reward's value and reason.

    The reward names come from `scheme`, so a user's scheme with custom rewards works too.

    >>> from rewardkit.schemes import LENIENT
    >>> compute([GoldenCase("x", "The total is $1,234.50.", "1234.5")], LENIENT)[0]
    ... # doctest: +NORMALIZE_WHITESPACE
    {'id': 'x', 'scheme': 'lenient', 'total': 2.0, 'correctness': 2.0,
     'correctness_reason': 'ok', 'digit': 0.0, 'digit_reason': 'no_answer_tag',
     'format': 0.0, 'format_reason': 'no_answer_pair', 'mark': 0.0,
     'mark_reason': 'no_think_tag'}
    """
    _check_field_names(scheme)
    records: list[Record] = []
    for case in cases:
        try:
            scores = scheme.score(case.completion, case.answer)
            total = scheme.total(scores)  # inf would not go into the JSON file
        except RewardError as error:
            message = str(error).removeprefix(f"scheme {scheme.name!r}: ")  # said once
            raise GoldenError(f"case {case.id!r}, scheme {scheme.name!r}: {message}") from None
        record: Record = {"id": case.id, "scheme": scheme.name, "total": total}
        for name, reward in scores.items():
            record[name] = reward.value
            record[f"{name}_reason"] = reward.reason
        records.append(record)
    return records


def diff(
    expected: Sequence[Mapping[str, Any]], actual: Sequence[Mapping[str, Any]]
) -> list[Change]:
    """What changed from `expected` to `actual`, matched by case id.

    Changes come in the order of `actual` (fields in each record's order), then the removed
    cases in the order of `expected`.

    >>> old = [{"id": "a", "total": 1.0}, {"id": "b", "total": 2.0}]
    >>> new = [{"id": "a", "total": 1.5}, {"id": "c", "total": 0.0}]
    >>> for change in diff(old, new):
    ...     print(change.case_id, change.kind, change.field, change.old, change.new)
    a changed total 1.0 1.5
    c added None None None
    b removed None None None
    """
    by_id = {record["id"]: record for record in expected}
    current = {record["id"] for record in actual}
    changes: list[Change] = []
    for record in actual:
        case_id = record["id"]
        old = by_id.get(case_id)
        if old is None:
            changes.append(Change(case_id, "added"))
            continue
        fields = [*record, *sorted(set(old) - set(record))]
        for field in fields:
            if field == "id":
                continue
            before, after = old.get(field), record.get(field)
            if before != after:  # floats compare exactly: the rewards are deterministic
                changes.append(Change(case_id, "changed", field, before, after))
    changes.extend(
        Change(record["id"], "removed") for record in expected if record["id"] not in current
    )
    return changes


def expected_path(expected_dir: str | Path, scheme: Scheme) -> Path:
    """Where the expected records of `scheme` live: ``<expected_dir>/<scheme.name>.jsonl``.

    >>> from rewardkit.schemes import LENIENT
    >>> expected_path("golden/expected", LENIENT).as_posix()
    'golden/expected/lenient.jsonl'
    """
    name = scheme.name
    if not name or name in {".", ".."} or "/" in name or "\\" in name:
        raise GoldenError(
            f"scheme name {name!r} ({scheme.source}) cannot name a file;"
            " set `name:` in the scheme file to a plain name such as my_scheme"
        )
    return Path(expected_dir) / f"{name}.jsonl"


def _dumps(records: Iterable[Mapping[str, Any]]) -> str:
    """The expected file's text: sorted keys, one record a line, "\\n" line endings."""
    return "".join(
        json.dumps(record, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
        for record in records
    )


# --- the two entry points ------------------------------------------------------------------


def _results(
    cases: Sequence[GoldenCase],
    schemes: Sequence[Scheme],
    expected_dir: Path,
    replace_unreadable: bool = False,
) -> list[SchemeResult]:
    results: list[SchemeResult] = []
    for scheme in schemes_of(schemes):  # two of one name would share their expected file
        path = expected_path(expected_dir, scheme)
        actual = compute(cases, scheme)
        try:
            expected = load_expected(path)
        except GoldenError:
            if not replace_unreadable:
                raise
            expected = None  # `update` rewrites a damaged file as if it were new
        changes = diff(expected or [], actual)
        results.append(
            SchemeResult(
                scheme,
                path,
                tuple(actual),
                None if expected is None else tuple(expected),
                tuple(changes),
            )
        )
    return results


def check(
    cases_path: str | Path, schemes: Sequence[Scheme], expected_dir: str | Path
) -> GoldenReport:
    """Score the cases with each scheme and compare with the expected files. Writes nothing."""
    cases_path = Path(cases_path)
    cases = load_cases(cases_path)
    results = _results(cases, schemes, Path(expected_dir))
    return GoldenReport(cases_path, tuple(cases), tuple(results), written=False)


def update(
    cases_path: str | Path, schemes: Sequence[Scheme], expected_dir: str | Path
) -> GoldenReport:
    """Score the cases with each scheme and rewrite the expected files; report the changes.

    The files are written deterministically (sorted keys, one line per case in the order of
    the cases file, floats as JSON numbers) and atomically (a temporary file then a rename).
    An expected file that cannot be read is replaced, as if it were missing.
    """
    cases_path = Path(cases_path)
    cases = load_cases(cases_path)
    expected_dir = Path(expected_dir)
    results = _results(cases, schemes, expected_dir, replace_unreadable=True)
    expected_dir.mkdir(parents=True, exist_ok=True)
    reordered = []
    for result in results:
        text = _dumps(result.actual)
        if not (result.changes or result.missing) and _text_of(result.path) != text:
            reordered.append(result.scheme.name)
        _write(result.path, text)
    return GoldenReport(
        cases_path, tuple(cases), tuple(results), written=True, reordered=tuple(reordered)
    )


def _text_of(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def _write(path: Path, text: str) -> None:
    # A temporary file beside the target, then a rename: a crash never leaves half a file.
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with temporary.open("w", encoding="utf-8", newline="\n") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# --- printing ------------------------------------------------------------------------------


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it lies under it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _value(record: Mapping[str, Any] | None, field: str) -> str:
    if record is None or field not in record:
        return "-"
    reason = record.get(f"{field}_reason")
    return f"{record[field]} ({reason})" if reason is not None else str(record[field])


def _changed_fields(result: SchemeResult) -> dict[str, list[str]]:
    """For each changed case (in order): the rewards and other fields to show for it.

    A reward's value and reason are shown together; ``total`` comes after the rewards.
    """
    rewards = result.scheme.reward_names
    touched: dict[str, set[str]] = {}
    for change in result.changes:
        fields = touched.setdefault(change.case_id, set())
        if change.kind == "changed" and change.field is not None:
            base = change.field.removesuffix("_reason")
            fields.add(base if base in rewards else change.field)
        else:
            fields.add(change.kind)
    order = [*rewards, "total"]
    return {
        case_id: [f for f in order if f in fields] + sorted(fields - set(order))
        for case_id, fields in touched.items()
    }


def _table(result: SchemeResult, notes: Mapping[str, str]) -> Table:
    scheme = result.scheme
    rows = _changed_fields(result)
    table = Table(
        title=f"{scheme.name} ({scheme.source}): {len(rows)} case(s) changed"
        f" against {_shown(result.path)}",
        title_justify="left",
    )
    table.add_column("case", overflow="fold")
    table.add_column("note", ratio=1)
    table.add_column("reward")
    table.add_column("expected -> actual", overflow="fold")
    expected = {record["id"]: record for record in result.expected or ()}
    actual = {record["id"]: record for record in result.actual}
    for case_id, fields in rows.items():
        old, new = expected.get(case_id), actual.get(case_id)
        for index, field in enumerate(fields):
            if field == "added":
                name, shown = "(case)", Text(f"new case, total {_value(new, 'total')}", "green")
            elif field == "removed":
                name, shown = "(case)", Text(f"removed, total was {_value(old, 'total')}", "red")
            else:
                name = field
                shown = Text.assemble(
                    (_value(old, field), "red"), " -> ", (_value(new, field), "green")
                )
            first = index == 0
            table.add_row(
                Text(case_id if first else ""),
                Text(notes.get(case_id, "") if first else ""),
                Text(name),
                shown,
                end_section=index == len(fields) - 1,
            )
    return table


def _cases(count: int) -> str:
    return f"{count} case" if count == 1 else f"{count} cases"


def _print(report: GoldenReport, console: Console, verb: str) -> None:
    notes = {case.id: case.note for case in report.cases}
    for result in report.results:
        name, where = result.scheme.name, _shown(result.path)
        if result.missing:
            if report.written:
                console.print(
                    f"{name}: created {where} with {_cases(len(result.actual))}", markup=False
                )
            else:
                console.print(
                    Text(
                        f"{name}: {where} is missing; run `rewardkit golden update` to record it",
                        style="bold red",
                    )
                )
        elif result.changes:
            console.print(_table(result, notes))
            if report.written:
                cases = len({change.case_id for change in result.changes})
                console.print(f"{name}: recorded {cases} changed case(s) in {where}", markup=False)
        else:
            again = (
                " (rewritten in the order of the cases file)" if name in report.reordered else ""
            )
            console.print(
                f"{name}: {_cases(len(result.actual))} {verb} {where}{again}", markup=False
            )


def run_check(
    cases_path: str | Path,
    scheme_specs: Sequence[str],
    expected_dir: str | Path,
    console: Console,
) -> int:
    """``rewardkit golden check``: print the differences; 1 if any (or a missing file), else 0.

    `scheme_specs` are scheme names or scheme file paths (see `rewardkit.schemes.get_scheme`).
    A bad cases file raises `GoldenError` and a bad scheme `SchemeError`.
    """
    report = check(cases_path, schemes_of(scheme_specs), expected_dir)
    _print(report, console, "match")
    if report.ok:
        return 0
    changed = sum(len({c.case_id for c in r.changes}) for r in report.results if not r.missing)
    missing = sum(r.missing for r in report.results)
    problems = [f"{changed} changed case(s)"] if changed else []
    problems += [f"{missing} missing expected file(s)"] if missing else []
    console.print(
        Text(
            f"golden check failed: {' and '.join(problems)}. If this is intended, run"
            " `rewardkit golden update` (with the same --scheme, --cases and --expected)"
            " and explain the diff in the commit message.",
            style="bold red",
        )
    )
    return 1


def run_update(
    cases_path: str | Path,
    scheme_specs: Sequence[str],
    expected_dir: str | Path,
    console: Console,
) -> int:
    """``rewardkit golden update``: rewrite the expected files, print what changed; 0."""
    report = update(cases_path, schemes_of(scheme_specs), expected_dir)
    _print(report, console, "unchanged in")
    if any(r.changes and not r.missing for r in report.results):
        console.print("Explain these changes in the commit message.")
    return 0
