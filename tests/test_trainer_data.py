"""Data sources: the synthetic set, local files, and their errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from trainer.config import ConfigError, TrainConfig
from trainer.data import (
    Data,
    DataError,
    _bad_gold,
    fit_prompts,
    load_problems,
    synthetic_split,
)


def test_synthetic_problems_are_gsm8k_shaped_and_right() -> None:
    train, test = synthetic_split(200, 50, seed=3)
    assert len(train) == 200 and len(test) == 50
    assert not {p.question for p in train} & {p.question for p in test}
    for problem in train + test:
        expression = re.search(r"<<([0-9+\-*]+)=(\d+)>>", problem.answer)
        assert expression is not None
        assert eval(expression.group(1)) == int(expression.group(2)) == int(problem.gold)
        assert problem.answer.endswith(f"\n#### {problem.gold}")
    assert synthetic_split(5, 5, seed=3) == synthetic_split(5, 5, seed=3)


def _jsonl(path: Path, rows: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


ROWS = [{"question": f"q{i}", "answer": f"work\n#### {i}"} for i in range(30)]


def test_a_local_file_is_split_into_train_and_test(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "gsm.jsonl", ROWS)
    config = TrainConfig(dataset=str(path), train_samples=16, test_samples=5)
    data = load_problems(config)
    train, test = data.train, data.test
    assert (len(train), len(test)) == (16, 5) and data.skipped == []
    assert not {p.id for p in train} & {p.id for p in test}
    assert all(p.gold == p.question[1:] for p in train + test)


def test_a_folder_with_train_and_test_files(tmp_path: Path) -> None:
    import pandas as pd

    _jsonl(tmp_path / "train.jsonl", ROWS[:20])
    pd.DataFrame(ROWS[20:]).to_parquet(tmp_path / "test.parquet")
    data = load_problems(TrainConfig(dataset=str(tmp_path), train_samples=None, test_samples=None))
    assert (len(data.train), len(data.test)) == (20, 10)


BAD_LINES = [
    ('{"question": "q", "solution": "#### 1"}', r"no answer field \(fields: question, solution\)"),
    ('{"question": "q", "answer": "####"}', "no gold after '####'"),
    ('{"question": "", "answer": "#### 1"}', "the question is empty, not text"),
    ('{"question": ["q"], "answer": "#### 1"}', "the question is an array, not text"),
    ('{"question": "q", "answer": {"n": 1}}', "the answer is an object, not text or a number"),
    ('{"question": "q", "answer": "#### 1"', "not valid JSON"),
    ("[1, 2]", "the line is an array, not an object"),
    (b'{"question": "caf\xe9", "answer": "#### 1"}', "not valid UTF-8"),
    # a gold no completion can be right against: each says why, and how to write it
    (
        '{"question": "q", "answer": "work\\n#### seven"}',
        "the gold 'seven' after '####' is not a number",
    ),
    (
        '{"question": "q", "answer": "So 14 in total."}',
        r"no '#### N' line, so its whole text 'So 14 in total\.' is the gold.*end the solution",
    ),
    ('{"question": "q", "answer": "#### $10"}', r"'\$10' after '####' is not a plain number"),
    ('{"question": "q", "answer": "  "}', "the answer is empty; end the solution with '#### N'"),
    # a number a natural answer misses: a comma that is not a thousands separator reads as
    # if it were not there (0,25 is 25), and strict compares the text (3 is not 3.00)
    (
        '{"question": "q", "answer": "#### 0,25"}',
        "'0,25' has a comma that does not separate thousands: the rewards drop a comma between"
        " digits and read 25, so a completion that answers 0.25 is scored wrong; write"
        " '#### 0.25' if the comma is a decimal point, or '#### 25'",
    ),
    ('{"question": "q", "answer": "1,5"}', "read 15, .* write '1.5' if the comma is a decimal"),
    ('{"question": "q", "answer": "#### 12,3456"}', "write '#### 12.3456' if the comma"),
    ('{"question": "q", "answer": "#### 12,34"}', "write '#### 12.34' if the comma"),
    (
        '{"question": "q", "answer": "#### 1,2,3"}',
        "a right answer is scored wrong; write '#### 123'",
    ),
    (
        '{"question": "q", "answer": "#### 72.0"}',
        "the gold '72.0' is not written as its value's plain form '72': strict correctness"
        " compares the text, so a completion that answers 72 is scored wrong; write '#### 72'",
    ),
    (
        '{"question": "q", "answer": "3.00"}',
        "plain form '3'.* answers 3 is scored wrong; write '3'",
    ),
    ('{"question": "q", "answer": "#### .5"}', "plain form '0.5'.* write '#### 0.5'"),
    ('{"question": "q", "answer": "#### 00012"}', "plain form '12'.* write '#### 12'"),
    ('{"question": "q", "answer": "#### -0"}', "plain form '0'.* write '#### 0'"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_a_bad_line_names_the_file_and_line_and_the_skip_option(
    tmp_path: Path, line: str | bytes, message: str
) -> None:
    path = tmp_path / "bad.jsonl"
    good = "".join(json.dumps(r) + "\n" for r in ROWS[:20]).encode()
    bad = line if isinstance(line, bytes) else line.encode()
    path.write_bytes(good[: good.index(b"\n") + 1] + b"\n" + bad + b"\n" + good)
    with pytest.raises(DataError, match=message) as caught:
        load_problems(TrainConfig(dataset=str(path), train_samples=16, test_samples=2))
    assert str(caught.value).startswith(f"{path}, line 3: ")  # line 2 is blank
    assert "on_error=skip" in str(caught.value)


def test_on_error_skip_keeps_every_good_row_and_lists_every_bad_one(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    good = [json.dumps(r) for r in ROWS]
    bad = [line.decode("latin-1") if isinstance(line, bytes) else line for line, _ in BAD_LINES]
    lines = [line for pair in zip(good, bad, strict=False) for line in pair] + good[len(bad) :]
    path.write_bytes("\n".join(lines).encode("latin-1") + b"\n")
    config = TrainConfig(
        dataset=str(path), train_samples=None, test_samples=4, on_error="skip", prompts_per_step=4
    )
    data = load_problems(config)
    kept = data.train + data.test
    assert sorted(p.question for p in kept) == sorted(r["question"] for r in ROWS)
    assert [s.where for s in data.skipped] == [f"line {2 * i + 2}" for i in range(len(BAD_LINES))]
    for skipped, (_, message) in zip(data.skipped, BAD_LINES, strict=True):
        assert skipped.source == str(path) and re.search(message, skipped.reason)


def test_golds_written_as_plain_numbers_are_taken(tmp_path: Path) -> None:
    answers: list[object] = ["work\n#### 1,000", "#### -3", "0.5", " 72 ", 7, 2.5, "12,345.5"]
    answers.append(1.5e-7)  # written out, not as 1.5e-07, whose last number is 7
    rows = [{"question": f"q{i}", "answer": a} for i, a in enumerate(answers * 2)]
    path = tmp_path / "golds.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = TrainConfig(dataset=str(path), test_samples=2, prompts_per_step=4)
    data = load_problems(config)
    golds = {p.gold for p in data.train + data.test}
    assert golds == {"1,000", "-3", "0.5", "72", "7", "2.5", "12,345.5", "0.00000015"}
    train, test = synthetic_split(500, 100, seed=1)  # the built-in set stays good
    assert all(_bad_gold(p.answer) is None for p in train + test)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("empty.jsonl", b""),
        ("blank.jsonl", b"\n  \n\r\n"),
        ("empty.json", b"[]"),
        ("blank.json", b"\n"),
    ],
)
def test_an_empty_file_is_an_error_naming_it_even_with_skip(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    for on_error in ("raise", "skip"):
        with pytest.raises(DataError, match=r"no problems \(the file is empty") as caught:
            load_problems(TrainConfig(dataset=str(path), on_error=on_error))
        assert str(caught.value).startswith(f"{path}: ")
        assert "'#### N'" in str(caught.value)


def test_an_empty_table_or_test_file_is_an_error_naming_it(tmp_path: Path) -> None:
    import pandas as pd

    table = tmp_path / "none.parquet"
    pd.DataFrame(
        {"question": pd.Series([], dtype=str), "answer": pd.Series([], dtype=str)}
    ).to_parquet(table)
    with pytest.raises(
        DataError, match=rf"{re.escape(str(table))}: no problems \(the table has no rows\)"
    ):
        load_problems(TrainConfig(dataset=str(table)))
    folder = tmp_path / "folder"
    folder.mkdir()
    _jsonl(folder / "train.jsonl", ROWS)
    (folder / "test.jsonl").write_text("")
    for on_error in ("raise", "skip"):
        config = TrainConfig(dataset=str(folder), on_error=on_error)
        with pytest.raises(DataError, match=r"test\.jsonl: no problems \(the file is empty"):
            load_problems(config)


def test_a_file_of_only_bad_rows_is_an_error_even_with_skip(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "bad.jsonl", [{"question": "q", "answer": "no gold ####"}] * 3)
    with pytest.raises(DataError, match="no problems; all 3 rows were skipped, the first: line 1"):
        load_problems(TrainConfig(dataset=str(path), on_error="skip"))


def test_a_parquet_file_names_rows_and_takes_numeric_answers(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"question": [f"q{i}" for i in range(12)], "answer": range(12)})
    frame["answer"] = frame["answer"].astype(float)
    frame.loc[3, "answer"] = float("nan")
    frame.to_parquet(tmp_path / "numbers.parquet")
    config = TrainConfig(
        dataset=str(tmp_path / "numbers.parquet"), test_samples=2, prompts_per_step=4
    )
    with pytest.raises(DataError, match=r"numbers.parquet, row 4: the answer is missing \(NaN\)"):
        load_problems(config)
    data = load_problems(config.replace(on_error="skip"))
    assert [s.where for s in data.skipped] == ["row 4"]
    assert sorted(p.gold for p in data.train + data.test) == sorted(
        str(i) for i in range(12) if i != 3
    )  # 5.0 is the gold "5", as a GSM8K answer would write it
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match=r"broken\.parquet: not a readable parquet file"):
        load_problems(config.replace(dataset=str(tmp_path / "broken.parquet")))


def test_a_float32_answer_column_is_read_in_its_own_precision(tmp_path: Path) -> None:
    # pandas turned float32 2.3 into the Python float 2.299999952316284, and that was the
    # gold: strict correctness then wanted a completion to write all 16 digits.
    import pyarrow as pa
    import pyarrow.parquet as pq

    # float16 holds 19.99 as 19.984375, whose shortest float16 digits are 19.98
    cases = [(pa.float32(), ["2.3", "0.1", "19.99", "72"]), (pa.float16(), ["2.3", "19.98"])]
    for kind, golds in cases:
        values = [float(g) for g in (golds * 6)[:12]]
        table = pa.table(
            {"question": [f"q{i}" for i in range(12)], "answer": pa.array(values, kind)}
        )
        pq.write_table(table, tmp_path / "golds.parquet")
        config = TrainConfig(
            dataset=str(tmp_path / "golds.parquet"), test_samples=2, prompts_per_step=4
        )
        data = load_problems(config)
        assert {p.gold for p in data.train + data.test} == set(golds), kind


def test_a_decimal_answer_column_is_a_number(tmp_path: Path) -> None:
    # pa.decimal128 columns come as decimal.Decimal, refused as "not text or a number" on
    # every row; the column's scale pads 2.5 to 2.50, which strict would compare as text.
    from decimal import Decimal

    import pyarrow as pa
    import pyarrow.parquet as pq

    values = [Decimal(v) for v in ("19.99", "2.50", "1E+1", "72.00")] * 3
    table = pa.table(
        {"question": [f"q{i}" for i in range(12)], "answer": pa.array(values, pa.decimal128(6, 2))}
    )
    pq.write_table(table, tmp_path / "golds.parquet")
    config = TrainConfig(
        dataset=str(tmp_path / "golds.parquet"), test_samples=2, prompts_per_step=4
    )
    data = load_problems(config)
    assert {p.gold for p in data.train + data.test} == {"19.99", "2.5", "10", "72"}


def test_repeated_questions_are_said_and_kept_out_of_training_when_in_the_test_split(
    tmp_path: Path,
) -> None:
    # A question in both splits was trained on and then "evaluated", without a word; two
    # rows of one question with different golds were taken as they came.
    folder = tmp_path / "data"
    folder.mkdir()
    train_rows = [*ROWS[:20], ROWS[3], {"question": "q5", "answer": "#### 6"}]
    _jsonl(folder / "train.jsonl", train_rows)
    _jsonl(folder / "test.jsonl", [{**r, "question": f" q{i} "} for i, r in enumerate(ROWS[:4])])
    config = TrainConfig(dataset=str(folder), train_samples=None, test_samples=None)
    data = load_problems(config)
    test = {p.question.strip() for p in data.test}
    assert test == {"q0", "q1", "q2", "q3"} and len(data.train) == 17  # 22 rows, 5 of q0-q3
    assert not test & {p.question for p in data.train}
    notes = " ".join(data.notes)
    assert "5 questions appear in more than one row (11 rows in all)" in notes
    assert "the rows are kept as given" in notes
    assert "1 repeated question has different golds in its rows, e.g. 'q5': '5' at" in notes
    assert "5 training rows repeat a question of the test split" in notes
    assert "left out of training" in notes
    # a file split by the run: the test problems' twins are left out of training too
    path = _jsonl(tmp_path / "twice.jsonl", ROWS[:15] * 2)
    data = load_problems(TrainConfig(dataset=str(path), train_samples=None, test_samples=5))
    test = {p.question for p in data.test}
    assert not test & {p.question for p in data.train}
    left = 25 - len(data.train)  # each test question's other row, if it is not in test too
    assert left == 2 * len(test) - 5 >= 1
    assert f"{left} training rows repeat a question of the test split" in " ".join(data.notes)
    once = _jsonl(tmp_path / "once.jsonl", ROWS)  # no repeats: nothing to say
    config = TrainConfig(dataset=str(once), train_samples=None, test_samples=5)
    assert load_problems(config).notes == []


def test_fewer_problems_than_asked_for_are_said(tmp_path: Path) -> None:
    # train_samples=256 on a file of 30 trained on 25 with no word but the header's count.
    path = _jsonl(tmp_path / "small.jsonl", ROWS)
    data = load_problems(TrainConfig(dataset=str(path), test_samples=5))
    assert data.notes == [
        f"train_samples=256, but {path} has only 25 problems to train on (not counting the"
        " 5 test problems): the run trains on 25; set train_samples=25, or null for all, to"
        " say so"
    ]
    assert (
        load_problems(TrainConfig(dataset=str(path), test_samples=5, train_samples=25)).notes == []
    )
    folder = tmp_path / "data"
    folder.mkdir()
    _jsonl(folder / "train.jsonl", ROWS[:20])
    _jsonl(folder / "test.jsonl", ROWS[20:])
    data = load_problems(TrainConfig(dataset=str(folder), train_samples=20))
    assert data.notes == [
        f"test_samples=64, but {folder} has only 10 test problems: each evaluation runs on 10;"
        " set test_samples=10, or null for all, to say so"
    ]


def test_on_error_takes_raise_or_skip() -> None:
    with pytest.raises(ConfigError, match="on_error='ignore': use raise"):
        TrainConfig(on_error="ignore")


def test_gsm8k_without_network_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="dataset=synthetic"):
        load_problems(TrainConfig(dataset="gsm8k"))


def test_fewer_training_problems_than_a_step_takes_is_an_error(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "small.jsonl", ROWS[:12])  # 4 test, so 8 to train on
    config = TrainConfig(dataset=str(path), test_samples=4, prompts_per_step=16)
    with pytest.raises(DataError, match="8 training problems, fewer than prompts_per_step=16"):
        load_problems(config)
    assert len(load_problems(config.replace(prompts_per_step=8)).train) == 8


def test_a_json_file_may_hold_one_array_of_problems(tmp_path: Path) -> None:
    path = tmp_path / "problems.json"
    items: list[object] = [dict(r) for r in ROWS[:12]]
    items[2] = ["not", "an", "object"]
    path.write_text(json.dumps(items, indent=2))
    config = TrainConfig(dataset=str(path), test_samples=2, prompts_per_step=4)
    with pytest.raises(DataError, match=r"problems\.json, item 3: the item is an array"):
        load_problems(config)
    data = load_problems(config.replace(on_error="skip"))
    assert [s.where for s in data.skipped] == ["item 3"]
    assert len(data.train) + len(data.test) == 11
    path.write_text(json.dumps(items)[:-5])  # cut short
    with pytest.raises(DataError, match=r"problems\.json: not a readable JSON array"):
        load_problems(config)
    lines = tmp_path / "lines.json"  # JSON lines in a .json file read as before
    lines.write_text("".join(json.dumps(r) + "\n" for r in ROWS[:12]))
    assert len(load_problems(config.replace(dataset=str(lines))).train) == 10


def test_fit_prompts_names_the_row_or_skips_it_and_keeps_enough_to_train(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    questions = [f"short{i}" for i in range(12)]  # one token per character: 6 or 7
    questions[6] = "a question far too long"
    data.write_text(
        "".join(
            json.dumps({"question": q, "answer": f"#### {i}"}) + "\n"
            for i, q in enumerate(questions)
        )
    )
    config = TrainConfig(dataset=str(data), prompts_per_step=2, test_samples=2, max_new_tokens=10)
    loaded = load_problems(config)
    length = len  # "short1" fits in 20 - 10, the long one does not

    def fit(config: TrainConfig, context: int = 20) -> Data:
        return fit_prompts(loaded, lambda p: length(p.question), context, config)

    assert fit(config, context=100) is loaded  # everything fits: the same data
    with pytest.raises(DataError, match=rf"{re.escape(str(data))}, line 7: the prompt is 23"):
        fit(config)
    skipping = config.replace(on_error="skip")
    fitted = fit(skipping)
    assert [s.where for s in fitted.skipped] == ["line 7"] and "context of 20" in fitted.skipped[
        0
    ].reason
    assert len(fitted.train) + len(fitted.test) == 11
    with pytest.raises(DataError, match="fewer than prompts_per_step=2"):
        fit(skipping, context=12)  # nothing fits


def test_a_context_no_prompt_fits_is_said_as_such() -> None:
    """With max_new_tokens past the context every row was 'bad', and with skip the error
    said '0 training problems, ... lower prompts_per_step', which could not help."""
    from trainer.data import Data, DataError, Problem, fit_prompts

    data = Data(
        [Problem(str(i), "x" * 10, "#### 1") for i in range(4)], [Problem("t", "y", "#### 2")]
    )
    with pytest.raises(DataError, match="max_new_tokens=64 leaves no room for a prompt"):
        fit_prompts(data, lambda p: len(p.question), 64, TrainConfig(max_new_tokens=64))
    config = TrainConfig(max_new_tokens=8, on_error="skip", prompts_per_step=2)
    with pytest.raises(DataError, match=r"0 training problems fit .* \(4 prompts are too long\)"):
        fit_prompts(data, lambda p: len(p.question), 16, config)
