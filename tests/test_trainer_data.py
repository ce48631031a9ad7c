"""Data sources: the synthetic set, local files, and their errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from trainer.config import TrainConfig
from trainer.data import DataError, load_problems, synthetic_split


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
    train, test = load_problems(config)
    assert (len(train), len(test)) == (16, 5)
    assert not {p.id for p in train} & {p.id for p in test}
    assert all(p.gold == p.question[1:] for p in train + test)


def test_a_folder_with_train_and_test_files(tmp_path: Path) -> None:
    import pandas as pd

    _jsonl(tmp_path / "train.jsonl", ROWS[:20])
    pd.DataFrame(ROWS[20:]).to_parquet(tmp_path / "test.parquet")
    train, test = load_problems(
        TrainConfig(dataset=str(tmp_path), train_samples=None, test_samples=None)
    )
    assert (len(train), len(test)) == (20, 10)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            [{"question": "q", "solution": "#### 1"}],
            r"row 1: no answer field \(fields: question, solution\)",
        ),
        ([{"question": "q", "answer": "####"}], "no gold after '####'"),
    ],
)
def test_bad_rows_name_the_file_and_row(
    tmp_path: Path, rows: list[dict[str, str]], message: str
) -> None:
    path = _jsonl(tmp_path / "bad.jsonl", rows * 20)
    with pytest.raises(DataError, match=message):
        load_problems(TrainConfig(dataset=str(path), train_samples=16, test_samples=2))


def test_gsm8k_without_network_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError, match="dataset=synthetic"):
        load_problems(TrainConfig(dataset="gsm8k"))
