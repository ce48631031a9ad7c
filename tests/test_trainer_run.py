"""Whole runs: the default config, a kill and a resume, and what the run folder holds."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

import pandas as pd  # noqa: E402
from rich.console import Console  # noqa: E402
from trainer_fixtures import fast_config  # noqa: E402

from rewardkit.schemes import LENIENT  # noqa: E402
from rewardkit.score import Keys, score_file  # noqa: E402
from trainer.config import ConfigError, TrainConfig  # noqa: E402
from trainer.console import Display  # noqa: E402
from trainer.loop import train  # noqa: E402
from trainer.report import compare_runs, load_run, write_comparison  # noqa: E402

TIMING = ["seconds", "gen_seconds", "update_seconds", "gen_tokens_per_s", "update_tokens_per_s"]


def quiet() -> Display:
    return Display(Console(quiet=True))


def test_the_default_config_runs_two_steps(tmp_path: Path) -> None:
    # The embedded default, cut to 2 steps (32 problems = 2 steps of 16 prompts).
    config = TrainConfig().replace(train_samples=32, test_samples=8, epochs=1, engine="torch")
    root = train(config, tmp_path / "run", display=quiet())
    steps = pd.read_parquet(root / "steps.parquet")
    assert steps["step"].tolist() == [1, 2]
    assert (steps["completions"] == 128).all()
    assert steps["loss"].map(lambda v: v == v).all()  # finite, not NaN
    for name in (
        "summary.md",
        "rewards.png",
        "zero_spread.png",
        "pass_at_k.png",
        "model/config.json",
    ):
        assert (root / name).exists(), name
    evals = pd.read_parquet(root / "eval.parquet")
    assert sorted(evals["epoch"].unique()) == [0, 1]
    assert {"pass@1 (greedy)", "pass@1", "pass@4", "pass@8"} <= set(evals["metric"])


class Killed(Exception):
    pass


def test_a_killed_run_resumes_with_the_same_data_and_numbers(tmp_path: Path) -> None:
    config = fast_config(epochs=2, save_every=2, train_samples=16)  # 4 steps per epoch
    whole = train(config, tmp_path / "whole", display=quiet())

    def kill_at_step_7(step: int) -> None:
        if step == 7:  # after the checkpoint at step 6, mid-way through epoch 2
            raise Killed

    root = tmp_path / "killed"
    with pytest.raises(Killed):
        train(config, root, display=quiet(), after_step=kill_at_step_7)
    with open(root / "samples.jsonl", "a") as handle:
        handle.write('{"completion": "half a li')  # a write cut short by the kill
    assert pd.read_parquet(root / "steps.parquet")["step"].max() == 7
    train(config, root, resume=True, display=quiet())

    a, b = (pd.read_parquet(r / "steps.parquet").drop(columns=TIMING) for r in (whole, root))
    pd.testing.assert_frame_equal(a, b)
    lines = [(r / "samples.jsonl").read_text().splitlines() for r in (whole, root)]
    assert lines[0] == lines[1]  # same prompts in the same order, same completions
    for name in ("epochs.parquet", "eval.parquet"):
        x, y = (pd.read_parquet(r / name) for r in (whole, root))
        pd.testing.assert_frame_equal(
            x.drop(columns=["seconds"], errors="ignore"),
            y.drop(columns=["seconds"], errors="ignore"),
        )


def test_resume_refuses_a_changed_config(tmp_path: Path) -> None:
    config = fast_config()
    root = train(config, tmp_path / "run", display=quiet())
    with pytest.raises(ConfigError, match="only epochs may change"):
        train(config.replace(learning_rate=1.0), root, resume=True, display=quiet())
    with pytest.raises(FileExistsError, match="--resume"):
        train(config, root, display=quiet())


def test_samples_are_read_back_by_rewardkit_score(tmp_path: Path) -> None:
    # On a terminal: the live tables and the progress bar.
    screen = io.StringIO()
    display = Display(Console(file=screen, force_terminal=True, width=150))
    root = train(fast_config(), tmp_path / "run", display=display)
    shown = screen.getvalue()
    for text in ("Rewards of step 3", "gen tok/s", "zero spread", "Epoch 1", "accumulated_reward"):
        assert text in shown, text
    records = [json.loads(line) for line in (root / "samples.jsonl").read_text().splitlines()]
    assert len(records) == 3 * 4 * 4  # steps x prompts x completions
    assert {"completion", "answer", "prompt_id", "prompt", "id", "rewards", "reasons"} <= set(
        records[0]
    )
    result = score_file(root / "samples.jsonl", [LENIENT], Keys())
    assert result.frame["total"].tolist() == [r["rewards"]["total"] for r in records]
    assert result.frame["group"].nunique() == 3 * 4  # one group per prompt per step
    assert all(r["completion"].count("</answer>") <= 1 for r in records)


def test_runs_compare_side_by_side(tmp_path: Path) -> None:
    roots = [
        train(fast_config(scheme=s), tmp_path / s, display=quiet()) for s in ("strict", "lenient")
    ]
    runs = [load_run(r) for r in roots]
    frame = compare_runs(runs)
    assert frame["scheme"].tolist() == ["strict", "lenient"]
    assert {
        "reward_start",
        "reward_end",
        "zero_spread_mean",
        "pass@1 (greedy) final",
        "pass@4 best",
        "steps to reward 1",
    } <= set(frame.columns)
    _, written = write_comparison(runs, tmp_path)
    assert {p.name for p in written} == {"comparison.csv", "comparison.png"}
    summary = (roots[0] / "summary.md").read_text()
    assert "zero reward spread" in summary and "strict" in summary
