"""The scoring engine: the long frame, workers, and bad input that never loses a line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rewardkit.schemes import LENIENT, STRICT
from rewardkit.score import InputError, Keys, score_file, score_records, score_rows

WELL_FORMED = "<think>\n6 * 4 = 24\n</think>\n<answer>\n24\n</answer>\n"


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def rows_for(n: int) -> list[dict[str, Any]]:
    kinds = [WELL_FORMED, "<answer>24</answer>", "The answer is 24.", "<answer> 2,4", "x"]
    return [
        {"id": f"r{i}", "prompt_id": f"p{i // 4}", "completion": kinds[i % 5], "answer": "#### 24"}
        for i in range(n)
    ]


# --- the frame -------------------------------------------------------------------------------


def test_long_form_one_row_per_line_per_scheme(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", rows_for(10))
    result = score_file(path, [STRICT, LENIENT])
    frame = result.frame
    assert len(frame) == 20
    assert list(frame["line"][:4]) == [1, 1, 2, 2]
    assert list(frame["scheme"][:2]) == ["strict", "lenient"]
    assert list(frame.columns[:4]) == ["line", "scheme", "id", "group"]
    for name in ["correctness", "digit", "format", "mark", "total"]:
        assert frame[name].dtype == "float64"
        assert f"{name}_reason" in frame.columns or name == "total"
    first = frame.iloc[0]
    assert (first["total"], first["format_reason"]) == (3.5, "ok")


def test_total_is_weighted_sum(tmp_path: Path) -> None:
    frame = score_file(write_jsonl(tmp_path / "a.jsonl", rows_for(25)), [STRICT, LENIENT]).frame
    parts = frame[["correctness", "digit", "format", "mark"]].sum(axis=1)
    assert (parts - frame["total"]).abs().max() == 0


def test_workers_give_the_same_frame_in_input_order(tmp_path: Path, monkeypatch: Any) -> None:
    import rewardkit.score as score_module

    monkeypatch.setattr(score_module, "_PARALLEL_MIN_BYTES", 0)
    path = write_jsonl(tmp_path / "a.jsonl", rows_for(503))
    one = score_file(path, [STRICT, LENIENT], workers=1).frame
    two = score_file(path, [STRICT, LENIENT], workers=2).frame
    pd.testing.assert_frame_equal(one, two)
    assert list(two["line"]) == sorted(two["line"])


def length_penalty(completion: str, answer: str) -> float:
    return -len(completion) / 1000


def test_workers_score_custom_rewards_beside_builtin_ones(tmp_path: Path, monkeypatch: Any) -> None:
    """A chunk scored in a worker comes back without its (unpicklable) wrapped functions."""
    import rewardkit.score as score_module
    from rewardkit.schemes import Scheme, SchemeReward

    monkeypatch.setattr(score_module, "_PARALLEL_MIN_BYTES", 0)
    custom = Scheme(
        "mine",
        (
            STRICT.rewards[0],
            SchemeReward("length", length_penalty, weight=2.0),
            LENIENT.rewards[3],
        ),
    )
    path = write_jsonl(tmp_path / "a.jsonl", rows_for(203))
    one = score_file(path, [custom, LENIENT], workers=1).frame
    two = score_file(path, [custom, LENIENT], workers=2).frame
    pd.testing.assert_frame_equal(one, two)
    mine = one[one["scheme"] == "mine"]
    assert list(mine["length"][:2]) == [
        -len(WELL_FORMED) / 1000,
        -len("<answer>24</answer>") / 1000,
    ]
    assert (
        mine["total"] - mine["correctness"] - 2 * mine["length"] - mine["mark"]
    ).abs().max() < 1e-12


def test_groups_default_to_prompt_id_then_prompt(tmp_path: Path) -> None:
    rows = [{"prompt": "q1", "completion": "1", "answer": "1"}] * 2 + [
        {"prompt": "q2", "completion": "1", "answer": "1"}
    ]
    frame = score_file(write_jsonl(tmp_path / "a.jsonl", rows), [STRICT]).frame
    assert frame["group"].nunique() == 2
    assert frame["group"].iloc[0] == frame["group"].iloc[1]


def test_custom_keys_and_chat_completions(tmp_path: Path) -> None:
    rows = [
        {
            "uid": 7,
            "q": "a",
            "response": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "<answer>5</answer>"},
            ],
            "gold": 5,
        }
    ]
    keys = Keys(completion="response", answer="gold", id="uid", group="q")
    frame = score_file(write_jsonl(tmp_path / "a.jsonl", rows), [STRICT], keys).frame
    assert frame["correctness"].iloc[0] == 2.0
    assert frame["id"].iloc[0] == "7"
    assert frame["group"].iloc[0] == "a"


def test_score_records_matches_score_file(tmp_path: Path) -> None:
    rows = rows_for(12)
    from_file = score_file(write_jsonl(tmp_path / "a.jsonl", rows), [STRICT, LENIENT]).frame
    pd.testing.assert_frame_equal(from_file, score_records(rows, [STRICT, LENIENT]))


def test_blocks_of_lines_score_as_each_line_alone(tmp_path: Path) -> None:
    # Lines are read and scored in blocks (of 64); rows across and at the edges of blocks,
    # blank and bad lines among them, get what the scheme gives each row by itself.
    kinds = [WELL_FORMED, "<answer>24</answer>", "The answer is 24.", "<answer> 2,4", "x", "24"]
    rows = [
        {"completion": kinds[(i * 7) % 6] + " " * (i % 3), "answer": str(20 + i % 9)}
        for i in range(300)
    ]
    lines = [json.dumps(r) for r in rows]
    for index in (0, 63, 64, 65, 128, 299):
        lines[index] = "" if index % 2 else "{broken"
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(lines) + "\n")
    frame = score_file(path, [STRICT, LENIENT], workers=1, on_error="skip").frame
    expected_lines = [i + 1 for i in range(300) if i not in (0, 63, 64, 65, 128, 299)]
    for scheme in (STRICT, LENIENT):
        part = frame[frame["scheme"] == scheme.name]
        assert list(part["line"]) == expected_lines
        for (_, row), line in zip(part.iterrows(), expected_lines, strict=True):
            record = rows[line - 1]
            alone = scheme.score(record["completion"], record["answer"])
            assert {name: (row[name], row[f"{name}_reason"]) for name in alone} == {
                name: (reward.value, reward.reason) for name, reward in alone.items()
            }


# --- bad input: a clear error naming file, line and fix; nothing lost with skip --------------

BAD_LINES = [
    # (raw line, error code, words the message must contain)
    (b'{"completion": "1", "answer": ', "invalid_json", "not valid JSON"),
    (b'{"answer": "1"}', "missing_completion", "--completion-key"),
    (b'{"completion": "1"}', "missing_answer", "--answer-key"),
    (b'{"completion": "1", "gold": "1"}', "missing_answer", "pass --answer-key gold"),
    (b'{"response": "1", "answer": "1"}', "missing_completion", "pass --completion-key response"),
    (b'{"completion": 5, "answer": "1"}', "completion_not_text", "not text"),
    (b'{"completion": null, "answer": "1"}', "completion_not_text", "not text"),
    (b'{"completion": "1", "answer": null}', "missing_answer", "no ground truth"),
    (b'{"completion": "1", "answer": [1]}', "answer_not_text", "--answer-key"),
    (b'["completion", "answer"]', "not_an_object", "one JSON object per line"),
    (b'{"completion": "caf\xe9", "answer": "1"}', "invalid_utf8", "UTF-8"),
    (
        b'{"completion": [{"role": "user", "content": "q"}], "answer": "1"}',
        "no_assistant_message",
        "assistant",
    ),
]


@pytest.mark.parametrize(("raw", "code", "words"), BAD_LINES)
def test_bad_line_names_file_line_and_fix(
    tmp_path: Path, raw: bytes, code: str, words: str
) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"completion": "<answer>1</answer>", "answer": "1"}).encode()
    path.write_bytes(good + b"\n" + raw + b"\n" + good + b"\n")
    with pytest.raises(InputError) as error:
        score_file(path, [STRICT])
    assert error.value.line == 2
    assert error.value.code == code
    assert str(path) in str(error.value) and "line 2" in str(error.value)
    assert words in str(error.value)
    result = score_file(path, [STRICT], on_error="skip")
    assert list(result.frame["line"]) == [1, 3]
    assert [(s.line, s.code) for s in result.skipped] == [(2, code)]


def test_skip_keeps_every_good_line_across_workers(tmp_path: Path, monkeypatch: Any) -> None:
    import rewardkit.score as score_module

    monkeypatch.setattr(score_module, "_PARALLEL_MIN_BYTES", 0)
    lines = [json.dumps(r) for r in rows_for(400)]
    bad = {17, 150, 151, 399}
    for index in bad:
        lines[index - 1] = "{broken"
    path = tmp_path / "a.jsonl"
    path.write_text("\n".join(lines) + "\n")
    result = score_file(path, [STRICT], workers=2, on_error="skip")
    assert sorted(s.line for s in result.skipped) == sorted(bad)
    assert set(result.frame["line"]) == set(range(1, 401)) - bad
    with pytest.raises(InputError) as error:
        score_file(path, [STRICT], workers=2)
    assert error.value.line == 17  # the first bad line, whichever worker saw it


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        score_file(path, [STRICT])
    path.write_bytes(b"\n\n  \n")
    with pytest.raises(InputError, match="only blank lines"):
        score_file(path, [STRICT], on_error="skip")


def test_blank_lines_are_counted_not_scored(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"completion": "1", "answer": "1"}\n\n{"completion": "2", "answer": "2"}\n')
    result = score_file(path, [STRICT])
    assert result.blank_lines == 1
    assert list(result.frame["line"]) == [1, 3]


def test_bom_is_an_error_unless_skipping(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"completion": "<answer>1</answer>", "answer": "1"}\n')
    with pytest.raises(InputError, match="byte-order mark") as error:
        score_file(path, [STRICT])
    assert error.value.line == 1
    result = score_file(path, [STRICT], on_error="skip")
    assert len(result.frame) == 1 and not result.skipped  # read past it; nothing lost
    assert "byte-order mark" in result.warnings[0]


def test_line_over_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    huge = json.dumps({"completion": "7" * 10_000_000, "answer": "7"})
    path.write_text(json.dumps({"completion": "1", "answer": "1"}) + "\n" + huge + "\n")
    with pytest.raises(InputError, match="--max-line-bytes") as error:
        score_file(path, [STRICT])
    assert error.value.line == 2
    result = score_file(path, [STRICT], on_error="skip")
    assert [s.line for s in result.skipped] == [2]
    raised = score_file(path, [STRICT], max_line_bytes=20_000_000)
    assert list(raised.frame["line"]) == [1, 2]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        score_file(tmp_path / "nope.jsonl", [STRICT])
    with pytest.raises(InputError, match="directory"):
        score_file(tmp_path, [STRICT])


def test_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"completion": "1", "answer": "1"}\n{"completion": "2", "answer": "2"}')
    assert list(score_file(path, [STRICT]).frame["line"]) == [1, 2]


def test_score_rows_carries_reader_errors() -> None:
    bad = InputError("x.parquet", 2, "invalid_row", "row 2 has no text")
    rows = [
        (1, {"completion": "1", "answer": "1"}),
        (2, bad),
        (3, {"completion": "3", "answer": "3"}),
    ]
    with pytest.raises(InputError, match="row 2 has no text"):
        score_rows(rows, [STRICT], source="x.parquet")
    result = score_rows(rows, [STRICT], source="x.parquet", on_error="skip")
    assert list(result.frame["line"]) == [1, 3]
    assert result.skipped[0].code == "invalid_row"


def test_custom_reward_returning_garbage_is_an_error_naming_the_line(tmp_path: Path) -> None:
    from rewardkit.schemes import Scheme, SchemeReward

    scheme = Scheme("bad", (SchemeReward("oops", lambda c, a: "high"),))  # type: ignore[arg-type, return-value]
    with pytest.raises(
        InputError, match=r"line 1: reward 'oops' returned 'high' \(str\)"
    ) as caught:
        score_records([{"completion": "1", "answer": "1"}], [scheme])
    assert caught.value.code == "reward_error"


def test_custom_reward_checks_apply_to_returned_rewards_too() -> None:
    from rewardkit.rewards import Reward
    from rewardkit.schemes import Scheme, SchemeReward

    nan = Scheme("nan", (SchemeReward("r", lambda c, a: Reward(float("nan"), "ok")),))
    with pytest.raises(InputError, match="finite"):
        score_records([{"completion": "1", "answer": "1"}], [nan])
    over = Scheme("over", (SchemeReward("r", lambda c, a: 5.0, max=0.5),))
    with pytest.raises(InputError, match=r"above its declared max 0\.5"):
        score_records([{"completion": "1", "answer": "1"}], [over])


def picky(completion: str, answer: str) -> float:
    if "24" in completion:
        raise KeyError("24")
    return 1.0


@pytest.mark.parametrize("workers", [1, 2])
def test_a_custom_reward_that_raises_stops_at_its_line_or_skips_it(
    tmp_path: Path, monkeypatch: Any, workers: int
) -> None:
    """Without skip: the first failing line, with the reward, the exception and where it
    was raised. With skip: every other line scored under every scheme, each failure listed."""
    import rewardkit.score as score_module
    from rewardkit.schemes import Scheme, SchemeReward

    monkeypatch.setattr(score_module, "_PARALLEL_MIN_BYTES", 0)
    rows = rows_for(203)
    rows[150] = {"completion": "not json, then", "answer": "1"}
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    lines = path.read_text().splitlines()
    lines[150] = "{not json"
    path.write_text("\n".join(lines) + "\n")
    failing = [i + 1 for i, r in enumerate(rows) if "24" in r["completion"] and i != 150]
    scheme = Scheme("picky", (STRICT.rewards[0], SchemeReward("picky", picky)))
    with pytest.raises(InputError) as caught:
        score_file(path, [scheme, LENIENT], workers=workers)
    assert caught.value.line == failing[0] and caught.value.code == "reward_error"
    assert "reward 'picky' raised KeyError: '24' (at " in str(caught.value)
    assert f"test_score.py:{picky.__code__.co_firstlineno + 2})" in str(caught.value)

    result = score_file(path, [scheme, LENIENT], workers=workers, on_error="skip")
    skipped = {s.line: s.code for s in result.skipped}
    assert skipped == {151: "invalid_json", **dict.fromkeys(failing, "reward_error")}
    assert [s.line for s in result.skipped] == sorted(skipped)
    scored = set(result.frame["line"])
    assert scored == set(range(1, 204)) - set(skipped)
    assert (result.frame.groupby("line")["scheme"].count() == 2).all()  # both schemes, per line


@pytest.mark.parametrize("name", ["line", "group", "id", "scheme", "total", "format_reason"])
def test_reward_names_cannot_overwrite_columns(name: str) -> None:
    from rewardkit.schemes import Scheme, SchemeError, SchemeReward

    with pytest.raises(SchemeError, match="would overwrite a column"):
        Scheme("s", (SchemeReward(name, lambda c, a: 1.0),))


def test_pass_at_1_is_the_mean_correctness_of_samples() -> None:
    from rewardkit.report import pass_at_k_table

    rows = [{"prompt_id": "a", "completion": "<answer>1</answer>", "answer": "1"}] * 4 + [
        {"prompt_id": "b", "completion": "<answer>2</answer>", "answer": "1"}
    ] * 2
    table = pass_at_k_table(score_records(rows, [STRICT]), [STRICT], [1, 4])
    values = dict(zip(table["k"], table["pass_at_k"], strict=True))
    assert values[1] == pytest.approx(4 / 6)
    assert values[4] == 1.0  # only group a has 4 samples
    assert list(table["groups"]) == [2, 1]


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}\n',
        '{"a": 1}',
        '  {"a": [1, 2.5, null, "é"]}\n',
        '{"a": 1}\r\n',
        '{"a": 1} \t \n',
        '{"a": 1} x\n',
        '{"a": 1}\x0c\n',
        '{"a": 1}{"b": 2}\n',
        "[1]\n",
        '"text"\n',
        "NaN\n",
        "",
        "\n",
        "{",
        '{"a": }\n',
        '{"a": 1,}\n',
    ],
)
def test_line_parser_is_json_loads(text: str) -> None:
    """The scanner-first parser gives json.loads' value, or its error word for word."""
    from rewardkit.score import _loads

    try:
        expected = json.loads(text)
    except json.JSONDecodeError as error:
        with pytest.raises(json.JSONDecodeError) as caught:
            _loads(text)
        assert (caught.value.msg, caught.value.pos) == (error.msg, error.pos)
        return
    assert json.dumps(_loads(text)) == json.dumps(expected)  # NaN is not equal to itself


# --- what a pipeline hands the Python API ----------------------------------------------------


def test_workers_take_a_scheme_of_lambdas(tmp_path: Path, monkeypatch: Any) -> None:
    # With fork the workers inherit the scheme; a chunk coming back pickled it again, so a
    # lambda or nested function (which cannot pickle) failed every file of 4 MiB or more.
    import rewardkit.score as score_module
    from rewardkit.schemes import Scheme, SchemeReward

    monkeypatch.setattr(score_module, "_PARALLEL_MIN_BYTES", 0)
    short = Scheme("short", (SchemeReward("short", lambda c, a: float(len(c) < 30), max=1),))
    path = write_jsonl(tmp_path / "a.jsonl", rows_for(203))
    two = score_file(path, [short], workers=2).frame
    pd.testing.assert_frame_equal(two, score_file(path, [short], workers=1).frame)
    assert two["short"].tolist()[:2] == [0.0, 1.0]


def test_a_lone_surrogate_in_an_id_or_prompt_is_kept_as_its_escape(tmp_path: Path) -> None:
    # json reads "\ud800" as a lone surrogate, which is no UTF-8: Arrow and the prompt's
    # digest refused it with a traceback, also under on_error="skip"
    lines = [
        '{"completion": "<answer>5</answer>", "answer": "5", "prompt": "q\\ud800", "id": "a"}',
        '{"completion": "<answer>5</answer>", "answer": "5", "prompt": "q\\ud800", "id": "b"}',
        '{"completion": "<answer>5</answer>", "answer": "5", "prompt_id": "p\\udc00", "id":'
        ' "c\\ud83d"}',
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    frame = score_file(path, [STRICT]).frame
    assert frame["id"].tolist() == ["a", "b", "c\\ud83d"]
    groups = frame["group"].tolist()
    assert groups[0] == groups[1] != groups[2] == "p\\udc00"


def test_an_integer_too_long_for_python_is_a_bad_line(tmp_path: Path) -> None:
    big = "9" * 5000  # Python writes out or reads at most 4,300 digits
    path = tmp_path / "big.jsonl"
    good = '{"completion": "x", "answer": "1"}'
    path.write_text(f'{good}\n{{"completion": "x", "answer": "1", "id": {big}}}\n')
    with pytest.raises(InputError, match=r"line 2: not readable JSON \(Exceeds the limit"):
        score_file(path, [STRICT])
    assert score_file(path, [STRICT], on_error="skip").rows_scored == 1
    with pytest.raises(InputError, match=r"'answer' is an integer too long to write out"):
        score_records([{"completion": "x", "answer": 10**5000}], [STRICT])
    with pytest.raises(InputError, match=r"line 1: a row's id or group value \(int\) has no"):
        score_records([{"completion": "x", "answer": "1", "id": 10**5000}], [STRICT])


def test_a_data_frames_missing_cells_are_no_value() -> None:
    import numpy as np

    frame = pd.DataFrame(
        {
            "completion": ["<answer>5</answer>"] * 4,
            "answer": ["5"] * 4,
            "prompt_id": [np.nan, np.nan, 2.0, 2.0],
            "id": pd.array([pd.NA, "b", pd.NA, "d"], dtype="string"),
        }
    )
    scored = score_records(frame.to_dict("records"), [STRICT])
    # NaN is no group (not one group "NaN" of every row without one), NA no id
    assert scored["group"][:2].isna().all()
    assert scored["group"].tolist()[2:] == ["2.0", "2.0"]
    assert scored["id"].isna().tolist() == [True, False, True, False]
    numpy_ids = [{"completion": "x", "answer": "1", "prompt_id": np.int64(3)}]
    assert score_records(numpy_ids, [STRICT])["group"].tolist() == ["3"]
    with pytest.raises(InputError, match="'answer' is null: the row has no ground truth"):
        score_records([{"completion": "x", "answer": pd.NA}], [STRICT])


def test_input_errors_survive_a_process_pool(tmp_path: Path) -> None:
    import pickle

    error = InputError("f.jsonl", 2, "invalid_json", "not valid JSON")
    again = pickle.loads(pickle.dumps(error))
    assert (again.path, again.line, again.code, again.message, str(again)) == (
        "f.jsonl",
        2,
        "invalid_json",
        "not valid JSON",
        "f.jsonl, line 2: not valid JSON",
    )


def test_no_records_score_to_an_empty_frame() -> None:
    empty = score_records([], [STRICT, LENIENT])
    assert len(empty) == 0
    assert {"line", "scheme", "correctness", "total", "format_reason"} <= set(empty.columns)
    assert len(score_records(iter([]), ["strict"])) == 0


def test_schemes_may_be_named_and_are_checked() -> None:
    from rewardkit.schemes import SchemeError

    rows = rows_for(2)
    by_name = score_records(rows, ["strict", "lenient"])
    pd.testing.assert_frame_equal(by_name, score_records(rows, [STRICT, LENIENT]))
    pd.testing.assert_frame_equal(score_records(rows, STRICT), score_records(rows, [STRICT]))
    with pytest.raises(SchemeError, match="two schemes are both called 'strict'"):
        score_records(rows, [STRICT, STRICT])
    with pytest.raises(SchemeError, match="no scheme given"):
        score_records(rows, [])
    with pytest.raises(SchemeError, match=r"42 \(int\) is not a scheme"):
        score_records(rows, [42])  # type: ignore[list-item]


def test_summarize_names_a_scheme_the_frame_was_not_scored_with() -> None:
    from rewardkit.report import summarize

    frame = score_records(rows_for(4), [STRICT])
    with pytest.raises(
        ValueError, match=r"no rows of the scheme\(s\) lenient \(it holds: strict\)"
    ):
        summarize(frame, [STRICT, LENIENT])
    assert summarize(frame, "strict").rows == 4


def test_a_reward_called_directly_reads_a_numeric_gold_as_score_does() -> None:
    from types import MappingProxyType

    import numpy as np

    from rewardkit.rewards import correctness_lenient, correctness_strict

    assert correctness_lenient("<answer>5</answer>", 5.0) == (2.0, "ok")
    assert correctness_strict("<answer>72</answer>", np.int64(72)) == (2.0, "ok")
    assert LENIENT.score("<answer>5</answer>", 5)["correctness"] == (2.0, "ok")
    with pytest.raises(TypeError, match="correctness_strict: the completion is NoneType"):
        correctness_strict(None, "5")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scheme 'strict': the answer is list, not text"):
        STRICT.score("x", ["5"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="the answer is nan, not a number"):
        STRICT.score("x", float("nan"))  # type: ignore[arg-type]
    # any mapping is a row, as the type says (a mappingproxy was "not an object")
    row = MappingProxyType({"completion": "<answer>5</answer>", "answer": "5"})
    assert score_records([row], [STRICT])["total"].tolist() == [2.5]


def test_score_file_says_a_compressed_file_is_compressed(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "c.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"completion": "x", "answer": "1"}\n'))
    # it said "not valid UTF-8 ...; re-encode the file as UTF-8 (e.g. iconv -f latin1 ...)"
    with pytest.raises(InputError, match="the file is gzip-compressed, not text; decompress"):
        score_file(path, [STRICT])


def test_a_completion_prefix_reaches_every_worker_and_reader(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import rewardkit.score as score_module
    from rewardkit.readers import score_format

    monkeypatch.setattr(score_module, "_PARALLEL_MIN_BYTES", 0)
    rows = [
        {
            "completion": "24\n</think>\n<answer>\n24\n</answer>\n",
            "answer": "24",
            "step": 1,
            "prompt": "q",
        }
    ] * 150
    path = write_jsonl(tmp_path / "a.jsonl", rows)
    prefixed = {
        "one": score_file(path, [STRICT], workers=1, completion_prefix="<think>\n").frame,
        "two": score_file(path, [STRICT], workers=2, completion_prefix="<think>\n").frame,
        "trl": score_format(path, "trl", [STRICT], completion_prefix="<think>\n").frame,
    }
    for frame in prefixed.values():
        assert frame["format"].tolist() == [0.5] * 150
    assert score_file(path, [STRICT], workers=2).frame["format"].tolist() == [0.0] * 150


def test_workers_score_a_small_file_when_asked_or_when_a_reward_is_custom(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A 20 ms custom reward on a file under 4 MiB ran in one process whatever --workers
    said; the size rule now only decides the default, and only for built-in rewards."""
    import concurrent.futures

    import rewardkit.score as score_module
    from rewardkit.schemes import Scheme, SchemeReward

    pools: list[int] = []

    class Counted(concurrent.futures.ProcessPoolExecutor):
        def __init__(self, max_workers: int, **kwargs: Any) -> None:
            pools.append(max_workers)
            super().__init__(max_workers, **kwargs)

    monkeypatch.setattr(score_module, "ProcessPoolExecutor", Counted)
    monkeypatch.setattr(score_module, "default_workers", lambda: 2)
    path = write_jsonl(tmp_path / "small.jsonl", rows_for(40))
    custom = Scheme("mine", (SchemeReward("length", length_penalty),))
    score_file(path, [STRICT])  # built-in only, small: one process
    score_file(path, [STRICT], workers=2)  # asked for
    score_file(path, [custom])  # a custom reward may be slow
    assert pools == [2, 2]


def test_where_workers_are_spawned_a_scheme_of_lambdas_is_scored_in_one_process(
    tmp_path: Path, monkeypatch: Any
) -> None:
    # Windows (and a spawn-only start) pickles the schemes for each worker: a lambda
    # failed the whole file with PicklingError
    import rewardkit.score as score_module
    from rewardkit.schemes import Scheme, SchemeReward

    monkeypatch.setattr(score_module, "get_all_start_methods", lambda: ["spawn"])
    short = Scheme("short", (SchemeReward("short", lambda c, a: float(len(c) < 30), max=1),))
    path = write_jsonl(tmp_path / "a.jsonl", rows_for(20))
    result = score_file(path, [short], workers=2)
    assert result.frame["short"].tolist()[:2] == [0.0, 1.0]
    assert result.warnings[-1].startswith("scored in one process: the rewards cannot be sent")


def test_the_temperature_note_rests_on_tied_groups_not_on_unequal_averages() -> None:
    from rewardkit.report import summarize

    right, wrong = "<answer>24</answer>", "x"

    def rows(groups: list[list[str]]) -> list[dict[str, Any]]:
        return [
            {"completion": c, "answer": "24", "prompt_id": f"p{g}"}
            for g, group in enumerate(groups)
            for c in group
        ]

    # one group of 8 with 1 right, one of 8 with none, ten of 3 all right: pass@8 (0.5,
    # over the two groups of 8) is below pass@1 (31/46, every sample), yet samples differ
    unequal = [[right] + [wrong] * 7, [wrong] * 8] + [[right] * 3] * 10
    notes = summarize(score_records(rows(unequal), [STRICT]), [STRICT]).notes
    assert not [n for n in notes if "temperature" in n]
    # every group all right or all wrong: sampling more finds nothing
    agreeing = [[right] * 4, [wrong] * 4, [right] * 4]
    notes = summarize(score_records(rows(agreeing), [STRICT]), [STRICT]).notes
    assert "strict: the samples of every prompt agree in correctness" in " ".join(notes)


def test_a_reward_below_its_maximum_on_half_the_rows_in_split_reasons_gets_its_note() -> None:
    from rewardkit.report import summarize

    # 31 + 4 + 4 of 78 rows: summed as floats the shares made 0.49999999999999994
    kinds = ["<answer>24</answer>"] * 39 + ["<answer>5</answer>"] * 31
    kinds += ["24"] * 4 + ["<answer>24"] * 4
    frame = score_records([{"completion": c, "answer": "24"} for c in kinds], [STRICT])
    notes = summarize(frame, [STRICT]).notes
    assert any(n.startswith("strict correctness is 0 on 50% of rows") for n in notes)


# --- a pool of workers that must stop ---------------------------------------------------------

_STOPPING_REWARDS = """
import os, pathlib, time

def hang(completion, answer):
    pathlib.Path(os.environ["STARTED"]).touch()
    time.sleep(10**6)
    return 0.0

def die(completion, answer):
    if completion == "<answer>1500</answer>":
        os._exit(9)  # what a segfault or the kernel's out-of-memory killer looks like
    return 0.0
"""


def _pool_run(tmp_path: Path, reward: str) -> list[str]:
    (tmp_path / "stopping.py").write_text(_STOPPING_REWARDS)
    (tmp_path / "s.yaml").write_text(
        f'rewards:\n  - {{function: "stopping.py:{reward}", max: 1}}\n'
    )
    rows = [{"completion": f"<answer>{i}</answer>", "answer": "1"} for i in range(3000)]
    write_jsonl(tmp_path / "c.jsonl", rows)
    return [sys.executable, "-m", "rewardkit", "score", "c.jsonl", "--scheme", "s.yaml"]


@pytest.mark.skipif(sys.platform == "win32", reason="process groups and SIGINT are POSIX")
def test_ctrl_c_stops_the_workers_at_once(tmp_path: Path) -> None:
    # The pool's shutdown waited for every running chunk: minutes after Ctrl-C with a slow
    # reward, forever with a hung one (two Ctrl-Cs did not help).
    started = tmp_path / "started"
    argv = [*_pool_run(tmp_path, "hang"), "--workers", "2"]
    env = {**os.environ, "STARTED": str(started)}
    process = subprocess.Popen(
        argv, cwd=tmp_path, env=env, start_new_session=True, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 120
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), "no worker began scoring"
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130 and "interrupted" in err
    assert "Traceback" not in err


def test_a_worker_that_dies_is_an_error_that_names_where(tmp_path: Path) -> None:
    # BrokenProcessPool came out as a traceback.
    argv = [*_pool_run(tmp_path, "die"), "--workers", "2"]
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    message = " ".join(done.stderr.split())
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "a worker process died while scoring the lines from line" in message
    assert "score with --workers 1 to see the line and the reward" in message


def test_score_rows_stops_at_the_first_failure(tmp_path: Path) -> None:
    # It read and scored every row of the file, then raised for the first bad one.
    read: list[int] = []

    def rows() -> Any:
        for line in range(1, 1001):
            read.append(line)
            record = {"completion": "x"} if line == 3 else {"completion": "x", "answer": "1"}
            yield line, record

    with pytest.raises(InputError, match="line 3: no 'answer' field"):
        score_rows(rows(), [STRICT])
    assert len(read) == 3
    calls: list[str] = []

    def failing(completion: str, answer: str) -> float:
        calls.append(completion)
        raise ValueError("broken reward")

    from rewardkit.schemes import Scheme, SchemeReward

    scheme = Scheme("broken", (SchemeReward("r", failing),))
    records = ((n, {"completion": str(n), "answer": "1"}) for n in range(1, 1001))
    with pytest.raises(InputError, match="line 1: "):
        score_rows(records, [scheme])
    assert len(calls) <= 64  # one block, not the file
