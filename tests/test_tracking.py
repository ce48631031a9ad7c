"""Weights & Biases logging: what a run sends, and a real offline wandb run when installed."""

from __future__ import annotations

import importlib.machinery
import sys
import types
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import pandas as pd  # noqa: E402
from rich.console import Console  # noqa: E402
from trainer_fixtures import fast_config  # noqa: E402

from trainer.config import ConfigError  # noqa: E402
from trainer.console import Display  # noqa: E402
from trainer.lock import holds_files  # noqa: E402
from trainer.loop import train  # noqa: E402
from trainer.tracking import ID_FILE, run_id  # noqa: E402


def quiet() -> Display:
    return Display(Console(quiet=True))


class FakeRun:
    def __init__(self) -> None:
        self.logged: list[tuple[dict[str, Any], int]] = []
        self.finished = 0

    def log(self, values: dict[str, Any], step: int) -> None:
        self.logged.append((values, step))

    def finish(self) -> None:
        self.finished += 1


def fake_wandb(monkeypatch: pytest.MonkeyPatch) -> tuple[FakeRun, dict[str, Any]]:
    run, init_args = FakeRun(), {}

    def init(**kwargs: Any) -> FakeRun:
        init_args.update(kwargs)
        return run

    module = types.ModuleType("wandb")
    module.__spec__ = importlib.machinery.ModuleSpec("wandb", None)  # for find_spec callers
    module.init = init  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", module)
    return run, init_args


def test_a_run_sends_every_step_and_evaluation(tmp_path: Path, monkeypatch: Any) -> None:
    run, init_args = fake_wandb(monkeypatch)
    root = train(fast_config(wandb=True, wandb_project="gsm8k"), tmp_path / "run", display=quiet())
    assert init_args["project"] == "gsm8k"
    assert init_args["name"] == root.name
    assert init_args["id"].startswith("run-") and init_args["id"] != root.name
    assert init_args["resume"] == "allow"
    assert init_args["dir"] == str(root)
    assert init_args["config"]["wandb_project"] == "gsm8k"
    steps = pd.read_parquet(root / "steps.parquet")
    step_logs = [(values, step) for values, step in run.logged if "total_mean" in values]
    assert [step for _, step in step_logs] == steps["step"].tolist()
    for (values, _), (_, row) in zip(step_logs, steps.iterrows(), strict=True):
        assert values["total_mean"] == pytest.approx(row["total_mean"])
        assert values["zero_spread"] == pytest.approx(row["zero_spread"])
    evals = [values for values, _ in run.logged if any(k.startswith("eval/") for k in values)]
    assert len(evals) == 2  # before training and after the one epoch
    assert {"eval/pass@1 (greedy)", "eval/pass@1", "eval/pass@4"} <= set(evals[-1])
    assert run.finished == 1
    # a resumed run continues its W&B run
    _, resumed = fake_wandb(monkeypatch)
    train(fast_config(wandb=True, wandb_project="gsm8k"), root, resume=True, display=quiet())
    assert resumed["id"] == init_args["id"] and resumed["resume"] == "allow"


def test_runs_of_one_name_in_two_comparisons_get_two_wandb_ids(tmp_path: Path) -> None:
    # every --schemes comparison has a run named strict: with the folder's name as its id,
    # W&B (resume="allow") logged the second comparison into the first one's run
    first, second = tmp_path / "a" / "strict", tmp_path / "b" / "strict"
    for root in (first, second):
        root.mkdir(parents=True)
    assert run_id(first) != run_id(second)
    (first / ID_FILE).write_text("strict-0a1b2c3d")  # kept once W&B took it
    assert run_id(first) == "strict-0a1b2c3d"
    # a run logged before ids were kept goes on with the id it had: its folder's name
    old = tmp_path / "old"
    (old / "wandb").mkdir(parents=True)
    assert run_id(old) == "old"


def test_asking_for_wandb_without_it_installed_says_what_to_do(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb raises ImportError
    with pytest.raises(ConfigError, match="pip install wandb"):
        train(fast_config(wandb=True), tmp_path / "run", display=quiet())


def test_wandb_that_cannot_start_says_what_to_do_and_leaves_no_run_folder(
    tmp_path: Path, monkeypatch: Any
) -> None:
    class UsageError(Exception):
        pass

    def init(**_: Any) -> None:
        raise UsageError("No API key configured. Use `wandb login` to log in.")

    module = types.ModuleType("wandb")
    module.__spec__ = importlib.machinery.ModuleSpec("wandb", None)
    module.init = init  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "wandb", module)
    with pytest.raises(ConfigError, match=r"W&B did not start \(UsageError: No API key") as caught:
        train(fast_config(wandb=True), tmp_path / "run", display=quiet())
    assert "WANDB_MODE=offline" in str(caught.value)
    assert not (tmp_path / "run").exists()
    # in a folder that was there before, no id is left behind to refuse the next try with
    (tmp_path / "made").mkdir()
    with pytest.raises(ConfigError, match=r"W&B did not start"):
        train(fast_config(wandb=True), tmp_path / "made", display=quiet())
    assert not holds_files(tmp_path / "made")


def test_a_real_offline_wandb_run_holds_the_metrics(tmp_path: Path, monkeypatch: Any) -> None:
    wandb = pytest.importorskip("wandb", reason="wandb is not installed (pip install wandb)")
    monkeypatch.setenv("WANDB_MODE", "offline")  # nothing leaves the machine
    monkeypatch.setenv("WANDB_SILENT", "true")
    root = train(fast_config(wandb=True), tmp_path / "run", display=quiet())
    # run.finish() returns before wandb's service has written the record file (7 bytes of
    # it, on a loaded machine, in 2 of 3 tries); a process's exit waits for the service,
    # and so does teardown.
    wandb.teardown()
    records = list((root / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(records) == 1, list((root / "wandb").iterdir())
    data = records[0].read_bytes()  # wandb's record log: metric names are stored as text
    for key in (b"total_mean", b"zero_spread", b"eval/pass@1 (greedy)", b"eval/pass@4"):
        assert key in data, key
