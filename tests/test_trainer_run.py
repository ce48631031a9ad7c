"""Whole runs: the default config, a kill and a resume, and what the run folder holds."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

import pandas as pd  # noqa: E402
from rich.console import Console  # noqa: E402
from trainer_fixtures import fast_config  # noqa: E402

from rewardkit.schemes import LENIENT, STRICT  # noqa: E402
from rewardkit.score import Keys, score_file, score_records  # noqa: E402
from trainer.config import ConfigError, TrainConfig  # noqa: E402
from trainer.console import Display  # noqa: E402
from trainer.loop import train  # noqa: E402
from trainer.report import compare_runs, load_run, write_comparison  # noqa: E402
from trainer.runfiles import RunFiles, atomic_write, atomic_write_frame  # noqa: E402

TIMING = ["seconds", "gen_seconds", "update_seconds", "gen_tokens_per_s", "update_tokens_per_s"]


def quiet() -> Display:
    return Display(Console(quiet=True))


def test_the_default_config_runs_two_steps(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")  # the plots it checks for
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


def test_step_rows_wait_in_memory_until_flushed(tmp_path: Path) -> None:
    def steps_on_disk() -> list[int]:
        path = tmp_path / "steps.parquet"
        return pd.read_parquet(path)["step"].tolist() if path.exists() else []

    files = RunFiles(tmp_path, write_every=float("inf"))
    files.add_step({"step": 1, "epoch": 1}, [{"id": "a"}])
    files.add_step({"step": 2, "epoch": 1}, [{"id": "b"}])
    assert steps_on_disk() == []
    assert len((tmp_path / "samples.jsonl").read_text().splitlines()) == 2  # samples at once
    files.flush()
    assert steps_on_disk() == [1, 2]
    files.add_step({"step": 3, "epoch": 1}, [])
    files.add_epoch({"epoch": 1, "steps": 3})  # an epoch's end writes its steps first
    assert steps_on_disk() == [1, 2, 3]
    eager = RunFiles(tmp_path, write_every=0.0)  # reads the table back; writes every step
    eager.add_step({"step": 4, "epoch": 2}, [])
    assert steps_on_disk() == [1, 2, 3, 4]


def test_a_hard_kill_loses_no_step_a_resume_needs(tmp_path: Path) -> None:
    # Step rows wait in memory before steps.parquet is rewritten (trainer.runfiles); a kill
    # that runs no `finally` (SIGKILL, os._exit) loses them, but never the rows up to the
    # last checkpoint: the resumed run still equals one never stopped.
    config = fast_config(epochs=2, save_every=2, train_samples=16)  # 4 steps per epoch
    whole = train(config, tmp_path / "whole", display=quiet())
    root = tmp_path / "killed"
    script = f"""
        import os
        from pathlib import Path
        from rich.console import Console
        from trainer_fixtures import fast_config
        from trainer.console import Display
        from trainer.loop import train

        def kill(step):
            if step == 7:  # after the checkpoint at step 6, mid-way through epoch 2
                os._exit(9)

        config = fast_config(epochs=2, save_every=2, train_samples=16)
        train(config, Path({str(root)!r}), display=Display(Console(quiet=True)), after_step=kill)
    """
    tests = Path(__file__).resolve().parent
    path = os.pathsep.join([str(tests), str(tests.parent), os.environ.get("PYTHONPATH", "")])
    killed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
    )
    assert killed.returncode == 9, killed.stderr
    # Step 7's samples went out; its row, still in memory, did not.
    assert pd.read_parquet(root / "steps.parquet")["step"].max() == 6
    assert json.loads((root / "samples.jsonl").read_text().splitlines()[-1])["step"] == 7
    train(config, root, resume=True, display=quiet())

    a, b = (pd.read_parquet(r / "steps.parquet").drop(columns=TIMING) for r in (whole, root))
    pd.testing.assert_frame_equal(a, b)
    lines = [(r / "samples.jsonl").read_text().splitlines() for r in (whole, root)]
    assert lines[0] == lines[1]


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path: Path) -> None:
    config = fast_config(epochs=2, save_every=0)  # checkpoints at epoch ends only
    whole = train(config, tmp_path / "whole", display=quiet())

    def kill_at_step_2(step: int) -> None:
        if step == 2:  # in the first epoch: no checkpoint yet
            raise Killed

    root = tmp_path / "killed"
    with pytest.raises(Killed):
        train(config, root, display=quiet(), after_step=kill_at_step_2)
    assert not (root / "checkpoint").exists()
    out = io.StringIO()
    train(config, root, resume=True, display=Display(Console(file=out, width=300)))
    assert "has no checkpoint yet" in out.getvalue()

    a, b = (pd.read_parquet(r / "steps.parquet").drop(columns=TIMING) for r in (whole, root))
    pd.testing.assert_frame_equal(a, b)
    for name in ("samples.jsonl", "eval_samples.jsonl"):
        assert (whole / name).read_text() == (root / name).read_text(), name
    x, y = (pd.read_parquet(r / "eval.parquet") for r in (whole, root))
    pd.testing.assert_frame_equal(x, y)


def test_resume_refuses_data_that_changed_since_the_checkpoint(tmp_path: Path) -> None:
    data = tmp_path / "data.jsonl"
    rows = [{"question": f"What is {i} + 1?", "answer": f"#### {i + 1}"} for i in range(16)]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = fast_config(dataset=str(data), train_samples=8, test_samples=4, save_every=1)

    def kill_at_step_1(step: int) -> None:
        if step == 1:
            raise Killed

    root = tmp_path / "run"
    with pytest.raises(Killed):
        train(config, root, display=quiet(), after_step=kill_at_step_1)
    kept = data.read_text()
    data.write_text(kept.replace("What is 3 + 1?", "What is 3 plus 1?"))  # one question edited
    with pytest.raises(ConfigError, match="the data set is not the one the run was trained on"):
        train(config, root, resume=True, display=quiet())
    data.write_text(kept)
    train(config, root, resume=True, display=quiet())  # the same data again: it continues
    assert pd.read_parquet(root / "steps.parquet")["step"].tolist() == [1, 2]


def test_a_scheme_that_gives_no_signal_is_called_out_while_training(tmp_path: Path) -> None:
    (tmp_path / "flat.py").write_text("def flat(completion, answer):\n    return 0.0, 'flat'\n")
    scheme = tmp_path / "flat.yaml"
    scheme.write_text("name: flat\nrewards:\n  - {function: flat.py:flat}\n")
    out = io.StringIO()
    display = Display(Console(file=out, width=300))
    train(fast_config(scheme=str(scheme), epochs=2), tmp_path / "run", display=display)
    text = out.getvalue()
    assert "steps 1-5: 100% of groups had zero reward spread" in text
    assert "Most common reasons at step 5: flat: flat (100%)" in text
    assert text.count("zero reward spread, so their advantages were 0") == 1  # once a stretch


def test_eval_samples_hold_every_evaluation_completion_and_rederive_pass_at_k(
    tmp_path: Path,
) -> None:
    from rewardkit.report import pass_at_k_table

    config = fast_config()
    root = train(config, tmp_path / "run", display=quiet())
    rows = [json.loads(line) for line in (root / "eval_samples.jsonl").read_text().splitlines()]
    problems, n = config.test_samples or 0, max(config.pass_k)
    for epoch in (0, 1):
        kinds = [r["kind"] for r in rows if r["epoch"] == epoch]
        assert (kinds.count("greedy"), kinds.count("sample")) == (problems, problems * n)
    last = [r for r in rows if r["epoch"] == 1 and r["kind"] == "sample"]
    assert len({r["prompt_id"] for r in last}) == problems  # one group per problem
    frame = score_records(last, [LENIENT])
    again = pass_at_k_table(frame, [LENIENT], config.pass_k)
    evals = pd.read_parquet(root / "eval.parquet")
    recorded = evals[(evals["epoch"] == 1) & evals["metric"].str.fullmatch(r"pass@\d+")]
    assert again["pass_at_k"].tolist() == pytest.approx(recorded["value"].tolist())


def test_a_refused_resume_leaves_the_runs_config_as_it_was(tmp_path: Path) -> None:
    config = fast_config(epochs=2)
    root = train(config, tmp_path / "run", display=quiet())
    before = (root / "config.yaml").read_text()
    # Fewer epochs than done: the tables already hold epoch 2.
    with pytest.raises(ConfigError, match="has reached epoch 2, and epochs=1"):
        train(config.replace(epochs=1), root, resume=True, display=quiet())
    assert (root / "config.yaml").read_text() == before
    # A damaged checkpoint: named, with the way on, and nothing rewritten.
    (root / "checkpoint" / "state.pt").write_bytes(b"garbage")
    with pytest.raises(ConfigError, match=r"state\.pt: the checkpoint cannot be read"):
        train(config.replace(epochs=3), root, resume=True, display=quiet())
    assert (root / "config.yaml").read_text() == before


def test_a_resume_refuses_a_folder_missing_what_its_checkpoint_had(tmp_path: Path) -> None:
    """Rows or sample lines deleted since the checkpoint: a resume would leave a hole in the
    reports (and pad a cut samples.jsonl with zero bytes), so it stops and says what."""
    config = fast_config(epochs=2, save_every=1)  # 3 steps an epoch

    def kill(step: int) -> None:
        if step == 5:  # after the checkpoint at step 5
            raise Killed

    root = tmp_path / "run"
    with pytest.raises(Killed):
        train(config, root, display=quiet(), after_step=kill)
    saved = {n: (root / n).read_bytes() for n in ("steps.parquet", "samples.jsonl")}
    steps = pd.read_parquet(root / "steps.parquet")
    steps[steps["step"] != 3].to_parquet(root / "steps.parquet")
    (root / "epochs.parquet").unlink()
    with pytest.raises(ConfigError) as caught:
        train(config, root, resume=True, display=quiet())
    assert str(caught.value) == (
        f"{root}: the checkpoint is at step 5, but steps.parquet lacks step 3 of the 5 it"
        " had; epochs.parquet lacks epoch 1: a resume would write reports with a hole in"
        " them. Put the run's files back as they were, or start a new run"
    )
    (root / "steps.parquet").write_bytes(saved["steps.parquet"])
    with open(root / "samples.jsonl", "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(
        ConfigError,
        match=r"but epochs.parquet lacks epoch 1; samples.jsonl has"
        r" 100 of the [\d,]+ bytes it had: a resume",
    ):
        train(config, root, resume=True, display=quiet())
    assert (root / "samples.jsonl").stat().st_size == 100  # not padded
    (root / "samples.jsonl").unlink()  # read "samples.jsonl is gone it had"
    with pytest.raises(ConfigError, match=r"; samples.jsonl is gone \(it had [\d,]+ bytes\)"):
        train(config, root, resume=True, display=quiet())


def test_a_write_refused_by_the_system_names_the_file_not_its_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a read-only folder: ".comparison.csv.tmp: Read-only file system"
    def refused(self: Any, path: Any, **kwargs: Any) -> None:
        Path(path).write_text("half")
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr(pd.DataFrame, "to_csv", refused)
    with pytest.raises(OSError) as caught:
        atomic_write_frame(tmp_path / "comparison.csv", pd.DataFrame({"a": [1]}))
    assert caught.value.filename == str(tmp_path / "comparison.csv")
    assert caught.value.strerror == "Read-only file system"
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind

    def opened(handle: Any) -> None:
        raise OSError(28, "No space left on device", handle.name)

    with pytest.raises(OSError) as caught:
        atomic_write(tmp_path / "steps.parquet", opened)
    assert caught.value.filename == str(tmp_path / "steps.parquet")
    assert list(tmp_path.iterdir()) == []

    def arrow(self: Any, path: Any, **kwargs: Any) -> None:  # pyarrow's OSError: no filename
        raise OSError(13, f"Failed to open local file '{path}'. Detail: Permission denied")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", arrow)
    with pytest.raises(OSError) as caught:
        atomic_write_frame(tmp_path / "steps.parquet", pd.DataFrame({"a": [1]}))
    assert caught.value.filename == str(tmp_path / "steps.parquet")
    assert ".tmp" not in str(caught.value)


def test_a_resume_from_mid_epoch_may_not_end_before_that_epoch(tmp_path: Path) -> None:
    """A checkpoint in epoch 2 (3 steps an epoch, saved every step, killed at step 5)."""
    config = fast_config(epochs=2, save_every=1)

    def kill(step: int) -> None:
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "run", display=quiet(), after_step=kill)
    with pytest.raises(ConfigError, match="has reached epoch 2, and epochs=1"):
        train(config.replace(epochs=1), tmp_path / "run", resume=True, display=quiet())
    assert "epochs: 2" in (tmp_path / "run" / "config.yaml").read_text()


def test_a_resume_with_engine_auto_keeps_the_engine_the_run_began_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """auto picks vLLM where it imports: a run begun without it and resumed beside it would
    change engines mid-run, and part from an uninterrupted run without a word."""
    import trainer.loop
    from trainer.checkpoint import recorded_engine

    config = fast_config(engine="auto")
    root = train(config, tmp_path / "run", display=quiet())  # no vLLM here: torch
    assert recorded_engine(root) == "torch"
    asked: list[str] = []
    real = trainer.loop.make_engine

    def make_engine(policy: Any, config: TrainConfig, longest: Any = None) -> Any:
        asked.append(config.engine)
        return real(policy, config, longest)

    monkeypatch.setattr(trainer.loop, "make_engine", make_engine)
    train(config.replace(epochs=2), root, resume=True, display=quiet())
    assert asked == ["torch"]


def test_resume_refuses_a_changed_config(tmp_path: Path) -> None:
    config = fast_config()
    root = train(config, tmp_path / "run", display=quiet())
    with pytest.raises(ConfigError, match=r"its new place\), and this changes learning_rate"):
        train(config.replace(learning_rate=1.0), root, resume=True, display=quiet())
    with pytest.raises(FileExistsError, match="--resume"):
        train(config, root, display=quiet())
    # What changes memory, not the result, may change (the way out of a GPU's memory).
    lighter = config.replace(micro_batch_size=4, gradient_checkpointing=True, epochs=2)
    train(lighter, root, resume=True, display=quiet())
    assert "micro_batch_size: 4" in (root / "config.yaml").read_text()


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
    pytest.importorskip("matplotlib")  # comparison.png
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
    assert "`rewardkit score samples.jsonl --scheme strict`" in summary
    # best and end are means over the same window, so the best is never below the end (a
    # 5-step best beside a 1-step end was, on short runs)
    late = load_run(roots[1])
    late.steps["total_mean"] = [0.0] * (len(late.steps) - 1) + [3.0]
    row = compare_runs([late]).iloc[0]
    assert row["reward_best"] == row["reward_end"] == 3.0


def test_problems_past_the_last_full_step_are_said_to_be_left_out(tmp_path: Path) -> None:
    out = io.StringIO()
    display = Display(Console(file=out, width=200))
    train(fast_config(train_samples=14), tmp_path / "run", display=display)  # 3 steps of 4
    said = out.getvalue()
    assert "14 training problems fill 3 steps of 4 prompts: each epoch leaves 2 out" in said
    assert "set train_samples=12" in said
    assert pd.read_parquet(tmp_path / "run" / "epochs.parquet")["prompts_seen"].tolist() == [12]


def test_scheme_fingerprints_hold_across_objects_and_partials() -> None:
    """A callable object's or a partial's repr holds its address: every resume warned."""
    import functools

    from rewardkit.schemes import Scheme, SchemeReward
    from trainer.checkpoint import scheme_fingerprints

    class Limit:
        def __init__(self, n: int) -> None:
            self.n = n

        def __call__(self, c: str, a: str) -> float:
            return float(len(c) < self.n)

    def short(c: str, a: str, n: int) -> float:
        return float(len(c) < n)

    def scheme(limit: int) -> Scheme:
        return Scheme(
            "s",
            (
                SchemeReward("obj", Limit(limit)),
                SchemeReward("part", functools.partial(short, n=limit)),
            ),
        )

    assert scheme_fingerprints(scheme(5)) == scheme_fingerprints(scheme(5))
    changed = scheme_fingerprints(scheme(6))
    assert changed["part"] != scheme_fingerprints(scheme(5))["part"]  # its argument changed


def test_a_config_written_with_relative_paths_still_resumes(
    tmp_path: Path, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    rows = [f'{{"question": "What is {i} + 2?", "answer": "#### {i + 2}"}}' for i in range(12)]
    (tmp_path / "data.jsonl").write_text("\n".join(rows) + "\n")
    config = fast_config(dataset=str(tmp_path / "data.jsonl"))
    root = train(config, tmp_path / "run", display=quiet())
    saved = (root / "config.yaml").read_text()
    (root / "config.yaml").write_text(saved.replace(str(tmp_path / "data.jsonl"), "data.jsonl"))
    from trainer.config import load_config

    resumed = load_config(root / "config.yaml", ["epochs=2"]).with_absolute_paths()
    train(resumed, root, resume=True, display=quiet())  # refused as "changes dataset" before
    assert pd.read_parquet(root / "epochs.parquet")["epoch"].tolist() == [1, 2]


def test_a_template_that_opens_think_in_the_prompt_is_scored_with_it(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """DeepSeek-R1's and Qwen3's templates end the prompt with <think>\\n: a perfect reply
    lost its opening tag to the rewards (strict format 0, no_think_tag)."""
    import trainer.loop

    render = trainer.loop.render_prompt
    monkeypatch.setattr(trainer.loop, "render_prompt", lambda *args: render(*args) + "<think>\n")
    root = train(fast_config(scheme="strict"), tmp_path / "run", display=quiet())
    lines = [json.loads(line) for line in (root / "samples.jsonl").read_text().splitlines()]
    assert all(line["completion"].startswith("<think>\n") for line in lines)
    assert {line["reasons"]["format"] for line in lines}.isdisjoint({"no_think_tag"})
    evals = [json.loads(x) for x in (root / "eval_samples.jsonl").read_text().splitlines()]
    assert all(line["completion"].startswith("<think>\n") for line in evals)
    # what the run stored is what rewardkit score reads and scores alike
    rescored = score_records(lines, [STRICT])
    assert rescored["total"].tolist() == [line["rewards"]["total"] for line in lines]


def test_the_reward_plot_shows_a_reward_that_is_the_whole_total(
    tmp_path: Path, monkeypatch: Any
) -> None:
    # strict's example: mark is all of the total. A solid total drawn over it hid it; the
    # title said "strict" twice for a run named after its scheme.
    import trainer.report as report
    from trainer.report import RunData, plot_run

    pytest.importorskip("matplotlib")
    steps = pd.DataFrame(
        {
            "step": [1, 2, 3],
            "mark_mean": [0.0, 0.1, 0.2],
            "mark_tied": [1.0, 0.0, 0.0],
            "total_mean": [0.0, 0.1, 0.2],
            "zero_spread": [1.0, 0.0, 0.0],
        }
    )
    figures: list[Any] = []
    monkeypatch.setattr(report, "_save", lambda figure, path: figures.append(figure) or path)
    empty = pd.DataFrame()
    plot_run(RunData(tmp_path / "strict", {"scheme": "strict"}, steps, empty, empty))
    axis = figures[0].axes[0]
    assert axis.get_title() == "strict: reward per component"
    lines = {line.get_label(): line for line in axis.get_lines()}
    assert lines["total"].get_linestyle() == "--"
    figures.clear()
    plot_run(RunData(tmp_path / "mine", {"scheme": "strict"}, steps, empty, empty))
    assert figures[0].axes[0].get_title() == "mine: reward per component (strict)"


def test_a_kill_inside_the_final_save_leaves_no_stray_file(
    tmp_path: Path, monkeypatch: Any
) -> None:
    # safetensors writes through a randomly named temporary file: a kill there left a
    # weights-sized .tmpXXXX in model/ that the resume's save did not remove.
    from transformers import PreTrainedModel

    real = PreTrainedModel.save_pretrained

    def killed(self: Any, folder: Any, *args: Any, **kwargs: Any) -> None:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / ".tmpJINjSh").write_bytes(b"half the weights")
        raise Killed

    root = tmp_path / "run"
    monkeypatch.setattr(PreTrainedModel, "save_pretrained", killed)
    with pytest.raises(Killed):
        train(fast_config(), root, display=quiet())
    monkeypatch.setattr(PreTrainedModel, "save_pretrained", real)
    train(fast_config(), root, resume=True, display=quiet())
    assert (root / "model" / "config.json").exists()
    assert not [p.name for p in (root / "model").iterdir() if p.name.startswith(".tmp")]
    assert not (root / ".model.partial").exists()


def test_a_ctrl_c_in_setups_collection_still_frees_the_folder(
    tmp_path: Path, monkeypatch: Any
) -> None:
    # The held Ctrl-C was raised after the collection but outside train()'s try: the
    # folder's lock, the files and the display were left as they were.
    import trainer.loop
    from trainer.lock import FolderLock

    def interrupted() -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.loop.gc, "collect", interrupted)
    root = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt) as caught:
        train(fast_config(), root, display=quiet())
    FolderLock.take(root).release()  # free, while the traceback is still alive
    assert caught.traceback  # (kept alive until here, as a notebook keeps it)
