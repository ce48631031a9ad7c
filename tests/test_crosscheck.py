"""The Math-Verify cross-check: verdicts, agreement, disagreements, timeouts, the CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import time
from multiprocessing import get_all_start_methods
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from rewardkit import cli, crosscheck
from rewardkit.crosscheck import (
    CrossCheckUnavailable,
    check_math_verify,
    cross_check,
    render_cross_check,
    require_math_verify,
)

needs_math_verify = pytest.mark.skipif(
    importlib.util.find_spec("math_verify") is None, reason="math-verify is not installed"
)
# The hang and crash tests patch the worker's function in this process: workers must fork.
needs_fork = pytest.mark.skipif(
    "fork" not in get_all_start_methods(), reason="patched workers need the fork start method"
)

CHAT = Path(__file__).parent / "fixtures" / "readers" / "chat.jsonl"

# (completion, answer, rewardkit lenient, math-verify), one row per case.
CASES: list[tuple[str, str, bool, bool]] = [
    # both right: a GSM8K-style final line and a tagged answer
    ("She has 3 + 4 = 7 apples.\n#### 7", "#### 7", True, True),
    ("<think>\n6 * 4 = 24\n</think>\n<answer>\n24\n</answer>\n", "24", True, True),
    ("So she has 1,100 stickers.", "1100", True, True),
    # both wrong
    ("She has 3 + 5 = 8 apples.\n#### 8", "#### 7", False, False),
    # only rewardkit: Math-Verify ignores <answer> tags and reads an earlier number
    ("60 * 2.5 = 150 miles, then 45 * 2 = 90 miles. <answer>240</answer>", "240", True, False),
    # only Math-Verify: a LaTeX fraction is 0.5; rewardkit reads the last number, 2
    ("Half of it: \\boxed{\\frac{1}{2}}", "0.5", False, True),
]


def case_rows() -> list[tuple[int, dict[str, Any]]]:
    return [
        (line, {"completion": c, "answer": a, "id": f"case-{line}"})
        for line, (c, a, _, _) in enumerate(CASES, 1)
    ]


@needs_math_verify
def test_check_math_verify_reads_and_judges() -> None:
    assert check_math_verify("72", "so the total is 72") == (True, "72")
    assert check_math_verify("72", "no number here") == (False, "(nothing parsed)")
    assert check_math_verify("0.5", "\\boxed{\\frac{1}{2}}") == (True, "\\frac{1}{2}")


@needs_math_verify
def test_a_math_verify_timeout_is_told_apart_from_a_wrong_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import math_verify
    from math_verify.errors import TimeoutException

    def slow(*args: Any, **kwargs: Any) -> bool:
        raise TimeoutException("Operation timed out!")

    monkeypatch.setattr(math_verify, "verify", slow)
    assert check_math_verify("72", "72") == (None, "72")


@needs_math_verify
def test_cross_check_counts_agreement_and_lists_disagreements() -> None:
    result = cross_check(case_rows(), workers=2)
    by_line = {row.line: row for row in result.rows}
    for line, (_, _, rewardkit, math_verify) in enumerate(CASES, 1):
        assert (by_line[line].rewardkit, by_line[line].math_verify) == (rewardkit, math_verify)
    assert result.counts == {
        "both_right": 3,
        "both_wrong": 1,
        "only_rewardkit": 1,
        "only_math_verify": 1,
        "timeout": 0,
        "crashed": 0,
    }
    assert result.agreement == pytest.approx(4 / 6)
    only_rk, only_mv = result.disagreements
    assert (only_rk.line, only_rk.rewardkit_answer, only_rk.math_verify_answer) == (5, "240", "90")
    assert (only_mv.line, only_mv.rewardkit_answer, only_mv.gold) == (6, "2", "0.5")
    assert only_mv.math_verify_answer == "\\frac{1}{2}"
    assert result.rewardkit_seconds > 0 and result.math_verify_seconds > 0


@needs_math_verify
def test_cross_check_dict_is_json_ready() -> None:
    document = cross_check(case_rows(), workers=1).to_dict()
    json.dumps(document, allow_nan=False)
    assert document["rows"] == 6 and document["agreement"] == pytest.approx(4 / 6)
    assert [d["line"] for d in document["disagreements"]] == [5, 6]
    assert document["speed"]["rewardkit_rows_per_s"] > document["speed"]["math_verify_rows_per_s"]


@needs_math_verify
def test_render_shows_agreement_speed_and_disagreements() -> None:
    console = Console(record=True, width=160)
    render_cross_check(console, cross_check(case_rows(), workers=1))
    text = console.export_text()
    for expected in ["both right", "only math-verify", "66.7%", "rows/s", "case-5", "wrong: 90"]:
        assert expected in text


@needs_math_verify
def test_render_shows_ids_and_answers_as_written() -> None:
    """Brackets in the data are text, not rich markup (`[b]` was swallowed, `[/]` crashed)."""
    completion, answer, _, _ = CASES[4]  # only rewardkit right: a listed disagreement
    rows = [(1, {"completion": completion, "answer": answer + " [b][/]", "id": "gsm8k[test]-1"})]
    console = Console(record=True, width=160)
    render_cross_check(console, cross_check(rows, workers=1))
    text = console.export_text()
    assert "gsm8k[test]-1" in text and "[b][/]" in text


def _hangs_on_marker(
    gold_text: str, completion: str, parsing_timeout: int = 5, verify_timeout: int = 5
) -> tuple[bool | None, str]:
    """Stands in for Math-Verify: hangs past any alarm on HANG, dies on CRASH."""
    if "HANG" in completion:
        time.sleep(3600)
    if "CRASH" in completion:
        os._exit(1)
    return completion.strip() == gold_text, completion.strip()


@needs_math_verify
@needs_fork
def test_a_hanging_row_is_a_timeout_and_the_rest_is_scored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(crosscheck, "check_math_verify", _hangs_on_marker)
    rows = [(line, {"completion": str(line), "answer": str(line)}) for line in range(1, 6)]
    rows.insert(2, (99, {"completion": "HANG", "answer": "1"}))
    start = time.monotonic()
    result = cross_check(rows, workers=1, row_timeout=1.0)
    assert time.monotonic() - start < 30
    statuses = {row.line: row.status for row in result.rows}
    assert statuses == {1: "ok", 2: "ok", 99: "timeout", 3: "ok", 4: "ok", 5: "ok"}
    assert result.counts["timeout"] == 1 and result.counts["both_right"] == 5
    hung = next(row for row in result.rows if row.line == 99)
    assert hung.math_verify is None and not hung.agrees


@needs_math_verify
@needs_fork
def test_a_crashing_row_is_counted_and_the_rest_is_scored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(crosscheck, "check_math_verify", _hangs_on_marker)
    rows = [(1, {"completion": "CRASH", "answer": "1"}), (2, {"completion": "2", "answer": "2"})]
    result = cross_check(rows, workers=1, row_timeout=5.0)
    assert [row.status for row in result.rows] == ["crashed", "ok"]
    assert result.counts["crashed"] == 1


def test_missing_math_verify_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "math_verify" else real(name, *a),
    )
    with pytest.raises(CrossCheckUnavailable, match="pip install math-verify"):
        require_math_verify()
    assert cli.main(["score", str(CHAT), "--cross-check", "math-verify"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "pip install math-verify" in err


@needs_math_verify
def test_cli_cross_check_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["score", str(CHAT), "--cross-check", "math-verify", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    check = document["cross_check"]
    assert check["rows"] == 6
    assert check["only_rewardkit"] == 1
    assert check["disagreements"][0]["id"] == "chat-0"


@needs_math_verify
def test_cli_cross_check_tables(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["score", str(CHAT), "--cross-check", "math-verify"]) == 0
    out = capsys.readouterr().out
    assert "against Math-Verify" in out and "Speed on the same rows" in out
    assert "where they disagree" in out
