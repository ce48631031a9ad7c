"""Readers of other tools' files: each on its hand-written fixture, detection, errors, the CLI."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rewardkit import cli
from rewardkit.readers import FORMATS, detect_format, read_rows, score_format
from rewardkit.schemes import LENIENT, STRICT
from rewardkit.score import InputError, Keys, score_rows

FIXTURES = Path(__file__).parent / "fixtures" / "readers"
LM_EVAL = FIXTURES / "lm_eval_samples_gsm8k.jsonl"
TRL_PARQUET = FIXTURES / "trl_completions.parquet"
TRL_CSV = FIXTURES / "trl_completions.csv"
VERL = FIXTURES / "verl_generations.jsonl"
CHAT = FIXTURES / "chat.jsonl"
NATIVE = Keys()  # each format's own fields


def rows_of(path: Path, fmt: str, keys: Keys = NATIVE) -> list[tuple[int, dict[str, Any]]]:
    """Every row, failing the test on a row the reader could not read."""
    rows = list(read_rows(path, fmt, keys))
    errors = [r for _, r in rows if isinstance(r, InputError)]
    assert not errors, errors
    return [(line, r) for line, r in rows if not isinstance(r, InputError)]


def errors_of(path: Path, fmt: str, keys: Keys = NATIVE) -> list[InputError]:
    return [r for _, r in read_rows(path, fmt, keys) if isinstance(r, InputError)]


def write_lines(path: Path, records: list[Any]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


# --- each reader on its fixture ------------------------------------------------------------


def test_lm_eval_reads_every_response_once_and_groups_by_doc() -> None:
    rows = rows_of(LM_EVAL, "lm-eval")
    # 3 docs x 3 repeats; the 3 flexible-extract lines repeat the strict-match responses.
    assert len(rows) == 9
    assert [line for line, _ in rows] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert [r["id"] for _, r in rows[:3]] == ["0#0", "0#1", "0#2"]
    assert [r["prompt_id"] for _, r in rows] == ["0"] * 3 + ["1"] * 3 + ["2"] * 3
    first = rows[0][1]
    assert first["completion"].endswith("So it made 42 * 3 = $126.\n#### 126")
    assert first["answer"].endswith("#### 126")  # `target`: the worked solution
    assert first["prompt"].startswith("Question: A bakery sells muffins")
    assert first["prompt"].endswith("\nAnswer:")


def test_lm_eval_answer_key_reads_the_doc(tmp_path: Path) -> None:
    line = json.loads(LM_EVAL.read_text().splitlines()[0])
    line["doc"]["final"] = "126"
    path = write_lines(tmp_path / "samples_gsm8k_x.jsonl", [line])
    rows = rows_of(path, "lm-eval", Keys(answer="final"))
    assert {r["answer"] for _, r in rows} == {"126"}


def test_lm_eval_single_response_keeps_the_doc_id(tmp_path: Path) -> None:
    line = json.loads(LM_EVAL.read_text().splitlines()[0])
    line["resps"] = [["#### 126"]]
    line["arguments"] = [["Question: ...\nAnswer:", {"until": ["Question:"]}]]  # unsaved form
    rows = rows_of(write_lines(tmp_path / "s.jsonl", [line]), "lm-eval")
    assert [(r["id"], r["prompt"]) for _, r in rows] == [("0", "Question: ...\nAnswer:")]


def test_lm_eval_filtered_resps_are_a_group_per_filter(tmp_path: Path) -> None:
    # filtered_resps differs between a doc's filter lines: none is a repeat of another.
    lines = [json.loads(line) for line in LM_EVAL.read_text().splitlines()]
    path = write_lines(tmp_path / "s.jsonl", lines)
    rows = rows_of(path, "lm-eval", Keys(completion="filtered_resps"))
    per_line = sum(len(line["filtered_resps"]) for line in lines)
    assert len(rows) == per_line == 6
    groups = {r["prompt_id"] for _, r in rows}
    assert groups == {f"{d}/{f}" for d in "012" for f in ("strict-match", "flexible-extract")}
    assert len({r["id"] for _, r in rows}) == len(rows)


def test_lm_eval_id_key_names_the_rows(tmp_path: Path) -> None:
    line = json.loads(LM_EVAL.read_text().splitlines()[0])
    line["doc_hash"] = "abc"
    rows = rows_of(write_lines(tmp_path / "s.jsonl", [line]), "lm-eval", Keys(id="doc_hash"))
    assert [r["id"] for _, r in rows] == ["abc#0", "abc#1", "abc#2"]
    assert {r["prompt_id"] for _, r in rows} == {"0"}  # still grouped by doc


def test_lm_eval_empty_resps_is_a_bad_line(tmp_path: Path) -> None:
    line = json.loads(LM_EVAL.read_text().splitlines()[0])
    line["resps"] = [[]]
    (error,) = errors_of(write_lines(tmp_path / "s.jsonl", [line]), "lm-eval")
    assert error.code == "missing_completion" and "holds no response" in error.message


@pytest.mark.parametrize(
    ("fmt", "native", "given"),
    [("verl", "gts", "answer"), ("lm-eval", "target", "answer"), ("chat", "answer", "gold")],
)
def test_a_named_answer_key_is_read_even_where_it_is_another_formats_own(
    tmp_path: Path, fmt: str, native: str, given: str
) -> None:
    # `--answer-key answer` on a verl dump once meant "the format's own" (gts), and the
    # error then asked for the flag the user had passed.
    source = {"verl": VERL, "lm-eval": LM_EVAL, "chat": CHAT}[fmt]
    line = json.loads(source.read_text().splitlines()[0])
    line.pop(native, None)
    line[given] = "#### 7"
    rows = rows_of(write_lines(tmp_path / "x.jsonl", [line]), fmt, Keys(answer=given))
    assert {r["answer"] for _, r in rows} == {"#### 7"}


def test_verl_completion_key_completion_reads_that_field(tmp_path: Path) -> None:
    line = json.loads(VERL.read_text().splitlines()[0])
    line["completion"] = "<answer>9</answer>"
    path = write_lines(tmp_path / "40.jsonl", [line])
    rows = rows_of(path, "verl", Keys(completion="completion"))
    assert rows[0][1]["completion"] == "<answer>9</answer>"


def test_chat_without_a_prompt_is_in_no_group(tmp_path: Path) -> None:
    lines = [
        {"messages": [{"role": "assistant", "content": f"<answer>{n}</answer>"}], "answer": n}
        for n in (5, 9, 2)
    ]
    rows = rows_of(write_lines(tmp_path / "c.jsonl", lines), "chat")
    assert [r.get("prompt_id") for _, r in rows] == [None, None, None]


def test_trl_parquet_rows_groups_and_message_lists() -> None:
    rows = rows_of(TRL_PARQUET, "trl")
    assert len(rows) == 8
    assert [line for line, _ in rows] == list(range(1, 9))  # table row numbers
    assert [r["answer"] for _, r in rows] == ["300"] * 4 + ["1100"] * 4  # log_extra column
    first = rows[0][1]
    # TRL's conversational completion [{"role": "assistant", ...}] becomes its text.
    assert first["completion"].startswith("<think>\nWeekdays: 5 * 12 = 60 pages.")
    assert [m["role"] for m in first["prompt"]] == ["system", "user"]
    groups = [r["prompt_id"] for _, r in rows]
    assert len(set(groups)) == 2 and groups[0].startswith("25:")  # step : prompt digest
    assert groups[:4] == [groups[0]] * 4


def test_trl_csv_reads_the_same_rows_as_the_parquet() -> None:
    parquet = rows_of(TRL_PARQUET, "trl")
    csv_rows = rows_of(TRL_CSV, "trl")
    # Each CSV record spans several lines (newlines inside quotes): lines are where it starts.
    assert [line for line, _ in csv_rows][:2] == [2, 3]
    assert [r for _, r in csv_rows] == [r for _, r in parquet]


def test_verl_maps_output_gts_input_and_groups_by_step_and_input() -> None:
    rows = rows_of(VERL, "verl")
    assert len(rows) == 8
    first = rows[0][1]
    assert first["completion"].endswith("42 * 3 = 126 dollars.\n#### 126")
    assert first["answer"] == "126"
    assert first["prompt"].startswith("system\nYou are Qwen")
    groups = [r["prompt_id"] for _, r in rows]
    assert len(set(groups)) == 4  # val_kwargs.n = 2: two samples per prompt
    assert groups[0] == groups[1] != groups[2] and groups[0].startswith("40:")
    assert [r["answer"] for _, r in rows][-2:] == ["5.25", "5.25"]


def test_chat_reads_the_last_assistant_message() -> None:
    rows = {r["id"]: r for _, r in rows_of(CHAT, "chat")}
    assert len(rows) == 6
    assert rows["chat-0"]["completion"].endswith("<answer>240</answer>")
    assert [m["role"] for m in rows["chat-0"]["prompt"]] == ["system", "user"]
    # A multi-turn chat: the prompt is everything before the last assistant message.
    assert rows["chat-3"]["completion"] == "3600 / 10 = 360 bags. <answer>360</answer>"
    assert [m["role"] for m in rows["chat-3"]["prompt"]] == [
        "system",
        "user",
        "assistant",
        "user",
    ]
    assert rows["chat-3"]["answer"] == "360"  # a JSON number
    # Content parts are joined.
    assert rows["chat-2"]["completion"].endswith("20 - 14.75 = <answer>$5.25</answer>")
    # The same prompt is one group; a longer conversation is another.
    assert rows["chat-0"]["prompt_id"] == rows["chat-1"]["prompt_id"]
    assert rows["chat-3"]["prompt_id"] != rows["chat-4"]["prompt_id"]


def test_jsonl_reader_maps_the_keys(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "c.jsonl",
        [{"text": "<answer>4</answer>", "gold": 4, "uid": 9, "prompt": "2+2?"}],
    )
    rows = rows_of(path, "jsonl", Keys(completion="text", answer="gold", id="uid"))
    assert rows[0][1]["completion"] == "<answer>4</answer>"
    assert (rows[0][1]["answer"], rows[0][1]["id"]) == ("4", "9")


def test_group_key_overrides_the_formats_group(tmp_path: Path) -> None:
    lines = [json.loads(line) for line in VERL.read_text().splitlines()]
    for index, line in enumerate(lines):
        line["uid"] = f"u{index % 2}"
    path = write_lines(tmp_path / "40.jsonl", lines)
    rows = rows_of(path, "verl", Keys(group="uid"))
    assert {r["prompt_id"] for _, r in rows} == {"u0", "u1"}


@pytest.mark.parametrize(
    ("path", "fmt", "groups"),
    [(LM_EVAL, "lm-eval", 3), (TRL_PARQUET, "trl", 2), (VERL, "verl", 4), (CHAT, "chat", 4)],
)
def test_score_rows_scores_each_fixture_by_group(path: Path, fmt: str, groups: int) -> None:
    result = score_rows(read_rows(path, fmt), [STRICT, LENIENT], source=str(path))
    assert result.skipped == []
    assert result.frame["group"].nunique() == groups
    assert set(result.frame["scheme"]) == {"strict", "lenient"}


# --- detection -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "fmt", "because"),
    [
        (LM_EVAL, "lm-eval", "samples_*.jsonl with doc_id/doc/resps/filtered_resps/filter"),
        (TRL_PARQUET, "trl", "a parquet table with columns step, prompt, completion"),
        (TRL_CSV, "trl", "a CSV table with columns step, prompt, completion"),
        (VERL, "verl", "JSON lines with input/output/gts/score/step"),
        (CHAT, "chat", "OpenAI-style 'messages' list"),
    ],
)
def test_detect_format(path: Path, fmt: str, because: str) -> None:
    detected, why = detect_format(path)
    assert detected == fmt
    assert because in why


def test_detect_native_jsonl(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [{"completion": "5", "answer": "5"}])
    assert detect_format(path) == ("jsonl", "JSON lines with a 'completion' field")


def test_detect_skips_blank_lines_and_a_bom(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_bytes(b"\xef\xbb\xbf\n  \n" + json.dumps({"messages": [{"role": "user"}]}).encode())
    assert detect_format(path)[0] == "chat"


# --- errors --------------------------------------------------------------------------------


def test_a_file_that_matches_nothing_names_every_format_tried(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "mystery.jsonl", [{"question": "2+2?", "reply": "4"}])
    with pytest.raises(InputError) as caught:
        detect_format(path)
    error = caught.value
    assert (error.code, error.line) == ("unknown_format", 1)
    for fmt in FORMATS:
        assert f"{fmt}: " in error.message
    assert "no 'completion' field" in error.message
    assert "not a .parquet or .csv table" in error.message
    assert "question, reply" in error.message  # what the line does have
    assert str(error).startswith(f"{path}, line 1: ")


def test_a_text_file_is_not_json_for_any_json_format(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("\nthe model said 42\n")
    with pytest.raises(InputError) as caught:
        detect_format(path)
    assert caught.value.line == 2
    # Said once, with what to do, not once per format tried.
    assert caught.value.message.count("line 2 is not valid JSON") == 1
    assert "no line is a JSON object" in caught.value.message
    assert "fix the file, or name the format with --format" in caught.value.message


def test_lm_eval_results_json_gets_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "results_2025-01-01T00-00-00.json"
    path.write_text('{\n  "results": {}\n}\n')
    with pytest.raises(InputError, match="--log_samples"):
        detect_format(path)


def test_a_table_without_the_completion_column(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"step": [1], "text": ["4"]}).to_parquet(path)
    with pytest.raises(InputError) as caught:
        detect_format(path)
    assert "trl: the parquet table has no 'completion' column (columns: step, text)" in str(
        caught.value
    )
    assert "jsonl: a parquet file is not JSON lines" in str(caught.value)
    assert detect_format(path, Keys(completion="text"))[0] == "trl"


def test_a_broken_parquet_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not a table")
    for call in (lambda: detect_format(path), lambda: list(read_rows(path, "trl"))):
        with pytest.raises(InputError) as caught:
            call()
        assert caught.value.code == "unreadable" and caught.value.path == str(path)


@pytest.mark.parametrize("fmt", FORMATS)
def test_missing_and_directory_paths(tmp_path: Path, fmt: str) -> None:
    with pytest.raises(InputError) as caught:
        list(read_rows(tmp_path / "nope.jsonl", fmt))
    assert caught.value.code == "not_found"
    with pytest.raises(InputError) as caught:
        detect_format(tmp_path)
    assert caught.value.code == "is_directory"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n\n")
    with pytest.raises(InputError, match="empty"):
        detect_format(path)


def test_unknown_format_name() -> None:
    with pytest.raises(ValueError, match="jsonl, lm-eval, trl, verl, chat"):
        read_rows(CHAT, "openai")


def test_row_errors_name_the_file_line_and_fix(tmp_path: Path) -> None:
    # verl dumps from before `gts` existed: the answer is missing.
    old = [{"input": "q", "output": "#### 5", "score": 1.0, "step": 3}]
    (error,) = errors_of(write_lines(tmp_path / "3.jsonl", old), "verl")
    assert (error.line, error.code) == (1, "missing_answer")
    assert "'gts'" in error.message and "--answer-key" in error.message
    assert str(error).startswith(str(tmp_path / "3.jsonl") + ", line 1: ")


def test_bad_lines_become_errors_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "5"}]}
    path.write_text(
        json.dumps({**good, "answer": "5"})
        + "\n{not json\n"
        + json.dumps({"messages": [{"role": "user", "content": "q"}], "answer": "5"})
        + "\n[1, 2]\n"
        + json.dumps({**good, "answer": None})
        + "\n"
        + json.dumps({**good, "answer": "5"})
        + "\n"
    )
    rows = list(read_rows(path, "chat"))
    codes = [(line, r.code) for line, r in rows if isinstance(r, InputError)]
    assert codes == [
        (2, "invalid_json"),
        (3, "no_assistant_message"),
        (4, "not_an_object"),
        (5, "missing_answer"),
    ]
    assert [line for line, r in rows if not isinstance(r, InputError)] == [1, 6]


def test_trl_table_without_an_answer_says_how_to_log_one(tmp_path: Path) -> None:
    frame = pd.read_parquet(TRL_PARQUET).drop(columns=["answer"])
    path = tmp_path / "completions_00025.parquet"
    frame.to_parquet(path)
    errors = errors_of(path, "trl")
    assert len(errors) == 8 and errors[0].line == 1
    assert "log_extra('answer', ...)" in errors[0].message
    assert "--answer-key" in errors[0].message
    rows = rows_of(path, "trl", Keys(answer="correctness_reward_func"))
    assert len(rows) == 8


def test_lm_eval_loglikelihood_task_has_no_completions(tmp_path: Path) -> None:
    line = {"doc_id": 0, "doc": {}, "target": "1", "resps": [[[-1.5, False]]]}
    (error,) = errors_of(write_lines(tmp_path / "samples_hellaswag.jsonl", [line]), "lm-eval")
    assert error.code == "completion_not_text" and "generate_until" in error.message


def test_csv_row_with_the_wrong_field_count(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("prompt,completion,answer\nq,#### 5,5\nq,#### 5,5,extra\n")
    rows = list(read_rows(path, "trl"))
    assert isinstance(rows[1][1], InputError) and rows[1][0] == 3
    assert "the row has 4 fields and the header 3" in rows[1][1].message


def test_over_long_lines_are_errors(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "v.jsonl", [{"input": "q", "output": "x" * 500, "gts": "1"}])
    (error,) = [
        r for _, r in read_rows(path, "verl", max_line_bytes=100) if isinstance(r, InputError)
    ]
    assert error.code == "line_too_long"


# --- the CLI -------------------------------------------------------------------------------


def test_cli_formats_match_the_readers() -> None:
    assert ("auto", *FORMATS) == cli._FORMATS


@pytest.mark.parametrize(
    ("path", "fmt", "rows"),
    [(LM_EVAL, "lm-eval", 9), (TRL_PARQUET, "trl", 8), (TRL_CSV, "trl", 8), (VERL, "verl", 8),
     (CHAT, "chat", 6)],
)  # fmt: skip
def test_cli_auto_detects_says_so_and_scores(
    path: Path, fmt: str, rows: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["score", "--format", "auto", str(path)]) == 0
    captured = capsys.readouterr()
    assert f"read {path} as {fmt} (" in captured.err
    assert f"{rows} rows scored under strict, lenient" in captured.out
    assert "Rewards per scheme" in captured.out


def test_cli_named_format_is_not_announced(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["score", "--format", "verl", str(VERL), "--json"]) == 0
    captured = capsys.readouterr()
    assert "read " not in captured.err
    document = json.loads(captured.out)
    assert document["input"]["format"] == "verl"
    assert document["input"]["rows_scored"] == 8


def test_cli_native_jsonl_still_goes_through_score_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "c.jsonl", [{"completion": "<answer>5</answer>", "answer": "5"}])
    assert cli.main(["score", str(path), "--json"]) == 0
    captured = capsys.readouterr()
    assert "as jsonl (JSON lines with a 'completion' field)" in captured.err
    assert json.loads(captured.out)["input"]["format"] == "jsonl"


def test_cli_wrong_format_fails_with_file_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["score", "--format", "verl", str(CHAT)]) == 2
    err = capsys.readouterr().err
    assert f"{CHAT}, line 1:" in err and "'output'" in err


def test_cli_skip_lists_bad_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = VERL.read_text().splitlines()
    path = tmp_path / "40.jsonl"
    path.write_text("\n".join([lines[0], "{broken", lines[1]]) + "\n")
    assert cli.main(["score", str(path), "--on-error", "skip", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["input"]["rows_scored"] == 2
    assert document["input"]["skipped"][0]["line"] == 2


def test_cli_unknown_file_lists_the_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "odd.jsonl", [{"question": "q"}])
    assert cli.main(["score", str(path)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no format fits" in err
    for fmt in FORMATS:
        assert f"{fmt}:" in err


# --- what a reading counts: the file's lines, not its rows ---------------------------------


def lm_eval_line(doc_id: int, filter_name: str) -> dict[str, Any]:
    return {
        "doc_id": doc_id,
        "doc": {"question": "q", "answer": "x\n#### 5"},
        "target": "x\n#### 5",
        "resps": [["The answer is 5.", "The answer is 3.", "#### 5"]],
        "filtered_resps": ["5"],
        "filter": filter_name,
    }


def test_lm_eval_counts_lines_of_the_file_and_rows_of_the_frame(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 2 docs x 2 filters, 3 responses each: 4 lines, 6 rows (the repeats are read once).
    lines = [lm_eval_line(doc, f) for doc in (0, 1) for f in ("strict-match", "flexible")]
    path = write_lines(tmp_path / "samples_gsm8k_2024.jsonl", lines)
    result = score_format(path, "lm-eval", [STRICT, LENIENT])
    assert (result.lines_read, result.rows_scored, result.blank_lines) == (4, 6, 0)
    assert cli.main(["score", str(path)]) == 0
    assert "6 rows scored under strict, lenient (4 lines read)" in capsys.readouterr().out
    assert cli.main(["score", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)["input"]
    assert (document["lines_read"], document["rows_scored"]) == (4, 6)


def test_the_fixtures_count_their_lines() -> None:
    for path, fmt, lines, rows in [
        (LM_EVAL, "lm-eval", 6, 9),  # 3 docs x 2 filters; 3 responses each
        (TRL_CSV, "trl", len(TRL_CSV.read_text().splitlines()), 8),  # the header, and records
        (TRL_PARQUET, "trl", 8, 8),  # a table's lines are its rows
    ]:
        result = score_format(path, fmt, [STRICT])
        assert (result.lines_read, result.rows_scored) == (lines, rows), path


def test_verl_counts_blank_lines(tmp_path: Path) -> None:
    record = {"input": "q", "output": "<answer>5</answer>", "gts": "5", "step": 1}
    text = json.dumps(record) + "\n"
    path = tmp_path / "1.jsonl"
    path.write_text(text * 2 + "\n   \n" + text * 2)
    result = score_format(path, "verl", [STRICT])
    assert (result.lines_read, result.blank_lines, result.rows_scored) == (6, 2, 4)
    assert sorted(set(result.frame["line"])) == [1, 2, 5, 6]


@pytest.mark.parametrize("fmt", ["verl", "chat", "lm-eval"])
def test_a_byte_order_mark_is_an_error_unless_skipping(tmp_path: Path, fmt: str) -> None:
    """As `score_file` does: the error ``bom``; with skip, read past with a warning."""
    source = {"verl": VERL, "chat": CHAT, "lm-eval": LM_EVAL}[fmt]
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + source.read_bytes())
    (first, *_) = errors_of(path, fmt)
    assert (first.line, first.code) == (1, "bom")
    assert "--on-error skip" in first.message
    with pytest.raises(InputError, match="byte-order mark"):
        score_format(path, fmt, [STRICT])
    result = score_format(path, fmt, [STRICT], on_error="skip")
    assert result.skipped == [] and result.frame["line"].min() == 1
    assert result.warnings == ["the file starts with a UTF-8 byte-order mark; it was read past"]


def test_a_file_of_blank_lines_says_so(tmp_path: Path) -> None:
    path = tmp_path / "1.jsonl"
    path.write_text("\n \n")
    with pytest.raises(InputError, match="only blank lines"):
        score_format(path, "verl", [STRICT])


# --- a CSV with a stray quote --------------------------------------------------------------

GOOD = "p,<answer>5</answer>,5\n"


def test_csv_unclosed_quote_is_one_bad_line_and_the_rows_after_it_are_read(
    tmp_path: Path,
) -> None:
    path = tmp_path / "badquote.csv"
    path.write_text(
        "prompt,completion,answer\n" + GOOD + 'p,"oops <answer>5</answer>,5\n' + GOOD * 3
    )
    rows = list(read_rows(path, "trl"))
    (error,) = [r for _, r in rows if isinstance(r, InputError)]
    assert (error.line, error.code) == (3, "invalid_csv")
    assert (
        "unclosed quote" in error.message and 'write a quote inside a field as ""' in error.message
    )
    assert [line for line, r in rows if not isinstance(r, InputError)] == [2, 4, 5, 6]
    result = score_format(path, "trl", [STRICT], on_error="skip")
    assert (result.lines_read, result.rows_scored, len(result.skipped)) == (6, 4, 1)


def test_csv_quote_closed_by_a_later_quote_names_the_lines_it_took(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "prompt,completion,answer\n"
        + 'p,"oops <answer>5</answer>,5\n'
        + GOOD
        + 'p,"x, y <answer>5</answer>",5\n'
        + GOOD
    )
    (error,) = errors_of(path, "trl")
    assert (error.line, error.code) == (2, "invalid_csv")
    assert "on line 4" in error.message and "a quote on line 2 is unclosed" in error.message
    assert [line for line, _ in rows_of_good(path)] == [5]


def rows_of_good(path: Path) -> list[tuple[int, dict[str, Any]]]:
    return [(line, r) for line, r in read_rows(path, "trl") if not isinstance(r, InputError)]


def test_csv_text_after_a_closing_quote_is_an_error_not_run_together(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text('prompt,completion,answer\np,"<answer>5</answer>"x,5\n' + GOOD)
    (error,) = errors_of(path, "trl")
    assert (error.line, error.code) == (2, "invalid_csv")
    assert [line for line, _ in rows_of_good(path)] == [3]


def test_csv_quoted_newlines_blank_lines_and_crlf_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(
        b'prompt,completion,answer\r\np,"two\r\nlines <answer>5</answer>",5\r\n\r\n,,\r\n'
        + GOOD.encode()
    )
    result = score_format(path, "trl", [STRICT])
    assert list(result.frame["line"]) == [2, 6]
    assert (result.lines_read, result.blank_lines, result.rows_scored) == (6, 2, 2)
    first = next(r for _, r in read_rows(path, "trl") if not isinstance(r, InputError))
    assert first["completion"] == "two\r\nlines <answer>5</answer>"


def test_csv_invalid_utf8_names_its_line_and_the_rest_is_read(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"prompt,completion,answer\n" + b"p,caf\xe9,5\n" + GOOD.encode())
    (error,) = errors_of(path, "trl")
    assert (error.line, error.code) == (2, "invalid_utf8")
    assert "line 2, column 6" in error.message and "iconv" in error.message
    assert [line for line, _ in rows_of_good(path)] == [3]


def test_trl_on_json_lines_of_another_kind_says_so(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        list(read_rows(CHAT, "trl"))
    assert caught.value.code == "wrong_format"
    assert "not TRL's completions table" in caught.value.message
    assert "--format auto" in caught.value.message


# --- detection reads past bad lines, within --max-line-bytes -------------------------------


def test_detection_honours_max_line_bytes(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "c.jsonl", [{"completion": "x" * 500, "answer": "5"}])
    with pytest.raises(InputError, match=r"line 1 is over 100 bytes \(--max-line-bytes\)"):
        detect_format(path, max_line_bytes=100)
    assert detect_format(path, max_line_bytes=1000)[0] == "jsonl"


def test_detection_decides_from_the_first_json_object(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text("{broken\n\n" + json.dumps({"completion": "5", "answer": "5"}) + "\n")
    fmt, why = detect_format(path)
    assert fmt == "jsonl"
    assert why.endswith(
        "; from line 3, as line 1 is not valid JSON (Expecting property name"
        " enclosed in double quotes at column 2)"
    )


def test_detection_reason_reads_once_at(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"completion": "a\tb"}\n')  # a raw tab in a string
    with pytest.raises(InputError) as caught:
        detect_format(path)
    assert "Invalid control character at column 18" in caught.value.message
    assert "at at" not in caught.value.message


def test_a_line_cut_inside_a_string_is_an_unterminated_string(tmp_path: Path) -> None:
    # the newline ending the line was handed to json too: "Invalid control character"
    path = tmp_path / "c.jsonl"
    path.write_text('{"completion": "a\nb"}\n')
    with pytest.raises(InputError) as caught:
        detect_format(path)
    assert "Unterminated string starting at column 16" in caught.value.message


@pytest.mark.parametrize("fmt", ["auto", "jsonl", "verl"])
def test_compressed_files_say_to_decompress(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "c.jsonl.gz"
    path.write_bytes(gzip.compress(VERL.read_bytes()))
    with pytest.raises(InputError) as caught:
        detect_format(path) if fmt == "auto" else list(read_rows(path, fmt))
    assert caught.value.code == "compressed"
    assert f"gunzip -k {path}" in caught.value.message


# --- the CLI: detection, hints, pipes ------------------------------------------------------


def test_cli_bad_first_line_is_skipped_or_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = VERL.read_text().splitlines()
    path = tmp_path / "40.jsonl"
    path.write_text("\n".join(["{broken", *lines[:3]]) + "\n")
    assert cli.main(["score", str(path), "--on-error", "skip", "--json"]) == 0
    captured = capsys.readouterr()
    assert "as verl (" in captured.err
    document = json.loads(captured.out)["input"]
    assert (document["lines_read"], document["rows_scored"]) == (4, 3)
    assert [(s["line"], s["code"]) for s in document["skipped"]] == [(1, "invalid_json")]
    assert cli.main(["score", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}, line 1: not valid JSON" in err
    assert "(pass --on-error skip" in err  # it would get past the line


def test_cli_over_long_first_line_with_max_line_bytes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "huge.jsonl", [{"completion": "x" * 9_000_000, "answer": "5"}])
    assert cli.main(["score", str(path), "--max-line-bytes", "20000000", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input"]["rows_scored"] == 1


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["--format", "trl"], "not TRL's completions table"),
        (["--on-error", "raise"], "no format fits"),
    ],
)
def test_cli_no_skip_hint_where_skipping_would_not_help(
    tmp_path: Path, argv: list[str], code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_lines(tmp_path / "odd.jsonl", [{"question": "q"}])
    assert cli.main(["score", str(path), *argv]) == 2
    err = capsys.readouterr().err
    assert code in err and "--on-error skip" not in err


@pytest.mark.parametrize("fmt", ["auto", "jsonl"])
def test_cli_reads_a_pipe(fmt: str) -> None:
    """`cat f | rewardkit score /dev/stdin`: read twice, from a copy, and named as given."""
    code = "import sys; from rewardkit.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "score", "/dev/stdin", "--format", fmt, "--json"]
    good = json.dumps({"completion": "<answer>5</answer>", "answer": "5"}) + "\n"
    done = subprocess.run(argv, input=(good * 3).encode(), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)["input"]
    assert (document["file"], document["lines_read"], document["rows_scored"]) == (
        "/dev/stdin",
        3,
        3,
    )
    bad = good + json.dumps({"completion": "5"}) + "\n"
    done = subprocess.run(argv, input=bad.encode(), capture_output=True, check=False)
    assert done.returncode == 2
    assert b"error: /dev/stdin, line 2: no 'answer' field" in done.stderr
    packed = gzip.compress(good.encode())
    done = subprocess.run(argv, input=packed, capture_output=True, check=False)
    assert done.returncode == 2
    # Named as given, and no command on the temporary copy, which is gone at exit.
    assert b"error: /dev/stdin: the stream is gzip-compressed" in done.stderr
    assert b"rewardkit-" not in done.stderr
    done = subprocess.run(argv, input=good.encode("utf-16"), capture_output=True, check=False)
    assert done.returncode == 2  # its fix named the temporary copy: `iconv ... /tmp/rewardkit-x`
    assert b"`... | iconv -f utf-16 -t utf-8 | rewardkit score -`" in done.stderr
    assert b"rewardkit-" not in done.stderr


def test_a_null_prompt_id_falls_back_to_the_prompt_as_score_file_does(tmp_path: Path) -> None:
    rows = [{"prompt_id": None, "prompt": "q", "completion": "<answer>5</answer>", "answer": "5"}]
    path = tmp_path / "null.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows * 2))
    read = [row for _, row in read_rows(path, "jsonl")]
    assert isinstance(read[0], dict) and read[0]["prompt_id"] == read[1]["prompt_id"] != "null"


# --- logs as the tools really write them (a second user pass) -------------------------------


def _trl_table() -> pd.DataFrame:
    """TRL's completions table, two logging steps of one prompt with 2 completions each,
    as `GRPOTrainer` builds it (chat prompts and completions, the gold via log_extra)."""
    ask = [{"role": "user", "content": "What is 2+3?"}]
    said = [
        [{"role": "assistant", "content": "<answer>5</answer>"}],
        [{"role": "assistant", "content": "<answer>6</answer>"}],
    ]
    return pd.DataFrame(
        {
            "step": [1, 1, 2, 2],
            "prompt": [ask] * 4,
            "completion": said * 2,
            "answer": ["5"] * 4,
            "advantage": [0.7, -0.7, 0.7, -0.7],
        }
    )


def test_trl_table_written_as_json_lines_keeps_its_groups_per_step(tmp_path: Path) -> None:
    path = tmp_path / "all_steps.jsonl"
    _trl_table().to_json(path, orient="records", lines=True)
    fmt, why = detect_format(path)
    assert (fmt, why) == ("trl", "JSON lines with TRL's step/prompt/completion/advantage columns")
    # a file of one's own whose `step` means something else stays plain JSON lines
    own = tmp_path / "own.jsonl"
    _trl_table().drop(columns="advantage").to_json(own, orient="records", lines=True)
    assert detect_format(own)[0] == "jsonl"
    result = score_format(path, "trl", [STRICT])
    groups = result.frame["group"].tolist()
    assert groups[0] == groups[1] != groups[2] == groups[3]  # step 1's prompt, step 2's
    assert result.frame["correctness"].tolist() == [2.0, 0.0, 2.0, 0.0]


def test_trls_table_as_wandb_logs_it_is_read_as_trls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # With report_to="wandb", the run's files hold the table as media/table/*.table.json,
    # one JSON object of columns and rows: "no format fits", and --format trl sent the
    # user back to --format auto.
    table = _trl_table()
    doc = {"columns": list(table.columns), "data": table.values.tolist(), "_type": "table"}
    path = tmp_path / "completions_4_0a1b.table.json"
    path.write_text(json.dumps(doc))  # one line, as wandb writes it
    fmt, why = detect_format(path)
    assert fmt == "trl" and why.startswith("a W&B table (4 rows) with columns step, prompt")
    result = score_format(path, "trl", [STRICT])
    assert result.frame["correctness"].tolist() == [2.0, 0.0, 2.0, 0.0]
    groups = result.frame["group"].tolist()
    assert groups[0] == groups[1] != groups[2] == groups[3]  # per step, as TRL's parquet
    assert result.lines_read == 4
    doc["data"][1] = doc["data"][1][:2]  # a damaged row: named, and skippable
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="row 2 of the W&B table is not a list of 5 values"):
        score_format(path, "trl", [STRICT])
    assert len(score_format(path, "trl", [STRICT], on_error="skip").frame) == 3
    other = tmp_path / "other.table.json"
    other.write_text(json.dumps({"columns": ["a", "b"], "data": [[1, 2]]}))
    with pytest.raises(InputError, match="the W&B table has no 'completion' column"):
        detect_format(other)


def test_a_wandb_table_longer_than_a_line_may_be_is_read_whole(tmp_path: Path) -> None:
    # A W&B table is one line: long completions took it over --max-line-bytes, and
    # skipping the "line" dropped the whole table.
    table = _trl_table()
    doc = {"columns": list(table.columns), "data": table.values.tolist(), "_type": "table"}
    path = tmp_path / "completions_4_0a1b.table.json"
    path.write_text(json.dumps(doc))
    assert detect_format(path, max_line_bytes=100)[0] == "trl"
    result = score_format(path, "trl", [STRICT], max_line_bytes=100)
    assert result.frame["correctness"].tolist() == [2.0, 0.0, 2.0, 0.0]


@pytest.mark.parametrize("indent", [None, 2])
def test_a_json_array_of_rows_is_read_item_by_item(
    tmp_path: Path, indent: int | None, capsys: pytest.CaptureFixture[str]
) -> None:
    # What json.dump(rows, f) writes, and lm-eval 0.4.0-0.4.1 wrote its samples so: "line 1
    # is not valid JSON", or "line 1 is a JSON list", with no way to read it.
    rows = [
        {"completion": "<answer>5</answer>", "answer": "5", "prompt": "q"},
        {"completion": "<answer>6</answer>", "answer": "5", "prompt": "q"},
        "not a row",
    ]
    path = tmp_path / "rows.json"
    path.write_text(json.dumps(rows, indent=indent))
    fmt, why = detect_format(path)
    assert fmt == "jsonl" and "one JSON array" in why
    with pytest.raises(InputError, match="line 3: the item is a string, not an object"):
        score_format(path, "jsonl", [STRICT])
    result = score_format(path, "jsonl", [STRICT], on_error="skip")
    assert result.frame["correctness"].tolist() == [2.0, 0.0]
    assert result.lines_read == 3 and [s.line for s in result.skipped] == [3]
    assert any("one JSON array" in w for w in result.warnings)
    assert cli.main(["score", str(path), "--on-error", "skip", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["input"]["rows_scored"] == 2
    samples = [json.loads(line) for line in LM_EVAL.read_text().splitlines()]
    old = tmp_path / "pretrained__m_gsm8k.jsonl"
    old.write_text(json.dumps(samples, indent=indent))
    assert detect_format(old)[0] == "lm-eval"
    assert rows_of(old, "lm-eval") == rows_of(LM_EVAL, "lm-eval")  # item N is line N


def test_a_csv_without_its_extension_is_detected(tmp_path: Path) -> None:
    # What a pipe holds: `cat table.csv | rewardkit score -` was "line 1 is not valid JSON".
    path = tmp_path / "stdin-copy"
    _trl_table().to_csv(path, index=False)
    fmt, why = detect_format(path)
    assert fmt == "trl" and why.startswith("a CSV table with columns step, prompt")
    assert score_format(path, "trl", [STRICT]).frame["correctness"].tolist() == [2.0, 0.0, 2.0, 0.0]


def test_cli_dash_reads_standard_input() -> None:
    code = "import sys; from rewardkit.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", code, "score", "-", "--json"]
    good = json.dumps({"completion": "<answer>5</answer>", "answer": "5"}) + "\n"
    done = subprocess.run(argv, input=(good * 2).encode(), capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["input"]["rows_scored"] == 2


def test_a_csv_of_trls_table_with_unreadable_message_lists_is_an_error(tmp_path: Path) -> None:
    # pandas' to_csv of the parquet TRL wrote: numpy arrays of several messages come out
    # as numpy's repr (no commas between the messages), which reads back as nothing; it
    # was scored as text, 0 on every reward
    import numpy as np

    table = _trl_table()
    turns = [{"role": "assistant", "content": "<tool_call>"}, *table["completion"][0]]
    table["completion"] = [np.array(turns, dtype=object)] * 4
    path = tmp_path / "tools.csv"
    table.to_csv(path, index=False)
    errors = errors_of(path, "trl")
    assert [e.code for e in errors] == ["completion_not_text"] * 4
    assert "numpy's repr" in errors[0].message and "score the .parquet" in errors[0].message


def test_an_empty_answer_cell_in_a_csv_is_no_gold(tmp_path: Path) -> None:
    table = _trl_table()
    table["answer"] = ["5", None, float("nan"), "5"]
    path = tmp_path / "nan_answer.csv"
    table.to_csv(path, index=False)
    errors = errors_of(path, "trl")
    assert [(e.line, e.code) for e in errors] == [(3, "missing_answer"), (4, "missing_answer")]
    assert "is empty (how pandas writes a missing value to CSV)" in errors[0].message


def test_nesting_too_deep_for_json_is_a_bad_line_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    deep = "[" * 5000 + "]" * 5000
    path.write_text(
        '{"completion": "<answer>5</answer>", "answer": "5"}\n'
        f'{{"completion": {deep}, "answer": "5"}}\n'
    )
    result = score_format(path, "jsonl", [STRICT], on_error="skip")
    assert [(s.line, s.code) for s in result.skipped] == [(2, "invalid_json")]
    from rewardkit.score import score_file

    assert score_file(path, [STRICT], on_error="skip").rows_scored == 1
    runaway = tmp_path / "runaway.csv"  # a completion that only looks like a nested list
    runaway.write_text(f'prompt,completion,answer\np,"{"[" * 1500} the answer is 2]",2\n')
    [(_, row)] = rows_of(runaway, "trl")
    assert row["completion"].endswith("the answer is 2]")


def test_a_json_nan_prompt_id_is_no_group(tmp_path: Path) -> None:
    # Python's json writes NaN for a data frame's missing prompt_id: it was one group "NaN"
    path = tmp_path / "nan.jsonl"
    path.write_text(
        "".join(
            json.dumps({"completion": "x", "answer": "1", "prompt_id": float("nan"), "prompt": p})
            + "\n"
            for p in ("a", "a", "b", "b")
        )
    )
    from rewardkit.score import score_file

    groups = score_file(path, [STRICT]).frame["group"].tolist()
    assert groups[0] == groups[1] != groups[2] == groups[3]
    assert "NaN" not in groups
    # the reader --cross-check uses falls back to the prompt as score_file does
    read = [row["prompt_id"] for _, row in rows_of(path, "jsonl")]
    assert read[0] == read[1] != read[2] == read[3] and None not in read


def test_files_that_are_not_json_lines_get_their_own_fix(tmp_path: Path) -> None:
    utf16 = tmp_path / "chat.jsonl"
    utf16.write_bytes('{"completion": "x", "answer": "1"}\n'.encode("utf-16"))
    with pytest.raises(InputError, match=r"UTF-16 .*iconv -f utf-16 -t utf-8"):
        detect_format(utf16)
    # without a byte-order mark: "no line is a JSON object (Expecting property name ...)"
    for encoding in ("utf-16le", "utf-16be"):
        utf16.write_bytes('{"completion": "x", "answer": "1"}\n'.encode(encoding))
        with pytest.raises(InputError, match=rf"without a byte-order mark.*iconv -f {encoding}"):
            detect_format(utf16)
    # lines ended by CR alone: "no line is a JSON object ... (Extra data at column 50)"
    utf16.write_bytes(b'{"completion": "x", "answer": "1"}\r' * 3)
    with pytest.raises(InputError, match=r"carriage return alone .* `tr '\\r' '\\n' <"):
        detect_format(utf16)
    utf16.write_bytes(b'{"completion": "x", "answer": "1"}\r\n' * 3)  # CRLF reads
    assert detect_format(utf16)[0] == "jsonl"
    # a UTF-8 file whose bad first line holds a zero byte or two is still read, and skipped
    utf16.write_bytes(b'{\x00"\x00}\n{"completion": "<answer>1</answer>", "answer": "1"}\n')
    from rewardkit.score import score_file

    assert score_file(utf16, [STRICT], on_error="skip").rows_scored == 1
    table = tmp_path / "c.parquet"
    _trl_table().to_parquet(table)
    with pytest.raises(InputError, match=r"is a parquet table .* pass --format trl"):
        read_rows(table, "chat")
    no_suffix = tmp_path / "piped"  # a table known by its first bytes, as from a pipe
    no_suffix.write_bytes(table.read_bytes())
    assert detect_format(no_suffix)[0] == "trl"
    packed = tmp_path / "c.csv.gz"
    packed.write_bytes(gzip.compress(b"prompt,completion,answer\n"))
    with pytest.raises(InputError) as caught:
        detect_format(packed)
    assert "gunzip -k" in caught.value.message and "<(" not in caught.value.message
    folder = tmp_path / "completions"
    folder.mkdir()
    for step in (10, 20):
        _trl_table().to_parquet(folder / f"completions_{step:05d}.parquet")
    with pytest.raises(InputError, match=r"TRL's completion logs \(2 completions_\*\.parquet"):
        detect_format(folder)


def test_detection_past_over_long_lines_says_to_raise_the_limit(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "samples_gsm8k.jsonl", [{"doc_id": 0, "resps": ["x" * 300]}])
    with pytest.raises(InputError, match=r"; raise --max-line-bytes \(lines of lm-eval"):
        detect_format(path, max_line_bytes=100)


def test_cli_says_workers_apply_to_json_lines_only(capsys: pytest.CaptureFixture[str]) -> None:
    # --workers 2 on an lm-eval file was silently scored in one process.
    assert cli.main(["score", str(LM_EVAL), "--workers", "2", "--json"]) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "--workers 2 is ignored: only rewardkit's JSON lines are scored in parallel" in err


def test_a_json_file_of_one_object_is_one_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Detected as JSON lines from the whole object, then "line 1: not valid JSON".
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"completion": "<answer>5</answer>", "answer": "5"}, indent=2))
    assert cli.main(["score", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)["input"]
    assert document["rows_scored"] == 1
    assert any("one JSON object" in w for w in document["warnings"])
