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

A file's lines are not its rows (6 lines of lm-eval samples may hold 9 responses), so
`read_rows` counts the lines itself (`Reading`) and `score_format` reports both:
"9 rows scored (6 lines read)".

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
- A CSV field may hold newlines inside its quotes, so one stray quote would take the rest
  of the file into one field: a quoted field that runs to the end of the file is an error
  on the line it opens on, and the lines after that one are read again as records.
- ``/dev/stdin`` and ``<(zcat f.gz)`` are pipes: detecting the format and scoring each read
  the file, so `readable_file` first copies a pipe into a temporary file.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import csv
import functools
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TextIO, TypeAlias

from rewardkit.schemes import SchemeLike
from rewardkit.score import (
    BOM_WARNING,
    DEFAULT_MAX_LINE_BYTES,
    Fields,
    InputError,
    Keys,
    ScoreResult,
    _answer_text,
    _bom_line,
    _check_file,
    _completion_text,
    _is_messages,
    _is_null,
    _json_value,
    _key_text,
    _last_assistant,
    _preview,
    _too_long,
    a_json_type,
    score_rows,
)
from rewardkit.score import _BadLine as _RowError

__all__ = [
    "FORMATS",
    "Reading",
    "Row",
    "detect_format",
    "read_objects",
    "read_rows",
    "readable_file",
    "score_format",
    "skipping_helps",
]

FORMATS = ("jsonl", "lm-eval", "trl", "verl", "chat")

Row: TypeAlias = "tuple[int, dict[str, Any] | InputError]"

_DEFAULT = Keys()
_BOM = b"\xef\xbb\xbf"
_TABLE_SUFFIXES = {".parquet": "parquet", ".csv": "CSV"}
_LM_EVAL_NAME = re.compile(r"samples_.+\.jsonl$")
# TRL's completions table (`GRPOTrainer`, log_completions; TRL 1.16 always writes these
# columns): a JSON-lines copy of it (`to_json(lines=True)`) is read as the table is, its
# groups per step and prompt. `advantage` keeps a file of one's own with a `step` field
# (a checkpoint, a count of reasoning steps) from being regrouped per step.
_TRL_COLUMNS = frozenset({"step", "prompt", "completion", "advantage"})
_CSV_FIELD_LIMIT = 2**31 - 1
_DETECT_LINES = 100  # non-blank lines looked at for the first JSON object
# Codes of errors about the file as a whole: --on-error skip does not get past them.
_FILE_ERRORS = frozenset(
    {
        "not_found",
        "is_directory",
        "unreadable",
        "not_a_file",
        "compressed",
        "not_utf8",
        "cr_line_ends",
        "empty",
        "unknown_format",
        "wrong_format",
        "nothing_scored",
    }
)


def skipping_helps(error: InputError) -> bool:
    """Whether ``--on-error skip`` gets past `error`: a bad line, not an unreadable file.

    >>> skipping_helps(InputError("c.jsonl", 3, "invalid_json", "not valid JSON"))
    True
    >>> skipping_helps(InputError("c.jsonl", 1, "unknown_format", "no format fits"))
    False
    """
    return error.line is not None and error.code not in _FILE_ERRORS


# --- the file ------------------------------------------------------------------------------


def readable_file(path: str | Path) -> str:
    """The path to read `path` from: itself when it is a file, else a copy of the stream.

    Detecting the format and scoring each read the file, and scoring in parallel reads it
    in byte ranges, so a pipe or device (``/dev/stdin``, bash's ``<(zcat f.gz)``) is first
    copied into a temporary file, which is removed when the process exits. Errors name the
    copy; the caller names `path` instead. ``-`` is standard input.

    Raises `InputError` when `path` is missing, a folder, unreadable or compressed.
    """
    name = "/dev/stdin" if str(path) == "-" else str(path)
    try:
        mode = os.stat(name).st_mode
    except OSError:
        mode = 0  # _check_file says what is wrong
    if not mode or stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        _check_file(name, table=True)
        return name
    descriptor, copy = tempfile.mkstemp(prefix="rewardkit-", suffix=Path(name).suffix)
    atexit.register(_remove, copy)
    try:
        with open(name, "rb") as stream, os.fdopen(descriptor, "wb") as target:
            shutil.copyfileobj(stream, target, 1 << 20)
    except OSError as error:
        raise InputError(
            name, None, "unreadable", f"cannot read the stream ({error.strerror})"
        ) from None
    _check_file(copy, stream=name, table=True)
    return copy


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):  # already gone
        os.remove(path)


def _require_file(path: str, why: str) -> None:
    """Refuse a pipe where the file is read more than once."""
    if not Path(path).is_file():
        raise InputError(
            path,
            None,
            "not_a_file",
            f"is a pipe or a device, not a file, and {why} reads it twice; save it to a file"
            " first (`... > completions.jsonl`) and pass that",
        )


# --- detection -----------------------------------------------------------------------------


def detect_format(
    path: str | Path, keys: Keys = _DEFAULT, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
) -> tuple[str, str]:
    """The format of `path` and why, from its extension and its first JSON object.

    The reason reads after the format's name: ``("lm-eval", "samples_*.jsonl with
    doc_id/doc/resps/filtered_resps/filter (--log_samples output)")``. Lines that are not
    a JSON object (broken, over `max_line_bytes`) are passed over, up to the first
    100 non-blank lines, and the reason says so: reading them then reports each one, or
    skips it with ``--on-error skip``.

    Raises `InputError` when the file cannot be read or no format fits; the message names
    every format tried and why each one did not fit.
    """
    name = str(path)
    _check_file(name, table=True)
    _require_file(name, "detecting its format and scoring it")
    suffix = Path(name).suffix.lower()
    if suffix not in _TABLE_SUFFIXES and _starts_with(name, b"PAR1"):
        suffix = ".parquet"  # a piped table, or one without its extension
    if suffix in _TABLE_SUFFIXES:
        kind = _TABLE_SUFFIXES[suffix]
        columns = _parquet_columns(name) if kind == "parquet" else _csv_header(name)
        completion = keys.fields().completion
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
    found = _first_object(name, max_line_bytes)
    line, first = found.line, found.value
    completion = keys.fields().completion
    header = _csv_columns(name) if first is None and not found.array else None
    if header is not None and completion in header:  # a CSV without its extension (a pipe)
        shown = ", ".join(header[:8]) + (" ..." if len(header) > 8 else "")
        return "trl", f"a CSV table with columns {shown}"
    if first is None:  # no line says what the file is: say what is wrong with the first
        others = f" (nor is any other of the first {found.looked:,} non-blank lines)"
        fix = (
            f"raise --max-line-bytes (lines of lm-eval samples with many long responses can"
            f" be this long), or name the format with --format {'|'.join(FORMATS)}"
            if "(--max-line-bytes)" in found.passed
            else f"fix the file, or name the format with --format {'|'.join(FORMATS)} to have"
            " each bad line reported"
        )
        message = (
            f"no line is a JSON object to tell the format from: {found.passed}"
            f"{others if found.looked > 1 else ''}; {fix}"
        )
        raise InputError(name, line, "unknown_format", message + _results_hint(name))
    fields = set(first)
    file_name = Path(name).name
    # When lines before it were passed over, say which object decided and why.
    later = f"; from line {line}, as {found.passed}" if found.passed else ""
    if found.array:
        later = f"; the file is one JSON array of them{later.replace('line', 'item', 1)}"
    tried = {}

    def present(*names: str) -> str:
        return "/".join(n for n in names if n in fields)

    if _is_wandb_table(first):
        columns = [str(c) for c in first["columns"]]
        shown = ", ".join(columns[:8]) + (" ..." if len(columns) > 8 else "")
        if completion in columns:
            return "trl", f"a W&B table ({len(first['data']):,} rows) with columns {shown}"
        tried = {
            "trl": f"the W&B table has no {completion!r} column (columns: {shown});"
            " pass --completion-key COLUMN",
            **{fmt: "a W&B table is not JSON lines" for fmt in FORMATS if fmt != "trl"},
        }
        raise _no_format(name, line, tried)
    if {"doc_id", "resps"} <= fields:
        shape = "samples_*.jsonl" if _LM_EVAL_NAME.search(file_name) else "JSON lines"
        found_fields = present("doc_id", "doc", "resps", "filtered_resps", "filter")
        return "lm-eval", f"{shape} with {found_fields} (--log_samples output){later}"
    tried["lm-eval"] = "no 'doc_id' and 'resps' fields"
    if {"input", "output"} <= fields:
        found_fields = present("input", "output", "gts", "score", "step")
        return "verl", f"JSON lines with {found_fields} (verl's _dump_generations){later}"
    tried["verl"] = "no 'input' and 'output' fields"
    if fields >= _TRL_COLUMNS and "prompt_id" not in fields and keys.group is None:
        return "trl", f"JSON lines with TRL's step/prompt/completion/advantage columns{later}"
    tried["trl"] = (
        "not a .parquet or .csv table, nor JSON lines with step/prompt/completion/advantage"
    )
    if completion in fields:
        return "jsonl", f"JSON lines with a {completion!r} field{later}"
    tried["jsonl"] = f"no {completion!r} field"
    if _is_messages(first.get("messages")):
        return "chat", f"JSON lines with an OpenAI-style 'messages' list{later}"
    tried["chat"] = "no 'messages' list of {role, content} objects"
    listed = ", ".join(sorted(fields)[:12]) + (" ..." if len(fields) > 12 else "")
    hint = f"; line {line} has the fields: {listed or 'none'}{_results_hint(name)}"
    raise _no_format(name, line, tried, hint)


def _results_hint(path: str) -> str:
    """What to pass instead of lm-eval's aggregate results file."""
    file = Path(path)
    if not (file.name.startswith("results_") and file.suffix.lower() == ".json"):
        return ""
    return (
        " (lm-eval's results_*.json holds only the aggregate scores; pass the"
        " samples_<task>_<date>.jsonl it writes with --log_samples)"
    )


def _no_format(path: str, line: int, tried: Mapping[str, str], hint: str = "") -> InputError:
    reasons = "; ".join(f"{fmt}: {tried[fmt]}" for fmt in FORMATS)
    return InputError(
        path,
        line,
        "unknown_format",
        f"no format fits (tried {reasons}){hint}; name the format with --format"
        f" {'|'.join(FORMATS)}, or the completion field with --completion-key",
    )


class _Found(NamedTuple):
    """What detection reads: the first JSON object and its line, or None and the first
    non-blank line; why the first line passed over is not an object ("" for none); and
    how many non-blank lines were looked at. `array`: the lines are the items of one JSON
    array (`json_document`)."""

    line: int
    value: dict[str, Any] | None
    passed: str
    looked: int
    array: bool = False


def _first_object(path: str, max_bytes: int) -> _Found:
    document = json_document(path, max_bytes)
    if isinstance(document, dict):
        return _Found(1, document, "", 1)
    if isinstance(document, list):
        for index, item in enumerate(document[:_DETECT_LINES], start=1):
            if isinstance(item, dict):
                passed = "" if index == 1 else f"item 1 is {a_json_type(document[0])}"
                return _Found(index, item, passed, index, array=True)
        if document:
            why = f"item 1 of the JSON array is {a_json_type(document[0])}, not an object"
            return _Found(1, None, why, min(len(document), _DETECT_LINES), array=True)
        raise InputError(path, None, "empty", "the file is an empty JSON array; nothing to score")
    passed, passed_line, looked, lines = "", 0, 0, 0
    for line, raw in _raw_lines(path, max_bytes):
        lines = line
        if raw is not None:
            raw = raw.removeprefix(_BOM) if line == 1 else raw
            if not raw.strip():
                continue
        looked += 1
        if raw is None:
            why = f"is over {max_bytes:,} bytes (--max-line-bytes)"
        else:
            try:
                value = _json_value(raw)
            except _RowError as error:
                why = "is " + error.message.split(";")[0]
            else:
                if isinstance(value, dict):
                    return _Found(line, value, passed, looked)
                why = f"is {a_json_type(value)}, not an object"
        if not passed:
            passed, passed_line = f"line {line} {why}", line
        if looked == _DETECT_LINES:
            break
    if looked:
        return _Found(passed_line, None, passed, looked)
    what = "empty" if lines == 0 else "only blank lines"
    raise InputError(path, None, "empty", f"the file is {what}; there is nothing to score")


def json_document(path: str, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Any:
    """The file's one JSON document, when it is one and not JSON lines; else None.

    Two kinds of file are one document rather than a line per row: a JSON array of rows
    (what ``json.dump(rows, f, indent=2)`` writes, and lm-eval 0.4.0-0.4.1 wrote its
    samples so), and, in a ``.json`` file, one object (a W&B table, often longer than a line
    may be). A file whose first line is a JSON object of its own is JSON lines, and is not
    read whole.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
    ...     _ = f.write('[\\n  {"completion": "<answer>4</answer>", "answer": "4"}\\n]\\n')
    >>> json_document(f.name)
    [{'completion': '<answer>4</answer>', 'answer': '4'}]
    """
    try:
        about = os.stat(path)
    except OSError:
        return None
    return _document(path, about.st_size, about.st_mtime_ns, max_line_bytes)


@functools.lru_cache(maxsize=2)  # detection, the CLI and the reader each ask: parse once
def _document(path: str, size: int, mtime_ns: int, max_line_bytes: int) -> Any:
    first = _first_char(path)
    if first == "{" and Path(path).suffix.lower() == ".json":
        lines = _raw_lines(path, max_line_bytes)
        raw = next((raw for _, raw in lines if raw is None or raw.strip()), b"")
        with contextlib.suppress(_RowError):
            if raw is not None and isinstance(_json_value(raw.removeprefix(_BOM)), dict):
                return None  # JSON lines: the first line holds an object of its own
    elif first != "[":
        return None
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().removeprefix(_BOM))
    except (OSError, ValueError):  # not one document: read line by line, each error named
        return None


_ARRAY_WARNING = (
    "the file is one JSON array, not JSON lines: rows are numbered by their place in it"
    " (item N where a message says line N)"
)
_OBJECT_WARNING = "the file is one JSON object, not JSON lines: it is read as one row"


# --- reading -------------------------------------------------------------------------------


class Reading(Iterator[Row]):
    """The rows `read_rows` yields, and what reading the file saw besides them.

    A file's lines are not its rows: an lm-eval line holds a row per response, or none when
    it repeats a doc under another filter; a CSV record may span several lines; a blank
    line holds none. So the reading counts, as the rows are read (whole once they run out):

    - ``lines_read``: the file's lines (a parquet table's rows);
    - ``blank_lines``: lines that hold nothing, counted and not scored;
    - ``warnings``: what a person must know, such as a byte-order mark read past.
    """

    def __init__(
        self,
        path: str,
        read: Callable[[Reading], Iterator[Row]],
        *,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        skip: bool = False,
    ) -> None:
        self.path = path
        self.max_line_bytes = max_line_bytes
        self.skip = skip  # on_error="skip": a byte-order mark is read past, with a warning
        self.lines_read = 0
        self.blank_lines = 0
        self.warnings: list[str] = []
        self._rows = read(self)

    def __next__(self) -> Row:
        return next(self._rows)


def read_rows(
    path: str | Path,
    fmt: str,
    keys: Keys = _DEFAULT,
    *,
    on_error: str = "raise",
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Reading:
    """Numbered records of `path` read as `fmt`, for `rewardkit.score.score_rows`.

    A row that cannot be read comes as ``(line, InputError)``, so the caller decides to
    stop or skip; a file that cannot be opened at all raises `InputError` at once.
    `on_error` is the caller's choice, as in `score_file`: a byte-order mark at the start of
    a JSON-lines file comes as the error ``bom`` with "raise", and is read past, with a
    warning, with "skip". The lines read, blank lines and warnings are counted on the
    returned `Reading`.

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
    if on_error not in {"raise", "skip"}:
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    name = str(path)
    _check_file(name, table=fmt == "trl")
    reader = _READERS[fmt]
    return Reading(
        name,
        lambda reading: reader(reading, keys),
        max_line_bytes=max_line_bytes,
        skip=on_error == "skip",
    )


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
    [(1, "{'question': '2+3?'}"), (3, '...jsonl, line 3: the line is an array, not an object')]
    """
    name = str(path)
    _check_file(name)
    return Reading(
        name,
        lambda reading: _json_rows(reading, lambda value: iter((value,))),
        max_line_bytes=max_line_bytes,
        skip=True,
    )


def score_format(
    path: str | Path,
    fmt: str,
    schemes: SchemeLike | Iterable[SchemeLike],
    keys: Keys = _DEFAULT,
    *,
    on_error: str = "raise",
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    completion_prefix: str = "",
) -> ScoreResult:
    """Score `path` read as `fmt`: `score_rows` over `read_rows`, counted in the file's lines.

    `score_rows` counts the rows it is given as lines; the result takes the lines read,
    the blank lines and the warnings from the `Reading` instead, and counts the rows scored
    in its frame.
    """
    reading = read_rows(path, fmt, keys, on_error=on_error, max_line_bytes=max_line_bytes)
    try:
        result = score_rows(
            reading,
            schemes,
            source=reading.path,
            on_error=on_error,
            completion_prefix=completion_prefix,
        )
    except InputError as error:
        if error.code != "empty" or not reading.lines_read:
            raise
        what = "only blank lines" if reading.blank_lines == reading.lines_read else "no rows"
        raise InputError(
            reading.path, None, "empty", f"the file holds {what}; there is nothing to score"
        ) from None
    return ScoreResult(
        result.frame,
        result.schemes,
        result.path,
        reading.lines_read,
        result.skipped,
        reading.blank_lines,
        [*reading.warnings, *result.warnings],
    )


def _raw_lines(path: str, max_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """Every line as ``(number, bytes)``, blank ones and a byte-order mark included; an
    over-long line comes as ``(number, None)``, never held in memory whole."""
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
            yield number, raw


def _json_rows(
    reading: Reading, record: Callable[[dict[str, Any]], Iterator[dict[str, Any]]]
) -> Iterator[Row]:
    """Rows of a JSON-lines format: `record` maps one line's object to zero or more rows.

    Lines, blank lines and a byte-order mark are handled as `score_file` handles them.
    """
    path, max_bytes = reading.path, reading.max_line_bytes
    document = json_document(path, max_bytes)
    if isinstance(document, list):
        yield from _array_rows(reading, document, record, _ARRAY_WARNING)
        return
    if isinstance(document, dict):  # a .json file of one object (pretty-printed, say)
        yield from _array_rows(reading, [document], record, _OBJECT_WARNING)
        return
    for line, raw in _raw_lines(path, max_bytes):
        reading.lines_read = line
        try:
            if raw is None:
                raise _too_long(max_bytes)
            if line == 1 and raw.startswith(_BOM):
                if not reading.skip:
                    raise _bom_line()
                raw = raw[len(_BOM) :]
                reading.warnings.append(BOM_WARNING)
            if not raw.strip():
                reading.blank_lines += 1
                continue
            value = _json_value(raw)
            if not isinstance(value, dict):
                raise _RowError(
                    "not_an_object",
                    f"the line is {a_json_type(value)}, not an object",
                )
            rows = list(record(value))
        except _RowError as error:
            yield line, InputError(path, line, error.code, error.message)
            continue
        for row in rows:
            yield line, row


def _array_rows(
    reading: Reading,
    items: list[Any],
    record: Callable[[dict[str, Any]], Iterator[dict[str, Any]]],
    warning: str,
) -> Iterator[Row]:
    """`_json_rows` over the items of a JSON array, each numbered by its place in it."""
    reading.warnings.append(warning)
    for item, value in enumerate(items, start=1):
        reading.lines_read = item
        try:
            if not isinstance(value, dict):
                raise _RowError("not_an_object", f"the item is {a_json_type(value)}, not an object")
            rows = list(record(value))
        except _RowError as error:
            yield item, InputError(reading.path, item, error.code, error.message)
            continue
        for row in rows:
            yield item, row


# --- fields --------------------------------------------------------------------------------


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


def _digest(*parts: Any) -> str:
    """A short stable name for a prompt: the same prompt, the same group."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    # surrogatepass: a lone surrogate (JSON's "\\ud800") is still the prompt's own
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def _prompt_id(
    record: Mapping[str, Any], keys: Fields, prompt: Any, step: Any = None
) -> str | None:
    """`--group-key` when given; else the step (when logged) and a digest of the prompt."""
    if keys.group is not None:
        return _key_text(_need(record, keys.group, "missing_group", "--group-key"))
    if _is_null(prompt):
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


def _read_jsonl(reading: Reading, given: Keys) -> Iterator[Row]:
    """rewardkit's own lines; `score_file` scores them faster, this serves other callers."""
    keys = given.fields()

    def record(value: dict[str, Any]) -> Iterator[dict[str, Any]]:
        completion = _need(value, keys.completion, "missing_completion", "--completion-key")
        answer = _need(value, keys.answer, "missing_answer", "--answer-key")
        prompt = value.get("prompt")
        if keys.group is not None:
            group = _key_text(_need(value, keys.group, "missing_group", "--group-key"))
        elif not _is_null(value.get("prompt_id")):  # null (NaN too) is no value, as in score_file
            group = _key_text(value["prompt_id"])
        else:
            group = _prompt_id(value, keys, prompt)
        yield _row(
            _completion_text(completion, keys.completion),
            _answer_text(answer, keys.answer),
            _key_text(value.get(keys.id)),
            group,
            prompt,
        )

    return _json_rows(reading, record)


def _lm_eval_prompt(arguments: Any) -> Any:
    """The context string: ``{"gen_args_0": {"arg_0": ...}}`` as saved, or ``[[ctx, kwargs]]``."""
    if isinstance(arguments, dict):
        first = arguments.get("gen_args_0")
        return first.get("arg_0") if isinstance(first, dict) else None
    if isinstance(arguments, list) and arguments and isinstance(arguments[0], (list, tuple)):
        return arguments[0][0] if arguments[0] else None
    return None


def _read_lm_eval(reading: Reading, given: Keys) -> Iterator[Row]:
    """One row per response; the filter lines that repeat a doc's responses are read once.

    A completion field other than ``resps`` (``filtered_resps``) differs from filter to
    filter: each filter's responses are then a group of their own, and none is a repeat.
    """
    keys = given.fields(completion="resps", answer="target")
    per_filter = keys.completion != "resps"
    seen: dict[str, str] = {}  # doc_id -> digest of its resps

    def record(value: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if "doc_id" not in value:
            raise _RowError(
                "missing_doc_id",
                "no 'doc_id' field: not an lm-eval samples line; pass --format to read the"
                " file as another format",
            )
        doc_id = str(_key_text(value["doc_id"]))
        if per_filter and value.get("filter") is not None:
            doc_id = f"{doc_id}/{_key_text(value['filter'])}"
        resps = _need(value, keys.completion, "missing_resps", "--completion-key")
        if not isinstance(resps, list):
            raise _RowError(
                "completion_not_text",
                f"{keys.completion!r} is {a_json_type(resps)}, not a list of lists of responses",
            )
        doc = value.get("doc")
        doc = doc if isinstance(doc, dict) else {}
        if keys.answer in value:
            answer = value[keys.answer]
        elif given.answer is not None and keys.answer in doc:
            answer = doc[keys.answer]
        else:
            answer = _need(value, keys.answer, "missing_answer", "--answer-key")
        digest = _digest(resps)
        if seen.get(doc_id) == digest:
            return  # the same doc under another filter: its responses are already read
        seen[doc_id] = digest
        texts: list[Any] = [
            r for request in resps for r in (request if isinstance(request, list) else [request])
        ]
        if not texts:
            raise _RowError(
                "missing_completion",
                f"{keys.completion!r} holds no response: the harness generated nothing for"
                f" doc {doc_id}",
            )
        for text in texts:
            if not isinstance(text, str):
                raise _RowError(
                    "completion_not_text",
                    f"a response in {keys.completion!r} is {type(text).__name__}"
                    f" ({_preview(text)}), not generated text: only generate_until tasks (like"
                    " gsm8k) have completions",
                )
        if keys.group is not None:
            group = _key_text(_need(value, keys.group, "missing_group", "--group-key"))
        else:
            group = doc_id
        name: str | None = doc_id
        if given.id is not None:  # the harness names rows by doc_id; the user chose a field
            named = value.get(keys.id, doc.get(keys.id))
            name = None if _is_null(named) else _key_text(named)
        answer_text = _answer_text(answer, keys.answer)
        prompt = _lm_eval_prompt(value.get("arguments"))
        for index, text in enumerate(texts):
            row_id = name if len(texts) == 1 or name is None else f"{name}#{index}"
            yield _row(text, answer_text, row_id, group, prompt)

    return _json_rows(reading, record)


def _read_verl(reading: Reading, given: Keys) -> Iterator[Row]:
    keys = given.fields(completion="output", answer="gts")
    output_key, answer_key = keys.completion, keys.answer

    def record(value: dict[str, Any]) -> Iterator[dict[str, Any]]:
        output = _need(value, output_key, "missing_completion", "--completion-key")
        why = (
            " (newer verl dumps hold the ground truth as 'gts'; older ones only input/output/score)"
        )
        answer = _need(value, answer_key, "missing_answer", "--answer-key", why)
        prompt = value.get("input")
        yield _row(
            _completion_text(output, output_key),
            _answer_text(answer, answer_key),
            _key_text(value.get(keys.id)),
            _prompt_id(value, keys, prompt, value.get("step")),
            prompt,
        )

    return _json_rows(reading, record)


def _read_chat(reading: Reading, given: Keys) -> Iterator[Row]:
    keys = given.fields(completion="messages")
    messages_key = keys.completion

    def record(value: dict[str, Any]) -> Iterator[dict[str, Any]]:
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
        prompt = messages[:last] or None  # no message before the reply: no prompt, no group
        if keys.group is None and value.get("prompt_id") is not None:
            group = _key_text(value["prompt_id"])
        else:
            group = _prompt_id(value, keys, prompt)
        yield _row(
            completion,
            _answer_text(answer, keys.answer),
            _key_text(value.get(keys.id)),
            group,
            prompt,
        )

    return _json_rows(reading, record)


def _trl_row(row: Mapping[str, Any], keys: Fields, parse_reprs: bool) -> dict[str, Any]:
    completion = _need(row, keys.completion, "missing_completion", "--completion-key")
    why = (
        " (TRL's table logs no gold answer of itself: train with reward_funcs(...,"
        f" log_answer=True), or log it from a reward function with log_extra({keys.answer!r},"
        " ...))"
    )
    answer = _need(row, keys.answer, "missing_answer", "--answer-key", why)
    prompt = row.get("prompt")
    if parse_reprs:  # a CSV: every cell is text
        if answer == "":
            raise _RowError(
                "missing_answer",
                f"{keys.answer!r} is empty (how pandas writes a missing value to CSV): the row"
                " has no ground truth; fix the data",
            )
        completion = _messages_from_text(completion, keys.completion)
        prompt = _messages_from_text(prompt)
    step = row.get("step")
    return _row(
        _completion_text(completion, keys.completion),
        _answer_text(answer, keys.answer),
        _key_text(row.get(keys.id)),
        _prompt_id(row, keys, prompt, None if step in (None, "") else step),
        prompt,
    )


def _messages_from_text(value: Any, key: str | None = None) -> Any:
    """A CSV cell holding a message list (as JSON or as a Python repr) read back as the list.

    With `key` (the completion's column), a cell that reads as the start of a message list
    but cannot be read back is an error, not text to score: pandas' ``to_csv`` of TRL's
    table writes a list of several messages as numpy's repr (no commas between them,
    ``array(...)`` inside), and scored as text it would read 0 on every reward.
    """
    if not (isinstance(value, str) and value.startswith("[") and value.rstrip().endswith("]")):
        return value
    try:
        parsed = json.loads(value)
    except (ValueError, RecursionError):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            if key is not None and _MESSAGE_START.match(value):
                raise _RowError(
                    "completion_not_text",
                    f"{key!r} holds a list of chat messages written in a form that cannot be"
                    " read back (numpy's repr, as pandas' to_csv writes TRL's table); score"
                    " the .parquet file TRL wrote, or write the messages as JSON",
                ) from None
            return value
    return parsed if _is_messages(parsed) else value


_MESSAGE_START = re.compile(r"""\[\s*\{\s*['"](role|content)['"]\s*:""")


def _read_trl(reading: Reading, given: Keys) -> Iterator[Row]:
    keys = given.fields()
    path = reading.path
    suffix = Path(path).suffix.lower()
    if suffix == ".parquet" or _starts_with(path, b"PAR1"):
        return _read_parquet(reading, keys)
    if suffix in {".jsonl", ".json"} or _first_char(path) in {"{", "["}:
        found = _first_object(path, reading.max_line_bytes)
        if found.value is not None and _is_wandb_table(found.value):
            return _wandb_table_rows(reading, keys, found.value)
        if found.value is not None and keys.completion not in found.value:
            raise InputError(
                path,
                found.line,
                "wrong_format",
                f"the file holds JSON lines without a {keys.completion!r} field, not TRL's"
                " completions table (step, prompt, completion); pass --format auto, or name"
                " the JSON format: --format jsonl|lm-eval|verl|chat",
            )
        return _json_rows(reading, lambda value: iter((_trl_row(value, keys, False),)))
    return _read_csv(reading, keys)


def _is_wandb_table(value: Mapping[str, Any]) -> bool:
    """A W&B table as a run's files hold it (``media/table/*.table.json``; TRL logs its
    completions table there when it reports to W&B): ``{"columns": [...], "data": [[...]]}``.

    >>> _is_wandb_table({"columns": ["prompt", "completion"], "data": [["q", "a"]]})
    True
    """
    columns, data = value.get("columns"), value.get("data")
    return isinstance(columns, list) and isinstance(data, list) and set(value) <= _WANDB_KEYS


_WANDB_KEYS = frozenset({"columns", "data", "_type", "ncols", "nrows", "column_types", "log_mode"})


def _wandb_table_rows(reading: Reading, keys: Fields, table: Mapping[str, Any]) -> Iterator[Row]:
    """The rows of a W&B table, read as TRL's completions table (a row is a line)."""
    columns = [str(c) for c in table["columns"]]

    def records() -> Iterator[Mapping[str, Any] | _RowError]:
        for line, values in enumerate(table["data"], start=1):
            if isinstance(values, list) and len(values) == len(columns):
                yield dict(zip(columns, values, strict=True))
            else:
                yield _RowError(
                    "not_an_object",
                    f"row {line} of the W&B table is not a list of {len(columns)} values, one"
                    " per column; the table file is damaged",
                )

    return _table_rows(reading, keys, records())


def _first_char(path: str) -> str:
    """The first non-blank character of a file ("" for a pipe, or none in its first KiB)."""
    if not Path(path).is_file():
        return ""
    with open(path, "rb") as handle:
        head = handle.read(1024).removeprefix(_BOM).lstrip()
    return chr(head[0]) if head else ""


def _starts_with(path: str, magic: bytes) -> bool:
    if not Path(path).is_file():
        return False  # a pipe: peeking would take its first bytes
    with open(path, "rb") as handle:
        return handle.read(len(magic)) == magic


def _read_parquet(reading: Reading, keys: Fields) -> Iterator[Row]:
    import pyarrow.parquet as pq  # a dependency, but only this reader needs it

    path = reading.path
    try:
        table = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises several types for a file that is not parquet
        raise InputError(
            path, None, "unreadable", f"not a readable parquet file ({error}); pass --format"
        ) from None
    return _parquet_rows(reading, keys, table)


def _parquet_rows(reading: Reading, keys: Fields, table: Any) -> Iterator[Row]:
    batches = table.iter_batches(batch_size=1024)
    return _table_rows(reading, keys, (row for batch in batches for row in batch.to_pylist()))


def _table_rows(
    reading: Reading, keys: Fields, records: Iterable[Mapping[str, Any] | _RowError]
) -> Iterator[Row]:
    """TRL's table, record by record (a record that could not be read is its error); a
    table's lines are its rows."""
    for line, record in enumerate(records, start=1):
        reading.lines_read = line
        try:
            if isinstance(record, _RowError):
                raise record
            yield line, _trl_row(record, keys, parse_reprs=False)
        except _RowError as error:
            yield line, InputError(reading.path, line, error.code, error.message)


def _parquet_columns(path: str) -> list[str]:
    import pyarrow.parquet as pq

    try:
        return [str(name) for name in pq.read_schema(path).names]
    except Exception as error:  # ArrowInvalid, OSError, ...: the file is not parquet
        raise InputError(
            path, None, "unreadable", f"not a readable parquet file ({error})"
        ) from None


# Invalid bytes, read with errors="surrogateescape", become these code points.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_QUOTE_FIX = 'close it, or write a quote inside a field as ""'


def _open_csv(path: str) -> TextIO:
    # newline="": the csv module sees the newlines inside quoted fields as they are.
    return open(path, newline="", encoding="utf-8-sig", errors="surrogateescape")


class _CsvLines:
    """A CSV file's lines for `csv.reader`, numbered, and kept for the record being read.

    Each line is checked for invalid UTF-8 alone, so the error names its line and the
    record still ends where it ends. The lines of the record being read are kept, so that
    a record that an unclosed quote ran to the end of the file can be read again from the
    line after the quote's.
    """

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self._again: list[tuple[int, str]] = []  # lines to read again, the next one last
        self.record: list[tuple[int, str]] = []  # the record's lines so far
        self.lines_read = 0  # the file's lines, each counted once
        self.bad_bytes = ""  # where the record first holds bytes that are not UTF-8
        self.at_end = False  # the last line asked for was past the end of the file

    def __iter__(self) -> _CsvLines:
        return self

    def __next__(self) -> str:
        if self._again:
            number, text = self._again.pop()
        else:
            text = self._handle.readline()
            if not text:
                self.at_end = True
                raise StopIteration
            self.lines_read += 1
            number = self.lines_read
        self.at_end = False
        if not self.bad_bytes and (bad := _ESCAPED_BYTE.search(text)):
            self.bad_bytes = f"line {number}, column {bad.start() + 1}"
        self.record.append((number, text))
        return text

    def start_record(self) -> None:
        self.record, self.bad_bytes = [], ""

    def read_again_after_first(self) -> None:
        """Read the record's lines again from its second: its first opened the quote."""
        self._again.extend(reversed(self.record[1:]))


def _csv_header(path: str) -> list[str]:
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    with _open_csv(path) as handle:
        lines = _CsvLines(handle)
        return _header(path, lines, csv.reader(lines, strict=True))


def _csv_columns(path: str) -> list[str] | None:
    """The header of a CSV table with two columns or more, else None."""
    try:
        columns = _csv_header(path)
    except InputError:
        return None
    return columns if len(columns) > 1 else None


def _header(path: str, lines: _CsvLines, reader: Any) -> list[str]:
    """The first record; `InputError` when the file is empty or not a CSV table."""
    try:
        header: list[str] = next(reader)
    except StopIteration:
        raise InputError(
            path, None, "empty", "the file is empty; there is nothing to score"
        ) from None
    except csv.Error as error:
        raise InputError(path, 1, "unreadable", f"not a readable CSV header ({error})") from None
    first = lines.record[0][1].lstrip()
    if first.startswith(("{", "[")):
        raise InputError(
            path,
            1,
            "wrong_format",
            f"line 1 starts with {first[0]!r}: the file holds JSON, not the CSV table that"
            " --format trl reads; pass --format auto, or name the JSON format:"
            " --format jsonl|lm-eval|verl|chat",
        )
    if lines.bad_bytes:
        raise InputError(
            path,
            1,
            "unreadable",
            f"the CSV header is not valid UTF-8 (at {lines.bad_bytes}); re-encode the file"
            " as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
        )
    return header


def _read_csv(reading: Reading, keys: Fields) -> Iterator[Row]:
    csv.field_size_limit(_CSV_FIELD_LIMIT)
    path = reading.path
    with _open_csv(path) as handle:
        lines = _CsvLines(handle)
        # strict: a quote that does not end its field is an error, not text run together
        reader = csv.reader(lines, strict=True)
        try:
            header = _header(path, lines, reader)
        finally:
            reading.lines_read = lines.lines_read
        while True:
            lines.start_record()
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                yield _csv_error(path, lines, error)
                continue
            finally:
                reading.lines_read = lines.lines_read
            line, last = lines.record[0][0], lines.record[-1][0]
            if not any(cell.strip() for cell in cells):  # a blank line, or only empty fields
                reading.blank_lines += last - line + 1
                continue
            if lines.bad_bytes:
                message = (
                    f"not valid UTF-8 (at {lines.bad_bytes}); re-encode the file as UTF-8"
                    " (e.g. `iconv -f latin1 -t utf-8`)"
                )
                yield line, InputError(path, line, "invalid_utf8", message)
                continue
            if len(cells) != len(header):
                fix = (
                    f"; the record runs from line {line} to line {last}: if a quote on line"
                    f" {line} is unclosed, {_QUOTE_FIX}"
                    if last > line
                    else "; quote fields that hold commas or newlines"
                )
                message = f"the row has {len(cells)} fields and the header {len(header)}{fix}"
                yield line, InputError(path, line, "invalid_csv", message)
                continue
            try:
                yield line, _trl_row(dict(zip(header, cells, strict=True)), keys, parse_reprs=True)
            except _RowError as error:
                yield line, InputError(path, line, error.code, error.message)


def _csv_error(path: str, lines: _CsvLines, error: csv.Error) -> Row:
    """The error of a record the csv module could not read, and where reading goes on.

    A quoted field that runs to the end of the file was opened by a quote that nothing
    closes: the lines after the one it opens on are read again as records. Any other
    error stops the record where it is met, and reading goes on after that line: there the
    opening quote was closed by some later quote, and which of the two is the stray one
    cannot be told, so no line inside is read again (it could read prose as a row).
    """
    line, last = lines.record[0][0], lines.record[-1][0]
    if lines.at_end:
        lines.read_again_after_first()
        message = (
            "an unclosed quote: a quoted field opens on this line and runs to the end of the"
            f" file; {_QUOTE_FIX}"
        )
    elif last > line:
        message = (
            f"not valid CSV ({error} on line {last}); the record runs from line {line}: if"
            f" a quote on line {line} is unclosed, {_QUOTE_FIX}"
        )
    else:
        message = f"not valid CSV ({error}); a quoted field must end at its quote: {_QUOTE_FIX}"
    return line, InputError(path, line, "invalid_csv", message)


_READERS: dict[str, Callable[[Reading, Keys], Iterator[Row]]] = {
    "jsonl": _read_jsonl,
    "lm-eval": _read_lm_eval,
    "trl": _read_trl,
    "verl": _read_verl,
    "chat": _read_chat,
}
