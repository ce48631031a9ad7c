"""Other tools' files of completions, read as numbered rows that `score_rows` scores.

Each reader turns one tool's own output into records with the keys ``completion`` and
``answer`` (both text) and, where the tool records them, ``id``, ``prompt_id`` and
``prompt``. ``prompt_id`` is what groups the completions of one prompt (GRPO's group):

=========  ==================================================  =====================================
format     the file                                            rows and groups
=========  ==================================================  =====================================
jsonl      rewardkit's own JSON lines (`score_file` reads it)  one row per line
lm-eval    ``samples_<task>_<date>.jsonl`` written by          one row per response in ``resps``;
           lm-evaluation-harness ``--log_samples``             a group per ``doc_id``
trl        TRL's ``completions/completions_NNNNN.parquet``     one row per table row; a group per
           (``log_completions=True``), or a CSV of it          ``step`` and ``prompt``
verl       verl's ``<step>.jsonl`` (``_dump_generations``:     one row per line; a group per
           ``trainer.validation_data_dir`` or                  ``step`` and ``input``
           ``trainer.rollout_data_dir``)
chat       ``{"messages": [...], "answer": ...}`` lines        completion: the last assistant
           (OpenAI-style chat)                                 message; prompt: the ones before it
=========  ==================================================  =====================================

Where each format keeps the answer: lm-eval ``target`` (what the harness graded against),
verl ``gts`` (``reward_model.ground_truth``), trl and chat ``answer``. TRL's table has no
gold-answer column of its own (it logs ``step``, ``prompt``, ``completion``, one column per
reward function, ``log_extra`` columns and ``advantage``), so the answer must be logged
with ``log_extra`` or named with ``--answer-key``. A ``Keys`` field left at its default
means the format's own field; any other value names the field to read instead.

Traps, each met in the real files:

- lm-eval writes one line per doc *per filter* (GSM8K: ``strict-match`` and
  ``flexible-extract``), every one with the same raw ``resps``. The repeats are read once,
  or every completion would count two times.
- lm-eval's ``resps`` is a list (requests) of lists (repeats) of strings; ``filtered_resps``
  holds the extracted answers ("72"), not completions.
- A TRL table saved to CSV holds conversational prompts and completions as Python reprs
  (``[{'role': 'user', ...}]``); they are read back as message lists.
- A row number of a parquet table is its position in the table (1-based); a CSV row's is
  the line its record starts on.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeAlias

from rewardkit.score import (
    DEFAULT_MAX_LINE_BYTES,
    InputError,
    Keys,
    _answer_text,
    _completion_text,
    _is_messages,
    _last_assistant,
    _preview,
)
from rewardkit.score import _BadLine as _RowError

__all__ = ["FORMATS", "Row", "detect_format", "read_objects", "read_rows"]

FORMATS = ("jsonl", "lm-eval", "trl", "verl", "chat")

Row: TypeAlias = "tuple[int, dict[str, Any] | InputError]"

_DEFAULT = Keys()
_BOM = b"\xef\xbb\xbf"
_TABLE_SUFFIXES = {".parquet": "parquet", ".csv": "CSV"}
_LM_EVAL_NAME = re.compile(r"samples_.+\.jsonl$")
_CSV_FIELD_LIMIT = 2**31 - 1


# --- detection -----------------------------------------------------------------------------


def detect_format(path: str | Path, keys: Keys = _DEFAULT) -> tuple[str, str]:
    """The format of `path` and why, from its extension and its first record.

    The reason reads after the format's name: ``("lm-eval", "samples_*.jsonl with
    doc_id/doc/resps/filtered_resps/filter (--log_samples output)")``.

    Raises `InputError` when the file cannot be read or no format fits; the message names
    every format tried and why each one did not fit.
    """
    name = str(path)
    _check_file(name)
    suffix = Path(name).suffix.lower()
    if suffix in _TABLE_SUFFIXES:
        kind = _TABLE_SUFFIXES[suffix]
        columns = _parquet_columns(name) if kind == "parquet" else _csv_header(name)
        completion = keys.completion
        if completion in columns:
            shown = ", ".join(columns[:8]) + (" ..." if len(columns) > 8 else "")
            return "trl", f"a {kind} table with columns {shown}"
        tried: dict[str, str] = {
            "trl": f"the {kind} table has no {completion!r} column (columns: "
            + (", ".join(columns[:12]) or "none")
            + "); pass --completion-key COLUMN",
            **{fmt: f"a {kind} file is not JSON lines" for fmt in FORMATS if fmt != "trl"},
        }
        raise _no_format(name, 1, tried)
    line, first = _first_record(name)
    not_table = "not a .parquet or .csv table"
    if isinstance(first, str):  # why the first non-blank line is not a JSON object
        tried = {fmt: first for fmt in FORMATS if fmt != "trl"} | {"trl": not_table}
        hint = ""
        if Path(name).name.startswith("results_") and suffix == ".json":
            hint = (
                " (lm-eval's results_*.json holds only the aggregate scores; pass the"
                " samples_<task>_<date>.jsonl it writes with --log_samples)"
            )
        raise _no_format(name, line, tried, hint)
    fields = set(first)
    file_name = Path(name).name
    tried = {}

    def present(*names: str) -> str:
        return "/".join(n for n in names if n in fields)

    if {"doc_id", "resps"} <= fields:
        shape = "samples_*.jsonl" if _LM_EVAL_NAME.search(file_name) else "JSON lines"
        found = present("doc_id", "doc", "resps", "filtered_resps", "filter")
        return "lm-eval", f"{shape} with {found} (--log_samples output)"
    tried["lm-eval"] = "no 'doc_id' and 'resps' fields"
    if {"input", "output"} <= fields:
        found = present("input", "output", "gts", "score", "step")
        return "verl", f"JSON lines with {found} (verl's _dump_generations)"
    tried["verl"] = "no 'input' and 'output' fields"
    if keys.completion in fields:
        return "jsonl", f"JSON lines with a {keys.completion!r} field"
    tried["jsonl"] = f"no {keys.completion!r} field"
    if _is_messages(first.get("messages")):
        return "chat", "JSON lines with an OpenAI-style 'messages' list"
    tried["chat"] = "no 'messages' list of {role, content} objects"
    tried["trl"] = not_table
    listed = ", ".join(sorted(fields)[:12]) + (" ..." if len(fields) > 12 else "")
    raise _no_format(name, line, tried, f"; line {line} has the fields: {listed or 'none'}")


def _no_format(path: str, line: int, tried: Mapping[str, str], hint: str = "") -> InputError:
    reasons = "; ".join(f"{fmt}: {tried[fmt]}" for fmt in FORMATS)
    return InputError(
        path,
        line,
        "unknown_format",
        f"no format fits (tried {reasons}){hint}; name the format with --format"
        f" {'|'.join(FORMATS)}, or the completion field with --completion-key",
    )


def _check_file(path: str) -> None:
    file = Path(path)
    if not file.exists():
        raise InputError(path, None, "not_found", "no such file; check the path")
    if file.is_dir():
        raise InputError(path, None, "is_directory", "is a directory; pass a file")
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as error:
        raise InputError(
            path, None, "unreadable", f"cannot read the file ({error.strerror})"
        ) from None


def _first_record(path: str) -> tuple[int, dict[str, Any] | str]:
    """The first non-blank line as an object, or a sentence saying why it is not one."""
    for line, raw in _raw_lines(path, DEFAULT_MAX_LINE_BYTES):
        if raw is None:
            return line, f"line {line} is over {DEFAULT_MAX_LINE_BYTES:,} bytes"
        try:
            value = _decode(raw)
        except _RowError as error:
            return line, f"line {line} is {error.message.split(';')[0]}"
        if not isinstance(value, dict):
            return line, f"line {line} is a JSON {type(value).__name__}, not an object"
        return line, value
    raise InputError(path, None, "empty", "the file is empty; there is nothing to score")


# --- reading -------------------------------------------------------------------------------


def read_rows(
    path: str | Path,
    fmt: str,
    keys: Keys = _DEFAULT,
    *,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[Row]:
    """Numbered records of `path` read as `fmt`, for `rewardkit.score.score_rows`.

    A row that cannot be read comes as ``(line, InputError)``, so the caller decides to
    stop or skip; a file that cannot be opened at all raises `InputError` at once.

    >>> import json, tempfile
    >>> sample = {"doc_id": 7, "doc": {"question": "2+3?", "answer": "2+3=5\\n#### 5"},
    ...           "target": "2+3=5\\n#### 5", "resps": [[" 2+3=5\\n#### 5"]],
    ...           "filtered_resps": ["5"], "filter": "strict-match"}
    >>> with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
    ...     _ = f.write(json.dumps(sample) + "\\n")
    >>> [(line, row["completion"], row["prompt_id"]) for line, row in read_rows(f.name, "lm-eval")]
    [(1, ' 2+3=5\\n#### 5', '7')]
    """
    if fmt not in _READERS:
        raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    name = str(path)
    _check_file(name)
    return _READERS[fmt](name, keys, max_line_bytes)


def read_objects(
    path: str | Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> Iterator[Row]:
    """The JSON object of each non-blank line of `path`, with its line number, whatever its
    fields: the JSON-lines reading under every format above (UTF-8 checked, a leading
    byte-order mark read past, an over-long line refused without being held in memory).

    A line that is not one JSON object comes as ``(line, InputError)``; a file that cannot
    be opened raises `InputError` at once. The trainer reads its data sets with it.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
    ...     _ = f.write('{"question": "2+3?"}\\n\\n[1, 2]\\n')
    >>> [(line, str(row)) for line, row in read_objects(f.name)]  # doctest: +ELLIPSIS
    [(1, "{'question': '2+3?'}"), (3, '...jsonl, line 3: the line is a JSON list, not an object')]
    """
    name = str(path)
    _check_file(name)
    return _json_rows(name, max_line_bytes, lambda value: iter((value,)))


def _raw_lines(path: str, max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """Non-blank lines as ``(number, bytes)``; an over-long line comes as ``(number, None)``."""
    with open(path, "rb") as handle:
        number = 0
        while True:
            raw = handle.readline(max_bytes + 1)
            if not raw:
                return
            number += 1
            if len(raw) > max_bytes and not raw.endswith(b"\n"):
                while raw and not raw.endswith(b"\n"):  # drain without holding it
                    raw = handle.readline(1 << 20)
                yield number, None
                continue
            if number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            if raw.strip():
                yield number, raw


def _decode(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except UnicodeDecodeError as error:
        raise _RowError(
            "invalid_utf8",
            f"not valid UTF-8 (bytes {error.start}-{error.end}); re-encode the file as UTF-8",
        ) from None
    except json.JSONDecodeError as error:
        raise _RowError(
            "invalid_json",
            f"not valid JSON ({error.msg} at column {error.colno}); each line must be one"
            " complete JSON object",
        ) from None


def _json_rows(
    path: str,
    max_bytes: int,
    record: Callable[[dict[str, Any]], Iterator[dict[str, Any]]],
) -> Iterator[Row]:
    """Rows of a JSON-lines format: `record` maps one line's object to zero or more rows."""
    for line, raw in _raw_lines(path, max_bytes):
        try:
            if raw is None:
                raise _RowError(
                    "line_too_long",
                    f"the line is over {max_bytes:,} bytes (--max-line-bytes); this is usually"
                    " a runaway generation: raise --max-line-bytes to score it",
                )
            value = _decode(raw)
            if not isinstance(value, dict):
                raise _RowError(
                    "not_an_object",
                    f"the line is a JSON {type(value).__name__}, not an object",
                )
            rows = list(record(value))
        except _RowError as error:
            yield line, InputError(path, line, error.code, error.message)
            continue
        for row in rows:
            yield line, row


# --- fields --------------------------------------------------------------------------------


def _field(given: str, default: str, native: str) -> str:
    """The format's own field, unless the user named another one."""
    return native if given == default else given


def _need(record: Mapping[str, Any], key: str, code: str, flag: str, why: str = "") -> Any:
    if key not in record:
        names = sorted(str(k) for k in record)
        listed = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
        raise _RowError(
            code,
            f"no {key!r} field{why} (the row has: {listed or 'no fields'});"
            f" if another field holds it, pass {flag} NAME",
        )
    return record[key]


def _text_id(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _digest(*parts: Any) -> str:
    """A short stable name for a prompt: the same prompt, the same group."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _prompt_id(record: Mapping[str, Any], keys: Keys, prompt: Any, step: Any = None) -> str | None:
    """`--group-key` when given; else the step (when logged) and a digest of the prompt."""
    if keys.group is not None:
        return _text_id(_need(record, keys.group, "missing_group", "--group-key"))
    if prompt is None:
        return None
    return _digest(prompt) if step is None else f"{step}:{_digest(prompt)}"


def _row(
    completion: str,
    answer: str,
    row_id: str | None = None,
    prompt_id: str | None = None,
    prompt: Any = None,
) -> dict[str, Any]:
    # Absent, not None: the scorer groups by "prompt_id" whenever the key is present.
    row: dict[str, Any] = {"completion": completion, "answer": answer}
    for key, value in (("id", row_id), ("prompt_id", prompt_id), ("prompt", prompt)):
        if value is not None:
            row[key] = value
    return row


# --- the formats ---------------------------------------------------------------------------


def _read_jsonl(path: str, keys: Keys, max_bytes: int) -> Iterator[Row]:
    """rewardkit's own lines; `score_file` scores them faster, this serves other callers."""

    def record(value: dict[str, Any]) -> Iterator[dict[str, Any]]:
        completion = _need(value, keys.completion, "missing_completion", "--completion-key")
        answer = _need(value, keys.answer, "missing_answer", "--answer-key")
        prompt = value.get("prompt")
        if keys.group is not None:
            group = _text_id(_need(value, keys.group, "missing_group", "--group-key"))
        elif "prompt_id" in value:
            group = _text_id(value["prompt_id"])
        else:
            group = _prompt_id(value, keys, prompt)
        yield _row(
            _completion_text(completion, keys.completion),
            _answer_text(answer, keys.answer),
            _text_id(value.get(keys.id)),
            group,
            prompt,
        )

    return _json_rows(path, max_bytes, record)


def _lm_eval_prompt(arguments: Any) -> Any:
    """The context string: ``{"gen_args_0": {"arg_0": ...}}`` as saved, or ``[[ctx, kwargs]]``."""
    if isinstance(arguments, dict):
        first = arguments.get("gen_args_0")
        return first.get("arg_0") if isinstance(first, dict) else None
    if isinstance(arguments, list) and arguments and isinstance(arguments[0], (list, tuple)):
        return arguments[0][0] if arguments[0] else None
    return None


def _read_lm_eval(path: str, keys: Keys, max_bytes: int) -> Iterator[Row]:
    """One row per response; the filter lines that repeat a doc's responses are read once."""
    seen: dict[str, str] = {}  # doc_id -> digest of its resps

    def record(value: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if "doc_id" not in value:
            raise _RowError(
                "missing_doc_id",
                "no 'doc_id' field: not an lm-eval samples line; pass --format to read the"
                " file as another format",
            )
        doc_id = _text_id(value["doc_id"])
        resps = _need(
            value,
            _field(keys.completion, _DEFAULT.completion, "resps"),
            "missing_resps",
            "--completion-key",
        )
        if not isinstance(resps, list):
            raise _RowError(
                "completion_not_text",
                f"'resps' is {type(resps).__name__}, not a list of lists of responses",
            )
        answer_key = _field(keys.answer, _DEFAULT.answer, "target")
        doc = value.get("doc")
        doc = doc if isinstance(doc, dict) else {}
        if answer_key in value:
            answer = value[answer_key]
        elif answer_key != "target" and answer_key in doc:
            answer = doc[answer_key]
        else:
            answer = _need(value, answer_key, "missing_answer", "--answer-key")
        digest = _digest(resps)
        if seen.get(str(doc_id)) == digest:
            return  # the same doc under another filter: its responses are already read
        seen[str(doc_id)] = digest
        texts: list[Any] = [
            r for request in resps for r in (request if isinstance(request, list) else [request])
        ]
        for text in texts:
            if not isinstance(text, str):
                raise _RowError(
                    "completion_not_text",
                    f"a response in 'resps' is {type(text).__name__} ({_preview(text)}), not"
                    " generated text: only generate_until tasks (like gsm8k) have completions",
                )
        if keys.group is not None:
            group = _text_id(_need(value, keys.group, "missing_group", "--group-key"))
        else:
            group = doc_id
        answer_text = _answer_text(answer, answer_key)
        prompt = _lm_eval_prompt(value.get("arguments"))
        for index, text in enumerate(texts):
            row_id = doc_id if len(texts) == 1 else f"{doc_id}#{index}"
            yield _row(text, answer_text, row_id, group, prompt)

    return _json_rows(path, max_bytes, record)


def _read_verl(path: str, keys: Keys, max_bytes: int) -> Iterator[Row]:
    def record(value: dict[str, Any]) -> Iterator[dict[str, Any]]:
        output_key = _field(keys.completion, _DEFAULT.completion, "output")
        answer_key = _field(keys.answer, _DEFAULT.answer, "gts")
        output = _need(value, output_key, "missing_completion", "--completion-key")
        why = (
            " (newer verl dumps hold the ground truth as 'gts'; older ones only input/output/score)"
        )
        answer = _need(value, answer_key, "missing_answer", "--answer-key", why)
        prompt = value.get("input")
        yield _row(
            _completion_text(output, output_key),
            _answer_text(answer, answer_key),
            _text_id(value.get(keys.id)),
            _prompt_id(value, keys, prompt, value.get("step")),
            prompt,
        )

    return _json_rows(path, max_bytes, record)


def _read_chat(path: str, keys: Keys, max_bytes: int) -> Iterator[Row]:
    def record(value: dict[str, Any]) -> Iterator[dict[str, Any]]:
        messages_key = _field(keys.completion, _DEFAULT.completion, "messages")
        messages = _need(value, messages_key, "missing_completion", "--completion-key")
        if not _is_messages(messages):
            raise _RowError(
                "completion_not_text",
                f"{messages_key!r} is {_preview(messages)}, not a list of {{role, content}}"
                " messages",
            )
        last = _last_assistant(messages, messages_key)
        completion = _completion_text([messages[last]], messages_key)
        answer = _need(value, keys.answer, "missing_answer", "--answer-key")
        prompt = messages[:last]
        if keys.group is None and "prompt_id" in value:
            group = _text_id(value["prompt_id"])
        else:
            group = _prompt_id(value, keys, prompt)
        yield _row(
            completion,
            _answer_text(answer, keys.answer),
            _text_id(value.get(keys.id)),
            group,
            prompt,
        )

    return _json_rows(path, max_bytes, record)


def _trl_row(row: Mapping[str, Any], keys: Keys, parse_reprs: bool) -> dict[str, Any]:
    completion = _need(row, keys.completion, "missing_completion", "--completion-key")
    why = (
        " (TRL's table logs no gold answer: log it from a reward function with"
        f" log_extra({keys.answer!r}, ...))"
    )
    answer = _need(row, keys.answer, "missing_answer", "--answer-key", why)
    prompt = row.get("prompt")
    if parse_reprs:
        completion = _messages_from_text(completion)
        prompt = _messages_from_text(prompt)
    step = row.get("step")
    return _row(
        _completion_text(completion, keys.completion),
        _answer_text(answer, keys.answer),
        _text_id(row.get(keys.id)),
        _prompt_id(row, keys, prompt, None if step in (None, "") else step),
        prompt,
    )


def _messages_from_text(value: Any) -> Any:
    """A CSV cell holding a message list (as JSON or as a Python repr) read back as the list."""
    if not (isinstance(value, str) and value.startswith("[") and value.rstrip().endswith("]")):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            return value
    return parsed if _is_messages(parsed) else value


def _read_trl(path: str, keys: Keys, max_bytes: int) -> Iterator[Row]:
    if Path(path).suffix.lower() == ".parquet":
        return _read_parquet(path, keys)
    return _read_csv(path, keys)


def _read_parquet(path: str, keys: Keys) -> Iterator[Row]:
    import pyarrow.parquet as pq  # a dependency, but only this reader needs it

    try:
        table = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for a file that is not parquet
        raise InputError(
            path, None, "unreadable", f"not a readable parquet file ({error}); pass --format"
        ) from None
    return _parquet_rows(path, keys, table)


def _parquet_rows(path: str, keys: Keys, table: Any) -> Iterator[Row]:
    line = 0
    for batch in table.iter_batches(batch_size=1024):
        for row in batch.to_pylist():
            line += 1
            try:
                yield line, _trl_row(row, keys, parse_reprs=False)
            except _RowError as error:
                yield line, InputError(path, line, error.code, error.message)


def _parquet_columns(path: str) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return [str(name) for name in pq.read_schema(path).names]
    except Exception as error:  # ArrowInvalid, OSError, ...: the file is not parquet
        raise InputError(
            path, None, "unreadable", f"not a readable parquet file ({error})"
        ) from None


def _csv_header(path: str) -> list[str]:
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            return next(csv.reader(handle), [])
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(path, 1, "unreadable", f"not a readable CSV header ({error})") from None


def _read_csv(path: str, keys: Keys) -> Iterator[Row]:
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise InputError(
                path, None, "empty", "the file is empty; there is nothing to score"
            ) from None
        except (UnicodeDecodeError, csv.Error) as error:
            raise InputError(
                path, 1, "unreadable", f"not a readable CSV header ({error})"
            ) from None
        while True:
            line = reader.line_num + 1  # where the next record starts
            try:
                cells = next(reader)
            except StopIteration:
                return
            except (UnicodeDecodeError, csv.Error) as error:
                yield line, InputError(path, line, "invalid_csv", f"not readable CSV ({error})")
                return  # the reader cannot resynchronise after a broken record
            if not any(cells):
                continue
            if len(cells) != len(header):
                yield (
                    line,
                    InputError(
                        path,
                        line,
                        "invalid_csv",
                        f"the row has {len(cells)} fields and the header {len(header)};"
                        " quote fields that hold commas or newlines",
                    ),
                )
                continue
            try:
                yield line, _trl_row(dict(zip(header, cells, strict=True)), keys, parse_reprs=True)
            except _RowError as error:
                yield line, InputError(path, line, error.code, error.message)


_READERS: dict[str, Callable[[str, Keys, int], Iterator[Row]]] = {
    "jsonl": _read_jsonl,
    "lm-eval": _read_lm_eval,
    "trl": _read_trl,
    "verl": _read_verl,
    "chat": _read_chat,
}
