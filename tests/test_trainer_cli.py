"""`rewardkit train` and `rewardkit report`: exit codes and the text a user sees."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

import pytest

from trainer.cli import add_report_parser, add_train_parser, run_report, run_train


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="rewardkit")
    commands = parser.add_subparsers(dest="command", required=True)
    add_train_parser(commands)
    add_report_parser(commands)
    args = parser.parse_args(argv)
    return run_train(args) if args.command == "train" else run_report(args)


def test_train_without_the_train_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a)
    )
    assert main(["train"]) == 2
    assert "pip install 'rewardkit[train]'" in capsys.readouterr().err


def test_train_with_too_old_a_transformers_says_which_it_needs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # transformers 4.45-4.53 satisfied the extra's old floor and failed mid-run.
    import importlib.metadata

    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata,
        "version",
        lambda name: "4.53.3" if name == "transformers" else real(name),
    )
    assert main(["train"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "needs transformers>=4.54, and this environment has 4.53.3" in err
    assert "pip install 'rewardkit[train]'" in err


def test_a_bad_value_exits_2_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    assert main(["train", "--set", "clip_eps=2"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert err.startswith("error: ") and "clip_eps=2.0 is out of range" in err
    assert main(["train", "--schemes", "strict,relaxed"]) == 2  # before any run starts
    assert "unknown scheme 'relaxed'" in capsys.readouterr().err
    assert main(["train", "--set", "group_size=8"]) == 2
    assert "valid keys" in capsys.readouterr().err
    assert main(["train", "--schemes", "lenient,strict,lenient"]) == 2
    assert "these give lenient, strict, lenient; list each scheme once" in capsys.readouterr().err


def test_resume_of_a_folder_that_holds_no_run_says_what_it_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "nothing: no such folder" in err  # said so, not "not a run folder"
    assert "--resume takes the folder a `rewardkit train` run wrote" in err
    (tmp_path / "notes.txt").write_text("")
    assert main(["train", "--resume", str(tmp_path / "notes.txt")]) == 2
    assert "notes.txt: a file, not a folder; --resume takes" in " ".join(
        capsys.readouterr().err.split()
    )
    assert main(["train", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "not a run folder (no config.yaml)" in err


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("model={tmp}/missing", "/missing': no such folder"),
        ("model={tmp}", "the folder has no config.json"),
        ("model=nobody/no-such-model", "model='nobody/no-such-model' cannot be loaded (OSError"),
    ],
)
def test_a_model_that_cannot_be_loaded_exits_2_naming_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    message: str,
) -> None:
    pytest.importorskip("torch")
    import huggingface_hub.constants

    # The hub id is looked for in the cache only (the constant is read at import).
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    out = tmp_path / "reports"
    argv = ["train", "--set", setting.format(tmp=tmp_path), "--output-dir", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert err.startswith("error: ") and message in err and "model=tiny" in err
    assert not out.exists()


def test_a_chat_template_that_raises_exits_2_naming_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # jinja2's TemplateError reached the user as a traceback.
    pytest.importorskip("torch")
    from trainer.tiny import build_model, build_tokenizer

    tokenizer = build_tokenizer(["What is 2 + 3?"])
    tokenizer.chat_template = "{{ raise_exception('Conversation roles must alternate') }}"
    model = tmp_path / "model"
    build_model(tokenizer, seed=0).save_pretrained(model)
    tokenizer.save_pretrained(model)
    capsys.readouterr()  # the save's progress bars
    out = tmp_path / "reports"
    argv = ["train", str(tiny_config(tmp_path)), "--set", f"model={model}"]
    assert main([*argv, "--output-dir", str(out)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"error: model={model}, prompt of synthetic, problem " in err
    assert "chat template raised: Conversation roles must alternate" in err
    assert "Traceback" not in err and not out.exists()


def test_device_cuda_without_a_gpu_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert main(["train", "--set", "device=cuda", "--output-dir", str(tmp_path)]) == 2
    assert "torch sees no CUDA GPU here" in capsys.readouterr().err


TINY = """\
train_samples: 8
test_samples: 4
prompts_per_step: 4
num_generations: 4
max_new_tokens: 8
epochs: 1
pass_k: [1, 4]
engine: torch
"""


def tiny_config(tmp_path: Path) -> Path:
    """The TINY config as a file in `tmp_path`."""
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    return config


def test_train_both_schemes_then_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")  # comparison.png
    config = tiny_config(tmp_path)
    out = tmp_path / "reports"
    argv = ["train", str(config), "--schemes", "strict,lenient", "--output-dir", str(out)]
    assert main([*argv, "--name", "cmp"]) == 0
    text = capsys.readouterr().out
    assert "Runs side by side" in text and "zero_spread_mean" in text
    assert (out / "cmp" / "comparison.csv").exists() and (
        out / "cmp" / "strict" / "summary.md"
    ).exists()

    assert (
        main(
            [
                "report",
                str(out / "cmp" / "strict"),
                str(out / "cmp" / "lenient"),
                "--out",
                str(tmp_path / "cmp2"),
            ]
        )
        == 0
    )
    assert "Runs side by side" in capsys.readouterr().out
    assert (tmp_path / "cmp2" / "comparison.png").exists()
    assert main(["report", str(out / "cmp" / "lenient")]) == 0
    assert "Rewards: first and last steps" in capsys.readouterr().out


def test_a_bfloat16_run_says_so_and_keeps_float32_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch = pytest.importorskip("torch")
    out = tmp_path / "reports"
    argv = ["train", str(tiny_config(tmp_path)), "--set", "precision=bfloat16"]
    assert main([*argv, "--output-dir", str(out), "--name", "bf16"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # rich wraps lines
    assert "parameters in bfloat16 (autocast, float32 weights)" in text
    run = out / "bf16"
    assert "precision: bfloat16" in (run / "config.yaml").read_text()
    from transformers import AutoModelForCausalLM

    saved = AutoModelForCausalLM.from_pretrained(run / "model", dtype="auto")
    assert {p.dtype for p in saved.parameters()} == {torch.float32}


def data_file(tmp_path: Path, line: int, text: str) -> Path:
    """12 good problems as JSON lines, with line `line` replaced by `text`."""
    rows = [f'{{"question": "What is {i} + 1?", "answer": "#### {i + 1}"}}' for i in range(12)]
    rows[line - 1] = text
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(rows) + "\n")
    return data


def test_a_bad_data_row_stops_before_a_run_folder_exists_and_skip_trains_on_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    data = data_file(tmp_path, 5, '{"question": "What is 4 + 1?", "answer": "five"')  # cut short
    config = tiny_config(tmp_path)
    out = tmp_path / "reports"
    argv = ["train", str(config), "--set", f"dataset={data}", "--output-dir", str(out)]
    assert main([*argv, "--name", "run"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert f"{data}, line 5: not valid JSON" in err and "on_error=skip" in err
    assert not out.exists()  # nothing half-made to trip a later --resume

    assert main([*argv, "--set", "on_error=skip", "--name", "run"]) == 0
    text = capsys.readouterr().out.replace("\n", " ")
    assert "1 data row(s) skipped" in text
    listed = (out / "run" / "skipped_rows.jsonl").read_text().splitlines()
    assert len(listed) == 1 and '"where": "line 5"' in listed[0]


def test_repeated_questions_are_warned_about_at_the_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    rows = [
        f'{{"question": "What is {i % 6} + 1?", "answer": "#### {i % 6 + 1}"}}' for i in range(16)
    ]
    data = tmp_path / "twice.jsonl"
    data.write_text("\n".join(rows) + "\n")
    argv = ["train", str(tiny_config(tmp_path)), "--set", f"dataset={data}", "--set", "epochs=1"]
    assert main([*argv, "--set", "test_samples=2", "--output-dir", str(tmp_path / "out")]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "warning: 6 questions appear in more than one row (16 rows in all)" in text
    assert "training rows repeat a question of the test split" in text


def test_a_prompt_too_long_for_the_model_is_a_bad_row_named_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The tiny model's context is 512 positions; vLLM refused such a prompt mid-run with a
    # traceback, and the torch engine sampled past the positions the model knows.
    pytest.importorskip("torch")
    long = "Tom has 3 pens. " * 150
    data = data_file(tmp_path, 7, f'{{"question": "{long} What is 6 + 1?", "answer": "#### 7"}}')
    out = tmp_path / "reports"
    argv = ["train", str(tiny_config(tmp_path)), "--set", f"dataset={data}"]
    argv += ["--output-dir", str(out)]
    assert main([*argv, "--name", "run"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{data}, line 7: the prompt is " in err and "context of 512 tokens" in err
    assert "lower max_new_tokens, or set on_error=skip" in err
    assert not out.exists()

    assert main([*argv, "--set", "on_error=skip", "--name", "run"]) == 0
    listed = (out / "run" / "skipped_rows.jsonl").read_text().splitlines()
    assert len(listed) == 1 and '"where": "line 7"' in listed[0] and "context" in listed[0]


def test_out_of_gpu_memory_says_what_to_lower_and_how_to_go_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")

    def no_memory(*_: Any, **__: Any) -> None:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 18.50 GiB")

    monkeypatch.setattr("trainer.loop.train", no_memory)
    argv = ["train", "--output-dir", str(tmp_path), "--name", "big"]
    assert main(argv) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "out of GPU memory (CUDA out of memory. Tried to allocate 18.50 GiB)" in err
    assert "lower micro_batch_size" in err and "gradient_checkpointing=true" in err
    assert f"rewardkit train --resume {tmp_path / 'big'} --set micro_batch_size=N" in err


def test_a_custom_reward_that_raises_stops_training_with_its_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    (tmp_path / "fragile.py").write_text(
        "def fragile(completion, answer):\n    return 1.0 / completion.count('<answer>')\n"
    )
    scheme = tmp_path / "fragile.yaml"
    scheme.write_text("name: fragile\nrewards:\n  - {function: fragile.py:fragile}\n")
    config = tiny_config(tmp_path)
    out = tmp_path / "reports"
    argv = ["train", str(config), "--set", f"scheme={scheme}", "--output-dir", str(out)]
    assert main([*argv, "--name", "run"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "reward 'fragile' raised ZeroDivisionError: float division by zero" in err
    assert "fragile.py:2)" in err and f"rewardkit train --resume {out / 'run'}" in err


def test_an_interrupted_comparison_resumes_as_a_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ctrl-C in the second run of --schemes: the hint resumed that run alone, and the
    # comparison was never written; --resume of the comparison's folder was refused.
    pytest.importorskip("torch")
    import pandas as pd

    import trainer.loop

    config, out = tiny_config(tmp_path), tmp_path / "reports"
    argv = ["train", str(config), "--schemes", "strict,lenient", "--output-dir", str(out)]
    assert main([*argv, "--name", "whole"]) == 0
    real = trainer.loop.train

    def stopped_in_lenient(config: Any, root: Path, **kwargs: Any) -> Path:
        if config.scheme != "lenient":
            return real(config, root, **kwargs)

        def stop(step: int) -> None:
            raise KeyboardInterrupt

        return real(config, root, after_step=stop, **kwargs)

    monkeypatch.setattr(trainer.loop, "train", stopped_in_lenient)
    capsys.readouterr()
    assert main([*argv, "--name", "cmp"]) == 130
    err = " ".join(capsys.readouterr().err.split())
    assert f"continue the comparison with `rewardkit train --resume {out / 'cmp'}`" in err
    assert not (out / "cmp" / "comparison.csv").exists()
    assert main([*argv, "--name", "cmp"]) == 2  # the same command again says what to do
    assert f"or continue that comparison with `rewardkit train --resume {out / 'cmp'}`" in (
        " ".join(capsys.readouterr().err.split())
    )
    # stopped again while resuming: the same way on, not "nothing to resume"
    assert main(["train", "--resume", str(out / "cmp")]) == 130
    err = " ".join(capsys.readouterr().err.split())
    assert f"continue the comparison with `rewardkit train --resume {out / 'cmp'}`" in err
    monkeypatch.setattr(trainer.loop, "train", real)
    assert main(["train", "--resume", str(out / "cmp"), "--set", "learning_rate=1"]) == 2
    assert "drop those --set values" in " ".join(capsys.readouterr().err.split())
    assert main(["train", "--resume", str(out / "cmp")]) == 0
    text = capsys.readouterr().out.replace("\n", "")
    assert "(the run had finished: its report is redone)" in text  # strict's
    frames = [
        pd.read_csv(out / name / "comparison.csv").drop(columns=["run", "seconds"])
        for name in ("whole", "cmp")
    ]
    pd.testing.assert_frame_equal(frames[0], frames[1])
    # --set on a comparison's resume goes into its plan too, for runs begun after it
    assert main(["train", "--resume", str(out / "cmp"), "--set", "epochs=2"]) == 0
    assert "epochs: 2" in (out / "cmp" / "comparison.yaml").read_text()
    # ... but not when the runs refuse it: a run begun later would start with epochs=1
    assert main(["train", "--resume", str(out / "cmp"), "--set", "epochs=1"]) == 2
    assert "the run has reached epoch 2" in " ".join(capsys.readouterr().err.split())
    assert "epochs: 2" in (out / "cmp" / "comparison.yaml").read_text()


def test_runs_named_by_the_clock_in_one_second_get_folders_of_their_own(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two comparisons started in one second shared 20261202-131228-compare: one trained
    # its strict run there, then stopped; the folder's plan was one's, its CSV the other's.
    pytest.importorskip("torch")
    import time

    import trainer.cli
    import trainer.loop
    from trainer.config import ConfigError

    out = tmp_path / "reports"
    roots: list[Path] = []

    def begun(config: Any, root: Path, **kwargs: Any) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        (root / "config.yaml").write_text("begun")  # what a run writes first
        roots.append(root)
        return root

    monkeypatch.setattr(time, "strftime", lambda *_: "20261202-120000")
    monkeypatch.setattr(trainer.loop, "train", begun)
    monkeypatch.setattr(trainer.cli, "_compare", lambda *_: 0)
    argv = ["train", "--output-dir", str(out)]
    for extra in ([], [], ["--schemes", "strict,lenient"], ["--schemes", "strict,lenient"]):
        assert main([*argv, *extra]) == 0
    assert [str(r.relative_to(out)) for r in roots] == [
        "20261202-120000-lenient",
        "20261202-120000-lenient-2",
        "20261202-120000-compare/strict",
        "20261202-120000-compare/lenient",
        "20261202-120000-compare-2/strict",
        "20261202-120000-compare-2/lenient",
    ]
    # a run refused before it began leaves no folder behind
    before = sorted(p.name for p in out.iterdir())

    def refused(config: Any, root: Path, **kwargs: Any) -> Path:
        raise ConfigError("refused")

    monkeypatch.setattr(trainer.loop, "train", refused)
    assert main(argv) == 2
    assert main([*argv, "--schemes", "strict,lenient"]) == 2
    assert sorted(p.name for p in out.iterdir()) == before
    assert main(["train", "--output-dir", str(tmp_path / "new")]) == 2
    assert not (tmp_path / "new").exists()  # nor an --output-dir made for it


def test_an_interrupted_run_says_how_to_resume_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    import trainer.loop

    def interrupted(*_: Any, **__: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.loop, "train", interrupted)
    # Before the run folder exists (setup: loading the model, the data): nothing to resume.
    assert main(["train", "--output-dir", str(tmp_path), "--name", "run"]) == 130
    err = capsys.readouterr().err.replace("\n", " ")
    assert "interrupted before the run folder was written; nothing to resume" in err

    def interrupted_after_setup(config: Any, root: Path, **__: Any) -> None:
        root.mkdir(parents=True)
        (root / "config.yaml").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.loop, "train", interrupted_after_setup)
    assert main(["train", "--output-dir", str(tmp_path), "--name", "run"]) == 130
    err = capsys.readouterr().err.replace("\n", " ")
    resume = f"rewardkit train --resume {tmp_path / 'run'}"
    assert f"interrupted; continue from the last checkpoint with `{resume}`" in err


def test_the_resume_hint_is_quoted_for_the_shell(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # `--resume with space/run 2` pasted into a shell is two arguments.
    pytest.importorskip("torch")
    import trainer.loop

    def interrupted_after_setup(config: Any, root: Path, **__: Any) -> None:
        root.mkdir(parents=True)
        (root / "config.yaml").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.loop, "train", interrupted_after_setup)
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--output-dir", "with space", "--name", "run 2"]) == 130
    err = " ".join(capsys.readouterr().err.split())
    assert (
        "continue from the last checkpoint with `rewardkit train --resume 'with space/run 2'`"
        in err
    )


def test_a_terminated_run_says_how_to_resume_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # SIGTERM (timeout, docker stop, SLURM) ended the run without a word, exit -15.
    import os
    import signal
    import time

    pytest.importorskip("torch")
    import trainer.loop

    def unhandled(*_: Any) -> None:
        raise AssertionError("rewardkit train left SIGTERM to this test's handler")

    def terminated(config: Any, root: Path, **__: Any) -> None:
        root.mkdir(parents=True)
        (root / "config.yaml").write_text("{}")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises at the next bytecode, well before this ends

    monkeypatch.setattr(trainer.loop, "train", terminated)
    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        assert main(["train", "--output-dir", str(tmp_path), "--name", "run"]) == 143
        assert signal.getsignal(signal.SIGTERM) is unhandled  # put back as it was
    finally:
        signal.signal(signal.SIGTERM, previous)
    err = capsys.readouterr().err.replace("\n", " ")
    resume = f"rewardkit train --resume {tmp_path / 'run'}"
    assert f"terminated; continue from the last checkpoint with `{resume}`" in err


def test_a_ctrl_c_during_setups_garbage_collection_is_not_lost() -> None:
    # Python drops a KeyboardInterrupt raised in a finaliser that a collection runs: a
    # Ctrl-C in setup's 0.2 s gc.collect() was lost, and the run trained to its end.
    import os
    import signal

    pytest.importorskip("torch")
    from trainer.loop import _signals_held

    finished = False
    with pytest.raises(KeyboardInterrupt), _signals_held():
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(100_000):  # many chances for a handler to run here
            pass
        finished = True
    assert finished


def test_schemes_checks_every_folder_and_scheme_before_the_first_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "reports"
    (out / "cmp" / "lenient").mkdir(parents=True)
    (out / "cmp" / "lenient" / "x").write_text("taken")
    argv = ["train", "--output-dir", str(out), "--name", "cmp"]
    assert main([*argv, "--schemes", "strict,lenient"]) == 2
    assert "lenient already holds a run" in capsys.readouterr().err
    assert not (out / "cmp" / "strict").exists()  # strict did not train first
    assert main([*argv, "--schemes", ","]) == 2
    assert "names no scheme" in capsys.readouterr().err
    (tmp_path / "boom.py").write_text("def boom(completion, answer):\n    raise ValueError('x')\n")
    scheme = tmp_path / "boom.yaml"
    scheme.write_text("rewards:\n  - {function: boom.py:boom, max: 1}\n")
    assert main(["train", "--output-dir", str(out), "--schemes", f"strict,{scheme}"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "reward 'boom' raised ValueError" in err and "well-formed completion" in err
    assert sorted(p.name for p in out.iterdir()) == ["cmp"]  # no run folder left behind


def test_a_reward_that_fails_on_a_well_formed_completion_leaves_no_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    (tmp_path / "boom.py").write_text("def boom(completion, answer):\n    raise ValueError('x')\n")
    scheme = tmp_path / "boom.yaml"
    scheme.write_text("rewards:\n  - {function: boom.py:boom, max: 1}\n")
    out = tmp_path / "reports"
    argv = ["train", "--set", f"scheme={scheme}", "--output-dir", str(out), "--name", "run"]
    assert main(argv) == 2
    assert "well-formed completion" in capsys.readouterr().err.replace("\n", " ")
    assert not out.exists()


@pytest.mark.parametrize("name", ["../escaped", "a/b", "..", ".", " "])
def test_a_run_name_is_one_folder_inside_the_output_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    # --name ../escaped wrote the run beside --output-dir, not in it.
    pytest.importorskip("torch")
    out = tmp_path / "reports"
    for schemes in ([], ["--schemes", "strict,lenient"]):
        argv = ["train", str(tiny_config(tmp_path)), "--output-dir", str(out), "--name", name]
        assert main([*argv, *schemes]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert f"--name {name!r}: a run's name is one folder inside --output-dir" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.yaml"]


def test_resume_refuses_the_flags_of_a_new_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")  # without it the command stops at the missing train extra
    for extra in (["--name", "x"], ["--output-dir", "elsewhere"], ["--schemes", "strict"]):
        assert main(["train", "--resume", str(tmp_path), *extra]) == 2
        assert f"drop {extra[0]}" in capsys.readouterr().err


def test_a_run_records_absolute_paths_so_it_resumes_from_anywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch")
    work = tmp_path / "work"
    work.mkdir()
    rows = [f'{{"question": "What is {i} + 2?", "answer": "#### {i + 2}"}}' for i in range(12)]
    (work / "data.jsonl").write_text("\n".join(rows) + "\n")
    (work / "tiny.yaml").write_text(TINY + "dataset: data.jsonl\n")
    monkeypatch.chdir(work)
    assert main(["train", "tiny.yaml", "--output-dir", "runs", "--name", "run"]) == 0
    saved = (work / "runs" / "run" / "config.yaml").read_text()
    assert f"dataset: {work / 'data.jsonl'}" in saved
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--resume", "work/runs/run", "--set", "epochs=2"]) == 0
    text = capsys.readouterr().out.replace("\n", " ")
    assert "Epoch 2" in text and "resumed from the checkpoint at step 2 of 4" in text


def test_report_on_a_folder_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nothing")]) == 2  # was "not a run folder" too
    err = " ".join(capsys.readouterr().err.split())
    assert f"{tmp_path / 'nothing'}: no such folder; give the folder a `rewardkit train`" in err
    # a run killed in its first seconds has its config but no step table yet
    (tmp_path / "config.yaml").write_text("scheme: strict\n")
    assert main(["report", str(tmp_path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "without steps.parquet yet" in err and f"--resume {tmp_path}" in err


EXAMPLE_RUN = Path(__file__).resolve().parent.parent / "reports/example-strict-vs-lenient/lenient"


def test_report_of_one_run_writes_its_table_where_out_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --out with one run was ignored without a word.
    assert main(["report", str(EXAMPLE_RUN), "--out", str(tmp_path / "out")]) == 0
    lines = (tmp_path / "out" / "comparison.csv").read_text().splitlines()
    assert len(lines) == 2 and "lenient" in lines[1]
    assert "comparison.csv" in capsys.readouterr().out.replace("\n", "")


def test_a_run_without_matplotlib_does_not_claim_plots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trainer.report as report

    pytest.importorskip("matplotlib")  # for the second half
    run = tmp_path / "lenient"
    shutil.copytree(EXAMPLE_RUN, run)
    for png in run.glob("*.png"):
        png.unlink()
    monkeypatch.setattr(report, "_pyplot", lambda: None)
    written = report.write_report(run)
    assert [p.name for p in written] == ["summary.md"] and not list(run.glob("*.png"))
    summary = (run / "summary.md").read_text()
    assert report.NO_PLOTS in summary and "rewards.png" not in summary
    monkeypatch.undo()
    report.write_report(run)  # with matplotlib: the plots it drew, as the example lists them
    files = [
        t.split("## Files")[1] for t in ((r / "summary.md").read_text() for r in (run, EXAMPLE_RUN))
    ]
    assert files[0] == files[1] and "`pass_at_k.png`" in files[0]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda run: (run / "steps.parquet").write_text("not parquet"),
            "steps.parquet: not a readable parquet table",
        ),
        (
            lambda run: (run / "eval.parquet").write_bytes(b"PAR1"),
            "eval.parquet: not a readable parquet table",
        ),
        (lambda run: (run / "config.yaml").write_text("{bad"), "config.yaml: not readable YAML"),
        (lambda run: (run / "config.yaml").write_text("- 1\n"), "not a mapping of config keys"),
        (
            lambda run: _drop_column(run / "steps.parquet", "format_mean"),
            "steps.parquet: no column(s) format_mean",
        ),
        (
            lambda run: _drop_column(run / "eval.parquet", "value"),
            "eval.parquet: no column(s) value",
        ),
        # read by the comparison and summary.md: a KeyError traceback
        (
            lambda run: _drop_column(run / "steps.parquet", "seconds"),
            "steps.parquet: no column(s) seconds",
        ),
        (
            lambda run: _drop_column(run / "steps.parquet", "epoch"),
            "steps.parquet: no column(s) epoch",
        ),
    ],
)
def test_report_on_a_damaged_run_names_the_file_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], damage: Any, message: str
) -> None:
    run = tmp_path / "lenient"
    shutil.copytree(EXAMPLE_RUN, run)
    assert main(["report", str(run)]) == 0  # the committed run, as it is, reads
    capsys.readouterr()
    damage(run)
    assert main(["report", str(run)]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert err.startswith("error: ") and message in err, err
    assert "Traceback" not in err


def _drop_column(path: Path, column: str) -> None:
    import pandas as pd

    pd.read_parquet(path).drop(columns=[column]).to_parquet(path)


def test_an_output_dir_that_cannot_be_made_is_an_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("torch")
    from rewardkit.cli import main as rewardkit_main

    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    config = tiny_config(tmp_path)
    assert rewardkit_main(["train", str(config), "--output-dir", str(blocker / "runs")]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert f"error: {blocker}" in err and "check that the folder exists" in err


def test_report_tells_runs_of_the_same_name_apart_and_refuses_one_run_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    example = EXAMPLE_RUN.parent
    shutil.copytree(example / "strict", tmp_path / "a" / "run")
    shutil.copytree(example / "lenient", tmp_path / "b" / "run")
    runs = [str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run")]
    assert main(["report", *runs, "--out", str(tmp_path / "cmp")]) == 0
    assert "a/run" in capsys.readouterr().out
    import pandas as pd

    assert pd.read_csv(tmp_path / "cmp" / "comparison.csv")["run"].tolist() == ["a/run", "b/run"]
    assert main(["report", runs[0], runs[0], "--out", str(tmp_path / "cmp2")]) == 2
    assert "the same run given twice" in capsys.readouterr().err


def test_report_out_is_a_folder_and_a_file_name_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # --out cmp.csv wrote cmp.csv/comparison.csv.
    example = EXAMPLE_RUN.parent
    runs = [str(example / "strict"), str(example / "lenient")]
    assert main(["report", *runs, "--out", str(tmp_path / "cmp.csv")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "--out is the folder that comparison.csv and comparison.png are written in" in err
    assert f"this names a .csv file; give a folder, e.g. --out {tmp_path / 'cmp'}" in err
    assert not (tmp_path / "cmp.csv").exists()
    # one run: its whole report was printed first, then the error
    assert main(["report", runs[0], "--out", str(tmp_path / "cmp.csv")]) == 2
    assert capsys.readouterr().out == ""


def test_report_without_out_writes_beside_the_runs_or_here_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Runs in two folders wrote to their common ancestor, which can be / or far above both.
    example = EXAMPLE_RUN.parent
    shutil.copytree(example / "strict", tmp_path / "a" / "run")
    shutil.copytree(example / "lenient", tmp_path / "b" / "run")
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["report", str(tmp_path / "a" / "run"), str(tmp_path / "b" / "run")]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert (here / "comparison.csv").is_file() and not (tmp_path / "comparison.csv").exists()
    assert (
        f"the runs are not in one folder, so the comparison went to the current directory ({here})"
        in text
    )
    shutil.copytree(example / "strict", tmp_path / "a" / "other")
    runs = [str(tmp_path / "a" / "run"), str(tmp_path / "a" / "other")]
    assert main(["report", *runs]) == 0  # side by side: their folder
    assert (tmp_path / "a" / "comparison.csv").is_file()
    assert "replacing" not in capsys.readouterr().out
    assert main(["report", *runs]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert f"(replacing the {tmp_path / 'a' / 'comparison.csv'} that was there)" in text


def test_report_says_where_the_runs_configs_differ_beyond_the_scheme(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Runs of other lengths, seeds or models were compared side by side without a word.
    import pandas as pd

    example = EXAMPLE_RUN.parent
    for name in ("strict", "lenient"):
        shutil.copytree(example / name, tmp_path / name)
    config = tmp_path / "lenient" / "config.yaml"
    text = config.read_text().replace("max_new_tokens: 24", "max_new_tokens: 32")
    config.write_text(
        text.replace("seed: 0", "seed: 1").replace("micro_batch_size: 128", "micro_batch_size: 8")
    )
    runs = [str(tmp_path / "strict"), str(tmp_path / "lenient")]
    assert main(["report", *runs]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert (
        "warning: the runs' configs differ in more than the scheme (max_new_tokens: 24, 32;"
        " seed: 0, 1, in the order of the runs), so the comparison is not like for like" in out
    )
    frame = pd.read_csv(tmp_path / "comparison.csv")
    assert list(frame.columns[:5]) == [
        "run",
        "scheme",
        "config max_new_tokens",
        "config seed",
        "steps",
    ]
    assert frame["config max_new_tokens"].tolist() == [24, 32]
    assert (
        main(["report", *runs[:1], str(example / "lenient"), "--out", str(tmp_path / "same")]) == 0
    )
    assert "differ" not in capsys.readouterr().out  # a --schemes pair: only the scheme differs


def test_report_takes_a_comparison_folder_and_marks_an_incomplete_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A --schemes folder was "not a run folder"; a run stopped at step 20 of 96 read as
    # if it had finished.
    import pandas as pd

    cmp = tmp_path / "cmp"
    shutil.copytree(EXAMPLE_RUN.parent, cmp)
    assert main(["report", str(cmp)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Runs side by side" in out and "incomplete" not in out
    assert f"wrote {cmp / 'comparison.csv'}" in out  # beside its runs, as train writes it
    assert pd.read_csv(cmp / "comparison.csv")["run"].tolist() == ["strict", "lenient"]
    lenient = cmp / "lenient"
    steps = pd.read_parquet(lenient / "steps.parquet")
    steps.head(20).to_parquet(lenient / "steps.parquet")  # 6 epochs of 16 steps
    pd.read_parquet(lenient / "epochs.parquet").head(1).to_parquet(lenient / "epochs.parquet")
    assert main(["report", str(cmp)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"warning: {lenient} is incomplete (20 of 96 steps)" in out
    assert main(["report", str(lenient)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "lenient: scheme lenient, incomplete: 20 of 96 steps (it stopped before" in out
    (lenient / "epochs.parquet").unlink()
    steps.head(3).to_parquet(lenient / "steps.parquet")
    assert main(["report", str(lenient)]) == 0
    assert "incomplete: 3 steps, in epoch 1 of 6" in " ".join(capsys.readouterr().out.split())
    shutil.rmtree(cmp / "strict")  # a comparison stopped before its second run began
    (cmp / "comparison.yaml").write_text("schemes: [lenient, strict]\nconfig: {}\n")
    assert main(["report", str(cmp)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "the comparison's strict run has not begun" in out and "incomplete: 3 steps" in out


def test_report_tables_show_names_as_written() -> None:
    """Run folders and scheme names are text: `[b]` stays, `[/]` does not crash rich."""
    import pandas as pd
    from rich.console import Console

    from trainer.console import frame_table, render_comparison

    frame = pd.DataFrame({"run": ["runs[b]/strict", "x[/]"], "scheme": ["my[/]scheme", "s"]})
    console = Console(record=True, width=200)
    console.print(frame_table(frame, "t"))
    render_comparison(console, frame[["run"]].assign(final=[0.5, 1.0]))
    text = console.export_text()
    assert "runs[b]/strict" in text and "my[/]scheme" in text and "x[/]" in text


def test_report_tables_into_a_pipe_keep_every_number_whole() -> None:
    """Rich fits a table to 80 columns outside a terminal and cut 0.250 to "0.2…"."""
    import io

    import pandas as pd
    from rich.console import Console

    from trainer.console import frame_table, show

    frame = pd.DataFrame({f"greedy correctness {i}": [0.25] for i in range(12)})
    console = Console(file=io.StringIO(), width=80)
    show(console, frame_table(frame, "wide"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert text.count("0.250") == 12 and "…" not in text and console.width == 80


def test_a_run_whose_scheme_moved_or_changed_resumes_saying_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """config.yaml names the scheme file by its absolute path: once it moved, a resume
    failed with 'scheme file not found' and refused --set scheme=; and an edited reward
    resumed without a word, its steps then scored by two definitions."""
    pytest.importorskip("torch")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "short.py").write_text(
        "LIMIT = 200\ndef short(c, a):\n    return float(len(c) < LIMIT)\n"
    )
    (mine / "s.yaml").write_text("name: s\nrewards:\n  - {reward: correctness}\n"
                                 "  - {function: short.py:short, max: 1}\n")  # fmt: skip
    out = tmp_path / "reports"
    argv = ["train", str(tiny_config(tmp_path)), "--set", f"scheme={mine / 's.yaml'}"]
    assert main([*argv, "--output-dir", str(out), "--name", "run"]) == 0
    run = out / "run"
    moved = tmp_path / "moved"
    shutil.move(mine, moved)
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--set", "epochs=2"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "the run's scheme file is gone from where the run found it" in err
    assert f"--resume {run} --set scheme=NEW_PATH" in err
    new = ["--set", f"scheme={moved / 's.yaml'}"]
    assert main(["train", "--resume", str(run), "--set", "epochs=2", *new]) == 0
    out_text = capsys.readouterr().out
    assert "Epoch 2" in out_text and "changed since the checkpoint" not in out_text
    assert f"scheme: {moved / 's.yaml'}" in (run / "config.yaml").read_text()
    (moved / "short.py").write_text(
        "LIMIT = 10\ndef short(c, a):\n    return float(len(c) < LIMIT)\n"
    )
    assert main(["train", "--resume", str(run), "--set", "epochs=3"]) == 0
    said = capsys.readouterr().out.replace("\n", " ")
    assert "short changed since the checkpoint at step" in said
    # other rewards are not this run's scheme
    (moved / "s.yaml").write_text("name: s\nrewards:\n  - {reward: correctness}\n")
    assert main(["train", "--resume", str(run), "--set", "epochs=4"]) == 2
    err = capsys.readouterr().err.replace("\n", " ")
    assert "has the rewards correctness, and the run was trained with correctness, short" in err


def test_a_folder_another_process_trains_in_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two processes in one folder both appended to samples.jsonl (steps twice over) and
    # both said done. The lock another process holds is taken here on a second handle.
    pytest.importorskip("torch")
    pytest.importorskip("fcntl")
    from trainer.lock import FolderLock

    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    run = tmp_path / "runs" / "run"
    assert main(["train", str(config), "--output-dir", str(run.parent), "--name", "run"]) == 0
    capsys.readouterr()
    before = (run / "samples.jsonl").read_bytes()
    other = FolderLock.take(run)
    try:
        assert main(["train", "--resume", str(run), "--set", "epochs=2"]) == 2
        err = " ".join(capsys.readouterr().err.split())
        assert "another process (pid" in err and "is training in this folder" in err
        assert (run / "samples.jsonl").read_bytes() == before
        fresh = tmp_path / "runs" / "new"
        fresh.mkdir()
        busy = FolderLock.take(fresh)  # a new run of the same name, a moment earlier
        try:
            assert (
                main(["train", str(config), "--output-dir", str(run.parent), "--name", "new"]) == 2
            )
            assert "is training in this folder" in " ".join(capsys.readouterr().err.split())
        finally:
            busy.release()
    finally:
        other.release()
    assert main(["train", "--resume", str(run), "--set", "epochs=2"]) == 0  # free again
