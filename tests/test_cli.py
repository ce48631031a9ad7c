"""The `rewardkit` command as a user meets it: exit codes and the text on the screen."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rewardkit.cli import main

GROUPED = [
    # prompt p1: the model writes bare <answer> tags, always right -> strict format 0
    *[
        {
            "id": f"p1-{i}",
            "prompt_id": "p1",
            "completion": "<answer>360,000</answer>",
            "answer": "#### 360000",
        }
        for i in range(4)
    ],
    # prompt p2: mixed right and wrong, well formed
    *[
        {
            "id": f"p2-{i}",
            "prompt_id": "p2",
            "completion": f"<think>\n3 * 4\n</think>\n<answer>\n{12 + (i % 2)}\n</answer>\n",
            "answer": "#### 12",
        }
        for i in range(4)
    ],
]


@pytest.fixture
def grouped_file(tmp_path: Path) -> Path:
    path = tmp_path / "completions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in GROUPED))
    return path


def run(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_score_prints_every_table(capsys: Any, grouped_file: Path) -> None:
    code, out, _ = run(capsys, "score", str(grouped_file))
    assert code == 0
    for title in [
        "Rewards per scheme",
        "strict against lenient",
        "Why strict format is below its maximum",
        "zero reward spread",
        "pass@k",
    ]:
        assert title in out, title
    assert "no_think_tag" in out
    assert "What stands out" in out


def test_score_json_summary(capsys: Any, grouped_file: Path) -> None:
    code, out, _ = run(capsys, "score", str(grouped_file), "--json", "--k", "1,2,4")
    assert code == 0
    doc = json.loads(out)
    assert doc["rows"] == 8
    assert doc["input"]["rows_scored"] == 8
    stats = {(s["scheme"], s["reward"]): s for s in doc["stats"]}
    assert stats[("strict", "format")]["mean"] == pytest.approx(0.25)  # only p2 is well formed
    ties = {(t["scheme"], t["reward"]): t for t in doc["group_ties"]}
    assert ties[("strict", "correctness")]["all_max"] == 0.5  # p1: every sample right
    passk = {(p["scheme"], p["k"]): p["pass_at_k"] for p in doc["pass_at_k"]}
    assert passk[("strict", 1)] == pytest.approx((4 / 4 + 2 / 4) / 2)
    assert passk[("strict", 4)] == 1.0
    assert doc["comparison"]["schemes"] == ["strict", "lenient"]


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_out_writes_the_documented_columns(
    capsys: Any, grouped_file: Path, tmp_path: Path, suffix: str
) -> None:
    out_path = tmp_path / f"scores{suffix}"
    code, _, err = run(capsys, "score", str(grouped_file), "--out", str(out_path))
    assert code == 0 and "wrote 16 rows" in err
    if suffix == ".parquet":
        frame = pd.read_parquet(out_path)
    elif suffix == ".csv":
        frame = pd.read_csv(out_path)
    else:
        frame = pd.read_json(out_path, lines=True)
    for column in ["line", "id", "scheme", "correctness", "digit", "format", "mark", "total"]:
        assert column in frame.columns
    for reward in ["correctness", "digit", "format", "mark"]:
        assert f"{reward}_reason" in frame.columns
    assert len(frame) == 16 and frame["line"].min() == 1


@pytest.mark.parametrize("name", ["val[step=40].csv", "run[/]x.csv"])
def test_out_path_with_brackets_is_printed_as_given(
    capsys: Any, grouped_file: Path, tmp_path: Path, name: str
) -> None:
    # Printed as rich markup, "[step=40]" vanished from the path and "[/]" was a traceback.
    out_path = tmp_path / name
    out_path.parent.mkdir(exist_ok=True)
    code, _, err = run(capsys, "score", str(grouped_file), "--out", str(out_path), "--json")
    assert code == 0 and out_path.is_file()
    assert f"wrote 16 rows to {out_path}\n" in err


def test_one_scheme(capsys: Any, grouped_file: Path) -> None:
    code, out, _ = run(capsys, "score", str(grouped_file), "--scheme", "lenient", "--json")
    assert code == 0
    doc = json.loads(out)
    assert {s["scheme"] for s in doc["stats"]} == {"lenient"}
    assert doc["comparison"] is None


def test_unknown_scheme_lists_valid_names(capsys: Any, grouped_file: Path) -> None:
    code, _, err = run(capsys, "score", str(grouped_file), "--scheme", "relaxed")
    assert code == 2
    assert "strict, lenient" in err


def test_bad_line_exit_2_with_file_line_and_fix(capsys: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"completion": "1", "answer": "1"}\n{"completion": "1", "answr": "1"}\n')
    code, _, err = run(capsys, "score", str(path))
    assert code == 2
    assert "line 2" in err and "--answer-key" in err and "--on-error skip" in err
    assert "Traceback" not in err


def test_skip_reports_what_was_skipped(capsys: Any, tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"completion": "1", "answer": "1"}\nnot json\n{"completion": "2", "answer": "2"}\n'
    )
    code, out, err = run(capsys, "score", str(path), "--on-error", "skip")
    assert code == 0
    assert "1 line(s) skipped" in err
    assert "invalid_json" in out
    assert "2 rows scored" in out


def test_missing_file_exit_2(capsys: Any, tmp_path: Path) -> None:
    code, _, err = run(capsys, "score", str(tmp_path / "nope.jsonl"))
    assert code == 2 and "no such file" in err


def test_bad_usage_exit_2(capsys: Any, grouped_file: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["score", str(grouped_file), "--workers", "0"])
    assert exit_info.value.code == 2
    code, _, err = run(capsys, "score", str(grouped_file), "--out", "scores.xlsx")
    assert code == 2 and ".parquet" in err


def test_rewards_lists_reasons(capsys: Any) -> None:
    code, out, _ = run(capsys, "rewards")
    assert code == 0 and "missing_newline_after_think" in out and "correctness" in out


def test_console_script_runs_without_torch(grouped_file: Path) -> None:
    """`rewardkit score` must not import torch: the core install is light."""
    code = (
        "import sys; from rewardkit.cli import main; "
        f"rc = main(['score', {str(grouped_file)!r}, '--json']); "
        "assert 'torch' not in sys.modules, 'torch was imported'; sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_python_dash_m_rewardkit_is_the_command(grouped_file: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rewardkit", "score", str(grouped_file), "--json"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] > 0


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_a_reader_that_stops_early_ends_the_command_quietly(json_flag: list[str]) -> None:
    """`rewardkit score f | head`: no traceback, no error line, exit 1, as rich's own tables."""
    code = "import sys; from rewardkit.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "score", "examples/completions.jsonl", *json_flag]
    reader = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert reader.stdout is not None and reader.stderr is not None
    reader.stdout.close()  # what `head` does once it has its lines; here before any write
    stderr = reader.stderr.read().decode()
    assert reader.wait(timeout=60) == 1
    assert "Traceback" not in stderr and "error" not in stderr.lower(), stderr


def test_golden_check_of_a_users_own_scheme(capsys: Any) -> None:
    """The documented CI job for a user's scheme with a custom module:function reward."""
    args = ["--scheme", "examples/my_scheme.yaml", "--cases", "examples/golden_cases.jsonl"]
    code, out, _ = run(capsys, "golden", "check", *args, "--expected", "examples/golden_expected")
    assert code == 0, out
    assert "my_scheme" in out


def test_golden_check_fails_on_a_changed_value(capsys: Any, tmp_path: Path) -> None:
    import shutil

    expected = tmp_path / "expected"
    shutil.copytree("examples/golden_expected", expected)
    path = expected / "my_scheme.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[0])
    record["total"] += 1
    lines[0] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    args = ["--scheme", "examples/my_scheme.yaml", "--cases", "examples/golden_cases.jsonl"]
    code, out, _ = run(capsys, "golden", "check", *args, "--expected", str(expected))
    assert code == 1
    assert record["id"] in out


def test_a_place_that_cannot_be_written_is_an_error_naming_it(tmp_path: Path, capsys: Any) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    root = Path(__file__).resolve().parent.parent
    example = str(root / "examples" / "completions.jsonl")
    runs = root / "reports" / "example-strict-vs-lenient"
    for argv in (
        ["score", example, "--out", str(blocker / "out.csv")],
        ["report", str(runs / "strict"), str(runs / "lenient"), "--out", str(blocker / "cmp")],
    ):
        code, _, err = run(capsys, *argv)
        assert code == 2 and f"{blocker} is a file, not a folder" in err, err
    code, _, err = run(capsys, "golden", "update", "--expected", str(blocker / "expected"))
    assert code == 2
    assert f"error: {blocker}" in err and "check that the folder exists" in err, err
    assert "Traceback" not in err


def test_out_refuses_the_input_file_and_a_folder(capsys: Any, grouped_file: Path) -> None:
    before = grouped_file.read_bytes()
    same = grouped_file.parent / "." / grouped_file.name
    code, _, err = run(capsys, "score", str(grouped_file), "--out", str(same))
    assert code == 2 and "is the input file" in err
    assert grouped_file.read_bytes() == before
    folder = grouped_file.parent / "scores.csv"
    folder.mkdir()
    code, _, err = run(capsys, "score", str(grouped_file), "--out", str(folder))
    assert code == 2 and "is a folder" in err
    assert not list(grouped_file.parent.glob(".*.tmp"))


def test_a_scheme_named_twice_is_an_error(capsys: Any, grouped_file: Path) -> None:
    code, _, err = run(
        capsys, "score", str(grouped_file), "--scheme", "strict", "--scheme", "strict"
    )
    assert code == 2 and "two schemes are both called 'strict'" in err
    assert "Traceback" not in err
    code, _, err = run(capsys, "golden", "check", "--scheme", "strict", "--scheme", "strict")
    assert code == 2 and "two schemes are both called 'strict'" in err


def test_text_from_the_data_is_shown_as_written(capsys: Any, tmp_path: Path) -> None:
    tagged = "<think>\nx\n</think>\n<answer>\n5\n</answer>\n"
    rows = [
        {"id": f"gsm8k[test]-{i}", "prompt_id": "p[/]", "answer": "5",
         "completion": "<answer>5</answer>" if i else tagged}
        for i in range(4)
    ] + [{"completion": "x", "[/]": "5"}]  # fmt: skip
    path = tmp_path / "a[bold]b.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, err = run(capsys, "score", str(path), "--on-error", "skip")
    assert code == 0, err
    assert "gsm8k[test]-1" in out and "a[bold]b.jsonl" in out and "[/]" in out


def test_null_group_fields_are_no_group(capsys: Any, tmp_path: Path) -> None:
    rows = [
        {"prompt_id": None, "prompt": f"q{i}", "completion": "<answer>5</answer>", "answer": "5"}
        for i in range(3)
    ] + [{"prompt_id": None, "prompt": None, "completion": "<answer>5</answer>", "answer": "5"}]
    path = tmp_path / "null.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, _ = run(capsys, "score", str(path), "--json")
    doc = json.loads(out)
    assert code == 0 and doc["groups"] == 3 and doc["largest_group"] == 1
    assert doc["ungrouped_rows"] == 1
    code, out, _ = run(capsys, "score", str(path))
    assert "Every group has one sample (3 groups)" in out
    assert "1 of 4 rows have no prompt_id or prompt" in out
    # pass@1 is the accuracy, defined with one sample per prompt; pass@2 is not.
    assert "pass@k from group" in out and "pass@1" in out and "pass@2" not in out


def test_no_groups_points_to_the_group_key(capsys: Any, tmp_path: Path) -> None:
    # GSM8K-style rows name their prompt `question`: the note says how to group by it.
    rows = [{"question": "q", "completion": "#### 5", "answer": "5"} for _ in range(2)]
    path = tmp_path / "gsm.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, out, _ = run(capsys, "score", str(path))
    assert code == 0 and "No groups" in " ".join(out.split())
    assert "--group-key FIELD" in " ".join(out.split())
    code, out, _ = run(capsys, "score", str(path), "--group-key", "question", "--json")
    assert code == 0 and json.loads(out)["groups"] == 1


def test_a_k_no_group_reaches_says_so(capsys: Any, grouped_file: Path) -> None:
    code, out, _ = run(capsys, "score", str(grouped_file), "--k", "1,16")
    assert code == 0
    assert "pass@16: no group has that many samples (the largest has 4)" in out


def test_an_id_key_no_row_has_is_a_warning(capsys: Any, grouped_file: Path) -> None:
    code, _, err = run(capsys, "score", str(grouped_file), "--id-key", "uid")
    assert code == 0 and "no row has a field 'uid' (--id-key)" in err


def test_examples_must_not_be_negative(capsys: Any, grouped_file: Path) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["score", str(grouped_file), "--examples", "-1"])
    assert stop.value.code == 2


def test_ctrl_c_while_the_command_line_is_read_is_an_exit_not_a_traceback(
    capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rewardkit.cli

    def interrupted() -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(rewardkit.cli, "build_parser", interrupted)
    assert main(["score", "x.jsonl"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_the_command_imports_only_the_standard_library_before_main() -> None:
    # the console script imports rewardkit.cli outside main's Ctrl-C handler: keep it light
    code = "import sys, rewardkit.cli; print([m for m in ('rich', 'pandas') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_completion_prefix_scores_a_run_as_its_rewards_did(tmp_path: Path, capsys: Any) -> None:
    # Trained with reward_funcs(..., completion_prefix="<think>\n"): the template wrote the
    # <think> into the prompt, so the logged completions lack it.
    from rewardkit.integrations.trl import reward_funcs

    reply = "8*9\n</think>\n<answer>\n72\n</answer>\n"
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"completion": reply, "answer": "72"}) + "\n")
    logged = reward_funcs("strict", completion_prefix="<think>\n")[2]
    assert logged(prompts=["q"], completions=[reply], answer=["72"]) == [0.5]
    for argv, value in (([], 0.0), (["--completion-prefix", "<think>\\n"], 0.5)):
        assert main(["score", str(path), "--scheme", "strict", "--json", *argv]) == 0
        stats = json.loads(capsys.readouterr().out)["stats"]
        assert [s["mean"] for s in stats if s["reward"] == "format"] == [value]


def test_golden_for_a_scheme_of_ones_own_wants_a_folder_of_ones_own(capsys: Any) -> None:
    # the default --expected is rewardkit's own golden/expected: `update` wrote the user's
    # file into the package, and `check` said "missing; run rewardkit golden update"
    import rewardkit.golden as golden

    before = sorted(p.name for p in golden.DEFAULT_EXPECTED.iterdir())
    for action in ("check", "update"):
        code, _, err = run(capsys, "golden", action, "--scheme", "examples/my_scheme.yaml")
        assert code == 2
        assert "examples/my_scheme.yaml is a scheme of your own" in err
        assert "pass --expected DIR" in err
    assert sorted(p.name for p in golden.DEFAULT_EXPECTED.iterdir()) == before


def test_golden_cases_of_ones_own_want_a_folder_of_ones_own(capsys: Any, tmp_path: Path) -> None:
    # `update --cases mine.jsonl` without --expected replaced rewardkit's 184 recorded cases
    # per scheme with the user's one, and `check`'s advice ("with the same --cases") led there
    import rewardkit.golden as golden

    mine = tmp_path / "mine.jsonl"
    mine.write_text(
        json.dumps({"id": "mine", "completion": "<answer>5</answer>", "answer": "#### 5"})
    )
    before = {p.name: p.read_bytes() for p in golden.DEFAULT_EXPECTED.iterdir()}
    for action in ("check", "update"):
        code, _, err = run(capsys, "golden", action, "--cases", str(mine))
        assert code == 2
        assert f"{mine} holds cases of your own" in " ".join(err.split())
        assert "pass --expected DIR" in err
    assert {p.name: p.read_bytes() for p in golden.DEFAULT_EXPECTED.iterdir()} == before
    # a mistyped path is not found, not refused as one's own
    code, _, err = run(capsys, "golden", "check", "--cases", str(tmp_path / "mien.jsonl"))
    assert code == 2 and "cases file not found" in err and "of your own" not in err
    # naming rewardkit's own cases file is not a file of one's own
    code, out, _ = run(capsys, "golden", "check", "--cases", str(golden.DEFAULT_CASES))
    assert code == 0, out


def test_pass_at_k_below_pass_at_1_from_unequal_groups_is_explained(
    capsys: Any, tmp_path: Path
) -> None:
    # 10 of 10 right in one group, 0 of 2 in another: pass@1 83.3% (over samples) and
    # pass@2 50.0% (over groups) were printed without a word on why the curve went down
    right = "<think>\n2+3\n</think>\n<answer>\n5\n</answer>\n"
    rows = [{"prompt_id": "a", "completion": right, "answer": "5"}] * 10
    rows += [{"prompt_id": "b", "completion": right, "answer": "6"}] * 2
    path = tmp_path / "uneven.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code, out, _ = run(capsys, "score", str(path), "--scheme", "strict", "--k", "1,2")
    assert code == 0
    flat = " ".join(out.split())
    assert "83.3%" in flat and "50.0%" in flat
    assert "strict: pass@k falls as k grows because the groups differ in size" in flat
    # between two k > 1 too: 2 of 2, 0 of 4 and 2 of 4 give 61.1% at k=2, 50.0% at k=4
    rows = [{"prompt_id": "a", "completion": right, "answer": "5"}] * 2
    rows += [{"prompt_id": "b", "completion": right, "answer": "6"}] * 4
    rows += [{"prompt_id": "c", "completion": right, "answer": a} for a in "5566"]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code, out, _ = run(capsys, "score", str(path), "--scheme", "strict", "--k", "2,4")
    flat = " ".join(out.split())
    assert "61.1%" in flat and "50.0%" in flat and "falls as k grows" in flat
    # equal groups: no such line
    path.write_text("".join(json.dumps(row) + "\n" for row in rows[:2] + rows[10:]))
    code, out, _ = run(capsys, "score", str(path), "--scheme", "strict", "--k", "1,2")
    assert code == 0 and "falls below" not in out


def test_pass_at_k_out_of_every_groups_reach_is_said(capsys: Any) -> None:
    # --k 20 where the largest group has 8: the pass@k table vanished without a word
    code, out, _ = run(capsys, "score", "examples/completions.jsonl", "--k", "20")
    assert code == 0
    assert "pass@20: no group has that many samples (the largest has 8)" in out.replace("\n", " ")


def test_a_trainer_module_of_the_users_own_breaks_only_train(tmp_path: Path) -> None:
    # rewardkit's trainer is the top-level package `trainer`: a trainer.py in the working
    # folder came first for `python -m rewardkit`, was run, and broke every command.
    (tmp_path / "trainer.py").write_text("open('imported', 'w').close()\n")
    example = Path(__file__).resolve().parent.parent / "examples" / "completions.jsonl"

    def rewardkit(*argv: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "rewardkit", *argv]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)

    done = rewardkit("score", str(example), "--json")
    assert done.returncode == 0, done.stderr
    done = rewardkit("train", "-h")
    assert done.returncode == 2
    message = " ".join(done.stderr.split())
    assert f"the module `trainer` Python finds first is {tmp_path / 'trainer.py'}" in message
    assert "rename yours, or run rewardkit from another folder" in message
    assert not (tmp_path / "imported").exists()  # the user's module was never run


def test_a_trainer_folder_without_init_is_named(tmp_path: Path) -> None:
    # A namespace package: the error said rewardkit's trainer was missing from this
    # installation and to reinstall, which cannot help.
    (tmp_path / "trainer").mkdir()
    (tmp_path / "trainer" / "my_train.py").write_text("print(1)\n")
    command = [sys.executable, "-m", "rewardkit", "train", "-h"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True)
    message = " ".join(done.stderr.split())
    if "usage: rewardkit train" in done.stdout:  # an install whose trainer comes first
        pytest.skip("this installation finds its own trainer before a namespace package")
    assert done.returncode == 2
    assert f"is the folder {tmp_path / 'trainer'} (a namespace package)" in message


def test_a_trainer_package_installed_over_rewardkits_is_named(
    monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    import rewardkit.cli

    assert rewardkit.cli.trainer_problem() is None  # this checkout's own
    # Another distribution's trainer/__init__.py in its place (PyPI has one): no mark.
    monkeypatch.setattr(rewardkit.cli, "_TRAINER_MARK", "a line no file holds")
    problem = rewardkit.cli.trainer_problem()
    assert problem is not None and "another installed package named `trainer`" in problem
    code, out, err = run(capsys, "report", "somewhere")
    assert code == 2 and "`rewardkit report` is unavailable" in " ".join(err.split())
    code, out, _ = run(capsys, "rewards")  # the rest of rewardkit works as ever
    assert code == 0 and "correctness" in out


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_reward_that_prints_does_not_break_json(tmp_path: Path, workers: str) -> None:
    # A debugging print() in a custom reward went to stdout, into the --json document.
    (tmp_path / "loud.py").write_text(
        "def loud(completion, answer):\n    print('DEBUG', completion)\n    return 1.0\n"
    )
    (tmp_path / "s.yaml").write_text('rewards:\n  - {function: "loud.py:loud", max: 1}\n')
    rows = "".join(json.dumps({"completion": "x", "answer": "1"}) + "\n" for _ in range(4))
    (tmp_path / "c.jsonl").write_text(rows)
    command = [sys.executable, "-m", "rewardkit", "score", "c.jsonl", "--scheme", "s.yaml"]
    done = subprocess.run(
        [*command, "--json", "--workers", workers], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["input"]["rows_scored"] == 4
    assert "DEBUG x" in done.stderr
