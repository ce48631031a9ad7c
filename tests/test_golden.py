"""The golden fixtures: the committed expected files hold, and the machinery that checks them.

The first tests compare the rewards with `golden/expected/*.jsonl`; when one fails, it
lists every changed case. If the change is intended, run `rewardkit golden update` and
explain the diff in the commit message.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from rewardkit import extract, numbers, rewards
from rewardkit.golden import (
    DEFAULT_CASES,
    DEFAULT_EXPECTED,
    Change,
    GoldenCase,
    GoldenError,
    GoldenReport,
    check,
    compute,
    diff,
    expected_path,
    load_cases,
    load_expected,
    run_check,
    run_update,
    update,
)
from rewardkit.rewards import REASONS
from rewardkit.schemes import LENIENT, STRICT, SchemeError

BUILT_IN = [STRICT, LENIENT]


def _describe(report: GoldenReport) -> str:
    lines = [f"{r.path} is missing" for r in report.results if r.missing]
    for result in report.results:
        if result.missing:
            continue
        for c in result.changes:
            where = f"{result.scheme.name}: {c.case_id}"
            detail = f" {c.field}: {c.old!r} -> {c.new!r}" if c.kind == "changed" else ""
            lines.append(f"{where} {c.kind}{detail}")
    return "\n".join(lines)


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, color_system=None), out


def _write_cases(path: Path, cases: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(case) + "\n" for case in cases), encoding="utf-8")
    return path


def _forget_cached_results() -> None:
    """Empty the rewards' memo caches, so a patched helper is seen, and later forgotten."""
    for module in (extract, numbers, rewards):
        for value in vars(module).values():
            clear = getattr(value, "cache_clear", None)
            if callable(clear):
                clear()
    # A fresh string evicts any one-entry cache keyed by the identity of the last completion.
    STRICT.score("".join(["<answer>", "reset", "</answer>"]), "0")


@pytest.fixture
def fresh_caches() -> Iterator[None]:
    _forget_cached_results()
    yield
    _forget_cached_results()


SMALL = [
    {"id": "perfect", "completion": "<think>\nx\n</think>\n<answer>\n30\n</answer>\n",
     "answer": "#### 30", "note": "the strict layout"},
    {"id": "commas", "completion": "<answer>\n360,000\n</answer>\n", "answer": "360000",
     "note": "strict_norm drops digit commas"},
    {"id": "dollars", "completion": "The total is $1,234.50.", "answer": "1234.5",
     "note": "lenient fallback"},
]  # fmt: skip


# --- the committed fixtures ------------------------------------------------------------------


def test_committed_fixtures_match_the_rewards() -> None:
    report = check(DEFAULT_CASES, BUILT_IN, DEFAULT_EXPECTED)
    assert report.ok, (
        "the rewards no longer give the committed golden values; if this is intended, run"
        " `rewardkit golden update` and explain the diff in the commit message:\n"
        + _describe(report)
    )


def test_committed_fixtures_reach_every_reason_code() -> None:
    reasons = {
        value
        for scheme in BUILT_IN
        for record in load_expected(expected_path(DEFAULT_EXPECTED, scheme)) or []
        for key, value in record.items()
        if key.endswith("_reason")
    }
    assert set(REASONS) - reasons == set()


def test_committed_cases_are_explained() -> None:
    cases = load_cases(DEFAULT_CASES)
    assert len(cases) >= 170
    assert [c.id for c in cases if len(c.note.split()) < 4] == []


# The worked examples of REWARDS_SPEC.md section 4, copied from the spec (not from the files).
SPEC_TABLE = {
    "spec_example_perfect_completion": (3.5, 3.5),
    "spec_example_bare_answer_tags": (2.5, 3.0),
    "spec_example_close_tag_only": (0.125, 0.125),
    "spec_example_comma_thousands": (2.75, 3.0),
    "spec_example_dollar_decimal_no_tags": (0.0, 2.0),
}


def test_committed_fixtures_hold_the_spec_table() -> None:
    totals = {
        scheme.name: {
            r["id"]: r["total"]
            for r in load_expected(expected_path(DEFAULT_EXPECTED, scheme)) or []
        }
        for scheme in BUILT_IN
    }
    for case_id, (strict, lenient) in SPEC_TABLE.items():
        assert (totals["strict"][case_id], totals["lenient"][case_id]) == (strict, lenient), case_id


# --- diff ------------------------------------------------------------------------------------


def _record(case_id: str, total: float, value: float, reason: str) -> dict[str, object]:
    return {"id": case_id, "scheme": "s", "total": total, "r": value, "r_reason": reason}


def test_diff_reports_a_changed_value_and_its_reason() -> None:
    old = [_record("a", 2.0, 2.0, "ok")]
    new = [_record("a", 0.0, 0.0, "wrong_answer")]
    assert diff(old, new) == [
        Change("a", "changed", "total", 2.0, 0.0),
        Change("a", "changed", "r", 2.0, 0.0),
        Change("a", "changed", "r_reason", "ok", "wrong_answer"),
    ]


def test_diff_reports_a_changed_reason_alone() -> None:
    old = [_record("a", 0.0, 0.0, "no_answer_tag")]
    new = [_record("a", 0.0, 0.0, "unclosed_answer_tag")]
    assert diff(old, new) == [
        Change("a", "changed", "r_reason", "no_answer_tag", "unclosed_answer_tag")
    ]


def test_diff_reports_added_and_removed_cases() -> None:
    old = [_record("kept", 1.0, 1.0, "ok"), _record("gone", 1.0, 1.0, "ok")]
    new = [_record("kept", 1.0, 1.0, "ok"), _record("new", 1.0, 1.0, "ok")]
    assert diff(old, new) == [Change("new", "added"), Change("gone", "removed")]


def test_diff_reports_a_reward_added_to_the_scheme() -> None:
    old = [{"id": "a", "total": 1.0}]
    new = [{"id": "a", "total": 1.0, "extra": 0.5, "extra_reason": "ok"}]
    assert diff(old, new) == [
        Change("a", "changed", "extra", None, 0.5),
        Change("a", "changed", "extra_reason", None, "ok"),
    ]


def test_diff_of_equal_records_is_empty_and_ignores_order() -> None:
    records = compute([GoldenCase(c["id"], c["completion"], c["answer"]) for c in SMALL], STRICT)
    assert diff(records, list(reversed(records))) == []


# --- update, then check ----------------------------------------------------------------------


def test_update_writes_files_that_check_accepts(tmp_path: Path) -> None:
    cases = _write_cases(tmp_path / "cases.jsonl", SMALL)
    expected = tmp_path / "expected"
    first = update(cases, BUILT_IN, expected)
    assert first.written
    assert [r.missing for r in first.results] == [True, True]
    assert check(cases, BUILT_IN, expected).ok

    strict_text = (expected / "strict.jsonl").read_text(encoding="utf-8")
    lines = strict_text.splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["perfect", "commas", "dollars"]
    assert all(list(json.loads(line)) == sorted(json.loads(line)) for line in lines)
    assert '"correctness": 2.0' in lines[0]  # floats as JSON numbers, not strings
    assert json.loads(lines[1])["total"] == 2.75

    # Deterministic: a second update rewrites the same bytes and reports no change.
    second = update(cases, BUILT_IN, expected)
    assert second.changes == () and second.reordered == ()
    assert (expected / "strict.jsonl").read_text(encoding="utf-8") == strict_text
    # Cases reordered: no value changed, but the file follows them, and says so (it said
    # "unchanged" and rewrote the file in the new order)
    _write_cases(cases, list(reversed(SMALL)))
    console = Console(record=True, width=200)
    assert run_update(cases, ["strict", "lenient"], expected, console) == 0
    said = console.export_text()
    assert "strict: 3 cases unchanged in" in said
    assert said.count("(rewritten in the order of the cases file)") == 2
    assert update(cases, BUILT_IN, expected).reordered == ()  # now in that order


def test_update_reports_what_it_changed(tmp_path: Path) -> None:
    cases = _write_cases(tmp_path / "cases.jsonl", SMALL)
    update(cases, BUILT_IN, tmp_path)
    edited = [dict(SMALL[0], answer="#### 31"), *SMALL[1:]]
    _write_cases(cases, edited)

    report = check(cases, BUILT_IN, tmp_path)
    assert not report.ok
    assert Change("perfect", "changed", "correctness", 2.0, 0.0) in report.results[0].changes

    recorded = update(cases, BUILT_IN, tmp_path)
    assert recorded.results[0].changes == report.results[0].changes
    assert check(cases, BUILT_IN, tmp_path).ok


def test_update_replaces_a_damaged_expected_file(tmp_path: Path) -> None:
    cases = _write_cases(tmp_path / "cases.jsonl", SMALL)
    (tmp_path / "strict.jsonl").write_text("{not json\n", encoding="utf-8")
    with pytest.raises(GoldenError, match=r"strict\.jsonl:1: not valid JSON"):
        check(cases, [STRICT], tmp_path)
    update(cases, [STRICT], tmp_path)
    assert check(cases, [STRICT], tmp_path).ok


def test_run_check_prints_the_diff_and_fails(tmp_path: Path) -> None:
    cases = _write_cases(tmp_path / "cases.jsonl", SMALL)
    console, out = _console()
    assert run_update(cases, ["strict", "lenient"], tmp_path, console) == 0
    assert "created" in out.getvalue()

    _write_cases(cases, [dict(SMALL[0], answer="#### 31"), *SMALL[1:]])
    console, out = _console()
    assert run_check(cases, ["strict"], tmp_path, console) == 1
    text = out.getvalue()
    assert "perfect" in text and "the strict layout" in text
    assert "2.0 (ok) -> 0.0 (wrong_answer)" in text
    assert "3.5 -> 1.5" in text
    assert "rewardkit golden update" in text

    console, out = _console()
    assert run_update(cases, ["strict"], tmp_path, console) == 0
    assert "recorded 1 changed case(s)" in out.getvalue()
    console, out = _console()
    assert run_check(cases, ["strict"], tmp_path, console) == 0
    assert "3 cases match" in out.getvalue()
    console, out = _console()
    assert run_check(cases, ["strict", "lenient"], tmp_path, console) == 1  # not re-recorded


def test_run_check_fails_on_a_missing_expected_file(tmp_path: Path) -> None:
    cases = _write_cases(tmp_path / "cases.jsonl", SMALL)
    console, out = _console()
    assert run_check(cases, ["strict"], tmp_path / "nowhere", console) == 1
    text = " ".join(out.getvalue().split())
    assert "strict.jsonl is missing" in text
    assert "rewardkit golden update" in text
    assert not (tmp_path / "nowhere").exists()  # check never writes


def test_run_check_reports_added_and_removed_cases(tmp_path: Path) -> None:
    cases = _write_cases(tmp_path / "cases.jsonl", SMALL[:2])
    update(cases, [LENIENT], tmp_path)
    _write_cases(cases, [SMALL[0], SMALL[2]])
    console, out = _console()
    assert run_check(cases, ["lenient"], tmp_path, console) == 1
    text = out.getvalue()
    assert "new case, total 2.0" in text
    assert "removed, total was 3.0" in text


# --- a user's scheme and cases ---------------------------------------------------------------


def test_user_scheme_with_a_custom_reward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # the scheme loader may append to it
    module = "golden_test_brevity_rewards"
    monkeypatch.delitem(sys.modules, module, raising=False)
    (tmp_path / f"{module}.py").write_text(
        "def brevity(completion, answer):\n"
        "    return (1.0, 'ok') if len(completion) <= 30 else (0.0, 'too_long')\n",
        encoding="utf-8",
    )
    scheme_file = tmp_path / "brief.yaml"
    scheme_file.write_text(
        "name: brief\n"
        "rewards:\n"
        "  - {reward: correctness, variant: lenient, weight: 2.0}\n"
        f"  - {{name: brevity, function: '{module}:brevity', max: 1.0}}\n",
        encoding="utf-8",
    )
    cases = _write_cases(tmp_path / "my_cases.jsonl", SMALL)
    expected = tmp_path / "my_expected"
    console, _ = _console()
    assert run_update(cases, [str(scheme_file)], expected, console) == 0

    records = load_expected(expected / "brief.jsonl")
    assert records is not None
    by_id = {r["id"]: r for r in records}
    assert by_id["commas"] == {
        "id": "commas",
        "scheme": "brief",
        "total": 5.0,
        "correctness": 2.0,
        "correctness_reason": "ok",
        "brevity": 1.0,
        "brevity_reason": "ok",
    }
    assert by_id["perfect"]["brevity_reason"] == "too_long"
    console, _ = _console()
    assert run_check(cases, [str(scheme_file)], expected, console) == 0
    monkeypatch.delitem(sys.modules, module, raising=False)


def test_unknown_scheme_raises_scheme_error(tmp_path: Path) -> None:
    cases = _write_cases(tmp_path / "cases.jsonl", SMALL)
    console, _ = _console()
    with pytest.raises(SchemeError, match="unknown scheme 'relaxed'"):
        run_check(cases, ["relaxed"], tmp_path, console)


# --- bad inputs ------------------------------------------------------------------------------


def test_missing_cases_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.jsonl"
    with pytest.raises(GoldenError, match=r"absent\.jsonl: cases file not found; check the path"):
        load_cases(path)
    console, _ = _console()
    with pytest.raises(GoldenError, match="not found"):
        run_check(path, ["strict"], tmp_path, console)


def test_malformed_json_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    good = json.dumps(SMALL[0])
    path.write_text(f"{good}\n\n{{'id': 'single quotes'}}\n", encoding="utf-8")
    with pytest.raises(GoldenError, match=r"cases\.jsonl:3: not valid JSON .*one JSON object"):
        load_cases(path)


def test_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    path = _write_cases(tmp_path / "cases.jsonl", [SMALL[0], SMALL[1], SMALL[0]])
    with pytest.raises(GoldenError, match=r"cases\.jsonl:3: duplicate id 'perfect' .*line 1"):
        load_cases(path)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"id": "a", "completion": "x"}', r":1: missing key\(s\) answer"),
        ('{"id": "a", "completion": "x", "answer": 5}', r":1: 'answer' must be a string"),
        ('{"id": "a", "completion": "x", "answer": "5", "notes": ""}', r"unknown key\(s\) notes"),
        ('{"id": "has space", "completion": "x", "answer": "5"}', r":1: id 'has space'"),
        ('["a", "x", "5"]', r":1: expected a JSON object, got list"),
    ],
)
def test_bad_case_lines(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(GoldenError, match=message):
        load_cases(path)


def test_empty_cases_file(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(GoldenError, match="holds no cases"):
        load_cases(path)


def test_crlf_cases_file_with_bom_is_read(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    lines = b"".join(json.dumps(c).encode() + b"\r\n" for c in SMALL)
    path.write_bytes(b"\xef\xbb\xbf" + lines)
    assert [c.id for c in load_cases(path)] == ["perfect", "commas", "dollars"]


def test_duplicate_id_in_expected_file(tmp_path: Path) -> None:
    path = tmp_path / "strict.jsonl"
    path.write_text('{"id": "a"}\n{"id": "a"}\n', encoding="utf-8")
    with pytest.raises(GoldenError, match=r"strict\.jsonl:2: duplicate id 'a'.*golden update"):
        load_expected(path)


# --- the golden check catches a real regression ----------------------------------------------


def test_check_catches_a_dropped_comma_normalisation(
    monkeypatch: pytest.MonkeyPatch, fresh_caches: None
) -> None:
    def strict_norm_without_commas(text: str) -> str:
        return text.strip()  # the planted bug: digit-group commas are no longer removed

    monkeypatch.setattr(numbers, "strict_norm", strict_norm_without_commas)
    monkeypatch.setattr(rewards, "strict_norm", strict_norm_without_commas)
    _forget_cached_results()

    report = check(DEFAULT_CASES, BUILT_IN, DEFAULT_EXPECTED)
    strict = report.results[0].changes
    assert Change("spec_example_comma_thousands", "changed", "correctness", 2.0, 0.0) in strict, (
        _describe(report)
    )
    assert {c.case_id for c in strict} >= {
        "norm_list_commas_become_one_number",
        "norm_seven_digits_with_separators",
        "gold_comma_thousands_strict_answer",
    }


def test_a_custom_reward_that_raises_names_the_case() -> None:
    from rewardkit.golden import GoldenCase, GoldenError, compute
    from rewardkit.schemes import Scheme, SchemeReward

    def fussy(completion: str, answer: str) -> float:
        return 1.0 / len(completion)

    scheme = Scheme("fussy", (SchemeReward("fussy", fussy),))
    assert compute([GoldenCase("long", "abcd", "1")], scheme)[0]["fussy"] == 0.25
    with pytest.raises(GoldenError, match="case 'empty', scheme 'fussy': reward 'fussy' raised"):
        compute([GoldenCase("long", "abcd", "1"), GoldenCase("empty", "", "1")], scheme)


def test_the_golden_files_ship_in_the_package() -> None:
    """pyproject maps golden/ to rewardkit/_golden: every file `golden check` reads goes in
    the wheel (an installed copy once pointed at site-packages/golden/, which is not there)."""
    import fnmatch

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    root = Path(__file__).resolve().parent.parent
    setuptools = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert setuptools["package-dir"]["rewardkit._golden"] == "golden"
    data = setuptools["package-data"]
    shipped = {
        "golden" + package.removeprefix("rewardkit._golden").replace(".", "/") + "/" + pattern
        for package, patterns in data.items()
        for pattern in patterns
        if package.startswith("rewardkit._golden")
    }
    needed = [root / "golden" / "cases.jsonl", *sorted((root / "golden/expected").glob("*"))]
    for path in needed:
        relative = path.relative_to(root).as_posix()
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in shipped), relative
    assert {"rewardkit._golden", "rewardkit._golden.expected"} <= set(setuptools["packages"])


def test_update_of_rewardkits_own_values_is_refused_in_an_installed_copy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import rewardkit.golden as golden
    from rewardkit.cli import main

    assert not golden.INSTALLED  # a checkout: golden/ beside the package
    monkeypatch.setattr(golden, "INSTALLED", True)
    assert main(["golden", "update"]) == 2
    assert "--expected DIR" in capsys.readouterr().err
