"""Rows to scored rows: read JSONL, score every line under every scheme, build a DataFrame.

The result is long form, one row per input line per scheme, in the input's order::

    line  id  group  scheme  correctness  digit  format  mark  total  correctness_reason ...

Reading streams the file in byte ranges; with several workers each process reads and scores
its own ranges and sends back compact columns, so the parent never parses JSON. Bad input
raises `InputError` naming the file, the line and the fix, unless ``on_error="skip"``: then
every good line is scored and every skipped line is listed in `ScoreResult.skipped`.

The trainer and the integrations call `score_records` (in-memory rows) and get the same
frame from the same code.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import numbers
import os
import re
import shlex
import signal
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from rewardkit.numbers import number_text
from rewardkit.rewards import Reward, batch_scorer, is_builtin
from rewardkit.schemes import (
    RewardError,
    Scheme,
    SchemeLike,
    call_reward,
    escape_surrogates,
    schemes_of,
    weighted_total,
)

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "Fields",
    "InputError",
    "Keys",
    "ScoreResult",
    "Skipped",
    "default_workers",
    "score_file",
    "score_records",
    "score_rows",
]

DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"
_Values = tuple[str, str, str | None, str | None]  # what a row holds: completion, answer, id, group

# Below this size one in-process worker is faster than starting a pool, with the built-in
# rewards (some 100,000 lines a second); a custom reward may take milliseconds a line.
# The id and group columns' dtype: pandas 3's "str" keeps a null as a null, and so does
# pandas 2's "string"; pandas 2's "str" is numpy's and turns None into the text "None",
# which made every row without a group one group.
_TEXT = "str" if int(pd.__version__.split(".")[0]) >= 3 else "string"
_PARALLEL_MIN_BYTES = 4 * 1024 * 1024
_CHUNKS_PER_WORKER = 4


@dataclass(frozen=True)
class Keys:
    """Which fields hold what, as the user names them; None means the format's own field.

    The own fields: ``completion``, ``answer`` and ``id`` in rewardkit's JSON lines,
    ``resps`` and ``target`` in lm-eval's samples, ``output`` and ``gts`` in verl's dumps
    (`rewardkit.readers`). A name given reads that field, even one that is another
    format's own: ``Keys(answer="answer")`` reads a verl dump's ``answer`` field. `group`
    None means ``prompt_id``, else ``prompt``.

    >>> Keys().fields(completion="output", answer="gts")
    Fields(completion='output', answer='gts', id='id', group=None)
    >>> Keys(answer="answer").fields(completion="output", answer="gts").answer
    'answer'
    """

    completion: str | None = None
    answer: str | None = None
    id: str | None = None
    group: str | None = None

    def fields(
        self, completion: str = "completion", answer: str = "answer", id: str = "id"
    ) -> Fields:
        """The fields to read in a format whose own fields are the arguments."""
        return Fields(
            completion if self.completion is None else self.completion,
            answer if self.answer is None else self.answer,
            id if self.id is None else self.id,
            self.group,
        )


@dataclass(frozen=True)
class Fields:
    """`Keys` resolved for one format: the name of every field to read."""

    completion: str
    answer: str
    id: str
    group: str | None


class InputError(ValueError):
    """Input that cannot be scored: names the file, the line, what is wrong and the fix.

    The fix names `rewardkit score`'s flags; in Python, ``--answer-key NAME`` is
    ``Keys(answer=NAME)`` (and so on for the other keys), ``--on-error skip`` is
    ``on_error="skip"`` and ``--max-line-bytes`` is ``max_line_bytes=``.
    """

    def __init__(self, path: str, line: int | None, code: str, message: str) -> None:
        self.path = path
        self.line = line
        self.code = code
        self.message = message
        where = f"{path}, line {line}" if line is not None else path
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:  # back from a worker process, say
        return InputError, (self.path, self.line, self.code, self.message)


@dataclass(frozen=True)
class Skipped:
    """A line that was not scored with ``on_error="skip"``, and why."""

    line: int
    code: str
    message: str


@dataclass
class ScoreResult:
    """The scored frame plus what a person must know about the input."""

    frame: pd.DataFrame
    schemes: tuple[Scheme, ...]
    path: str
    lines_read: int
    skipped: list[Skipped] = field(default_factory=list)
    blank_lines: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_scored(self) -> int:
        """Rows in the frame (one per scheme each): a line of some formats holds several
        rows (lm-eval's responses) or none, so this is not worked out from the lines."""
        return len(self.frame) // max(len(self.schemes), 1)


def default_workers() -> int:
    """All the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


# --- one line of input -> (completion, answer, id, group) ----------------------------------


class _BadLine(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Names other tools give these fields, most likely first, so that the error can name the
# flag whole. `label` is left out: it is often a correctness label, not the gold.
_OTHER_NAMES = {
    "--answer-key": ("gold", "ground_truth", "gold_answer", "target", "solution", "reference"),
    "--completion-key": ("response", "output", "generation", "model_output", "prediction"),
    "--group-key": ("question", "problem", "query"),
}


def _suggest(keys: Iterable[str], wanted: str, flag: str) -> str:
    """Says which field is missing, which the line has, and the flag that fixes it.

    >>> print(_suggest({"completion": "c", "gold": "5"}, "answer", "--answer-key"))
    no 'answer' field (the line has: completion, gold); if gold holds it, pass --answer-key gold
    """
    names = sorted(str(k) for k in keys)
    listed = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
    likely = next((n for n in _OTHER_NAMES.get(flag, ()) if n in names), None)
    if likely is not None:
        hint = f"; if {likely} holds it, pass {flag} {likely}"
    else:
        hint = f"; if another field holds it, pass {flag} NAME" if names else ""
    return f"no {wanted!r} field (the line has: {listed or 'no fields'}){hint}"


def a_json_type(value: Any) -> str:
    """What `value` is, in JSON's words, for error messages.

    >>> [a_json_type(v) for v in ({}, [], "x", True, 5, 2.5, None)]
    ['an object', 'an array', 'a string', 'a boolean', 'a number', 'a number', 'null']
    >>> a_json_type(np.float32(1))  # from a data frame: its own type
    'a float32'
    """
    kind = _JSON_TYPES.get(type(value))
    return kind if kind else f"a {type(value).__name__}"


_JSON_TYPES = {
    dict: "an object",
    list: "an array",
    str: "a string",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    type(None): "null",
}


def _described(value: Any) -> str:
    """What `value` is and a glimpse of it: ``a number (5)``, ``null``."""
    return "null" if value is None else f"{a_json_type(value)} ({_preview(value)})"


def _preview(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and "role" in m for m in value)
    )


def _content_text(content: Any) -> Any:
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
    return content


def _last_assistant(messages: list[dict[str, Any]], key: str) -> int:
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].get("role") == "assistant":
            return index
    roles = ", ".join(sorted({str(m.get("role")) for m in messages}))
    raise _BadLine(
        "no_assistant_message",
        f"{key!r} has no assistant message (roles seen: {roles}); nothing to score",
    )


def _completion_text(value: Any, key: str) -> str:
    """A completion is text or a chat-message list (TRL's conversational form)."""
    if _is_messages(value):
        index = _last_assistant(value, key)
        content = _content_text(value[index].get("content"))
        if isinstance(content, str):
            return content
        raise _BadLine(
            "completion_not_text",
            f"{key!r} is a list of chat messages whose last assistant message (message"
            f" {index + 1}) has no text content ({_preview(value[index])}), as with a tool"
            " call; score rows whose last assistant message is text, or fix the generator",
        )
    if isinstance(value, str):
        return value
    raise _BadLine(
        "completion_not_text",
        f"{key!r} is {_described(value)}, not text or a list of chat"
        " messages; fix the generator's output or pass --completion-key",
    )


def _answer_text(value: Any, key: str) -> str:
    """A gold answer as text: a string as it is, a number in plain decimal notation.

    Any real number counts (numpy's too, as a data frame hands them out); a float is
    written without an exponent, so the last number of the text is the value itself.

    >>> _answer_text(18, "answer"), _answer_text(18.0, "answer"), _answer_text(5e-05, "answer")
    ('18', '18.0', '0.00005')
    >>> _answer_text(1e21, "answer"), _answer_text(np.float32(0.1), "answer")
    ('1000000000000000000000.0', '0.1')
    """
    if isinstance(value, str):
        return value
    if type(value) is int:  # JSON's numbers: the fast path
        try:
            return str(value)
        except ValueError:  # over 4,300 digits: number_text says so
            pass
    if value is None or value is pd.NA or value is pd.NaT:  # NaN: "nan, not a number"
        raise _BadLine(
            "missing_answer", f"{key!r} is null: the row has no ground truth; fix the data"
        )
    try:
        return number_text(value)
    except TypeError:
        raise _BadLine(
            "answer_not_text",
            f"{key!r} is {_described(value)}, not a string or number;"
            " fix the data or pass --answer-key",
        ) from None
    except ValueError as error:
        if isinstance(value, numbers.Integral):
            raise _BadLine(
                "answer_not_text", f"{key!r} is {error}; write the gold as a string"
            ) from None
        raise _BadLine(
            "missing_answer", f"{key!r} is {error}: the row has no ground truth; fix the data"
        ) from None


def _is_null(value: Any) -> bool:
    """Whether `value` stands for "no value": None, NaN (Python's or numpy's), or pandas'
    NA and NaT, as a data frame's missing cells come out of ``to_dict("records")``.

    >>> [_is_null(v) for v in (None, float("nan"), np.float32("nan"), pd.NA, 0, "", "nan")]
    [True, True, True, True, False, False, False]
    """
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, (float, np.floating)) and bool(np.isnan(value))


def _key_text(value: Any) -> str | None:
    """An id or group value as text: a string as it is, anything else as its JSON (numpy's
    scalars as Python's); a null value is None. `_BadLine` when there is no such text."""
    if isinstance(value, str):
        return value
    if type(value) is int:  # the common case, without json's encoder
        try:
            return str(value)
        except ValueError:  # over 4,300 digits: json.dumps says so below
            pass
    if _is_null(value):
        return None
    try:
        return json.dumps(value, default=_plain)
    except (TypeError, ValueError) as error:  # not JSON, or an int too long to write
        raise _BadLine(
            "bad_key",
            f"a row's id or group value ({type(value).__name__}) has no text ({error});"
            " use a string or a number",
        ) from None


def _plain(value: Any) -> Any:
    """What `json.dumps` cannot write, as it can: numpy's scalars as Python's, numpy's
    arrays as lists, anything else (a date from a parquet table) as its text."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    return str(value)


def _group_of(record: Mapping[str, Any], keys: Fields) -> str | None:
    """The row's group: `keys.group`, else ``prompt_id``, else a digest of ``prompt``.

    A null value is no value: a row whose ``prompt_id`` is null falls back to its prompt,
    and one with neither is in no group (never in a group named "null" with every other
    such row).
    """
    if keys.group is not None:
        if keys.group not in record:
            raise _BadLine("missing_group", _suggest(record, keys.group, "--group-key"))
        value = record[keys.group]
    else:
        value = record.get("prompt_id")
        if type(value) is str:  # the common case first
            return value
        if _is_null(value):
            prompt = record.get("prompt")
            if _is_null(prompt):
                return None
            text = prompt if isinstance(prompt, str) else _prompt_json(prompt)
            # Identical prompts form a group; a digest keeps the frame small. A lone
            # surrogate (a JSON "\\ud800") is no UTF-8, but it is still the prompt's.
            data = text.encode("utf-8", "surrogatepass")
            return "prompt:" + hashlib.blake2b(data, digest_size=8).hexdigest()
    return _key_text(value)


def _prompt_json(prompt: Any) -> str:
    try:
        return json.dumps(prompt, sort_keys=True, default=_plain)
    except (TypeError, ValueError) as error:
        raise _BadLine(
            "bad_key", f"the row's prompt ({type(prompt).__name__}) has no text ({error})"
        ) from None


def _read_record(record: Any, keys: Fields) -> _Values:
    if not isinstance(record, dict):
        raise _BadLine(
            "not_an_object",
            f"the line is {a_json_type(record)}, not an object; write one JSON object per line",
        )
    try:
        completion = record[keys.completion]
    except KeyError:
        raise _BadLine(
            "missing_completion", _suggest(record, keys.completion, "--completion-key")
        ) from None
    try:
        answer = record[keys.answer]
    except KeyError:
        raise _BadLine("missing_answer", _suggest(record, keys.answer, "--answer-key")) from None
    if not isinstance(completion, str):  # the common case costs no call
        completion = _completion_text(completion, keys.completion)
    if not isinstance(answer, str):
        answer = _answer_text(answer, keys.answer)
    raw_id = record.get(keys.id)
    row_id = raw_id if isinstance(raw_id, str) or raw_id is None else _key_text(raw_id)
    return completion, answer, row_id, _group_of(record, keys)


# json.loads(text) is its default decoder's C scanner behind three Python-level wrappers
# (argument checks, leading and trailing whitespace, error translation).
_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_JSON_WHITESPACE = " \t\n\r"


def _loads(text: str) -> Any:
    """``json.loads(text)``: the same value, and for anything unusual json.loads itself.

    A line is one object and its newline: the scanner reads the object, and only leading
    whitespace or an error (which json.loads then reports in its own words) takes the
    slow way.
    """
    try:
        value, end = _scan_json(text, 0)
    except StopIteration:  # leading whitespace, or not JSON
        return json.loads(text)
    if end == len(text) or not text[end:].strip(_JSON_WHITESPACE):
        return value
    return json.loads(text)  # extra data after the object: json.loads raises


def _without_line_end(raw: bytes, error: json.JSONDecodeError) -> json.JSONDecodeError:
    """json's error for the line without its line end: a line cut inside a string is then
    an "Unterminated string", not an "Invalid control character" (the newline).

    >>> raw = b'{"question": "cut here\\n'
    >>> try:
    ...     json.loads(raw.decode())
    ... except json.JSONDecodeError as error:
    ...     print(error.msg, "->", _without_line_end(raw, error).msg)
    Invalid control character at -> Unterminated string starting at
    """
    try:
        json.loads(raw.decode().rstrip("\r\n"))
    except json.JSONDecodeError as bare:
        return bare
    except (ValueError, RecursionError):  # the first error stands
        pass
    return error


def _json_value(raw: bytes) -> Any:
    """The JSON value of one line, or `_BadLine` saying why it has none (every JSON-lines
    reader of rewardkit reads its lines through this)."""
    try:
        # Decoding first is faster than handing json the bytes, which first guesses the
        # encoding in Python; the errors are the same.
        return _loads(raw.decode())
    except UnicodeDecodeError as error:
        bad = raw[error.start : error.end]
        raise _BadLine(
            "invalid_utf8",
            f"not valid UTF-8 (bytes {error.start}-{error.end}: {bad!r}); re-encode the file"
            " as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
        ) from None
    except json.JSONDecodeError as error:
        error = _without_line_end(raw, error)
        raise _BadLine(
            "invalid_json",
            # json's msg for a control character already ends in "at".
            f"not valid JSON ({error.msg.removesuffix(' at')} at column {error.colno}); each"
            " line must be one complete JSON object",
        ) from None
    except ValueError as error:  # json reads an int of over 4,300 digits with int()
        raise _BadLine(
            "invalid_json",
            f"not readable JSON ({error}); write such a number as a string",
        ) from None
    except RecursionError:  # json's C scanner recurses once per [ or {
        raise _BadLine(
            "invalid_json",
            "not readable JSON (its lists and objects nest too deep to read); fix the line",
        ) from None


BOM_WARNING = "the file starts with a UTF-8 byte-order mark; it was read past"


def _bom_line() -> _BadLine:
    return _BadLine(
        "bom",
        "the file starts with a UTF-8 byte-order mark (BOM); re-save it as UTF-8 without"
        " BOM, or pass --on-error skip to read past it",
    )


def _too_long(max_bytes: int) -> _BadLine:
    return _BadLine(
        "line_too_long",
        f"the line is over {max_bytes:,} bytes (--max-line-bytes); this is usually a runaway"
        " generation: raise --max-line-bytes to score it",
    )


# (how the file starts, the kind, the command that decompresses it, the one that streams it)
_COMPRESSED = (
    (re.compile(rb"\x1f\x8b"), "gzip", "gunzip -k", "gunzip -c"),
    (re.compile(rb"BZh[1-9]"), "bzip2", "bunzip2 -k", "bunzip2 -c"),
    (re.compile(rb"\xfd7zXZ\x00"), "xz", "unxz -k", "unxz -c"),
    (re.compile(rb"\x28\xb5\x2f\xfd"), "zstd", "unzstd", "unzstd -c"),
    (re.compile(rb"PK\x03\x04"), "zip", "unzip", "unzip -p"),
)


def _check_file(path: str, stream: str | None = None, *, table: bool = False) -> None:
    """Raise `InputError` unless `path` can be read as text: found, a file, not compressed,
    not UTF-16, and not a parquet table unless `table` (the trl format reads those).

    A pipe passes unread (peeking would take its first bytes). `stream` names the pipe
    that `path` is a copy of: a compressed stream is then to be decompressed in the pipe.
    """
    file = Path(path)
    if not file.exists():
        raise InputError(path, None, "not_found", "no such file; check the path")
    if file.is_dir():
        raise InputError(path, None, "is_directory", f"is a directory; {_folder_fix(file)}")
    if not file.is_file():
        return
    try:
        with open(path, "rb") as handle:
            block = handle.read(1 << 16)
            head = block[:8]
    except OSError as error:
        raise InputError(
            path, None, "unreadable", f"cannot read the file ({error.strerror})"
        ) from None
    named = stream or path
    for magic, kind, keep, unpack in _COMPRESSED:
        if not magic.match(head):
            continue
        if stream is not None:  # the copy goes when the process exits: name no command on it
            raise InputError(
                stream,
                None,
                "compressed",
                f"the stream is {kind}-compressed, not text; decompress it in the pipe"
                f" (`... | {unpack} | rewardkit score /dev/stdin`, or <({unpack} FILE))",
            )
        quoted = shlex.quote(path)
        inner = Path(path).with_suffix("").suffix.lower()  # "x.csv.gz": ".csv"
        streamed = (
            ""  # a table's format is told by its name, which a stream does not have
            if inner in {".csv", ".parquet"}
            else f", or pass the stream: <({unpack} {quoted})"
        )
        raise InputError(
            path,
            None,
            "compressed",
            f"the file is {kind}-compressed, not text; decompress it first"
            f" (`{keep} {quoted}`) and pass the result{streamed}",
        )
    utf16 = None
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        why = "it starts with UTF-16's byte-order mark, as Windows PowerShell's `>` writes text"
        utf16 = "utf-16", why
    elif _every_other_zero(head, 1):  # '{\0"\0c\0o\0'
        utf16 = "utf-16le", "every other byte is zero: UTF-16 without a byte-order mark"
    elif _every_other_zero(head, 0):
        utf16 = "utf-16be", "every other byte is zero: UTF-16 without a byte-order mark"
    if utf16 is not None:
        encoding, why = utf16
        fix = _converted(f"iconv -f {encoding} -t utf-8", path, stream, "utf8")
        raise InputError(
            named, None, "not_utf8", f"the file is UTF-16 ({why}), not UTF-8; re-encode it: {fix}"
        )
    if head.startswith(b"PAR1") and not table:
        raise InputError(
            named,
            None,
            "wrong_format",
            "is a parquet table (TRL writes its completions log as one), not JSON lines;"
            " pass --format trl, or --format auto",
        )
    if not head.startswith(b"PAR1") and _cr_lines(block):
        fix = _converted("tr '\\r' '\\n'", path, stream, "lf")
        raise InputError(
            named,
            None,
            "cr_line_ends",
            "the file's lines end in a carriage return alone (old Mac line ends), so it"
            f" reads as one line; convert them: {fix}",
        )


def _every_other_zero(head: bytes, zero: int) -> bool:
    """Whether `head`'s 8 bytes are zero at every other place from `zero` and only there:
    ASCII in UTF-16 without a byte-order mark. UTF-8 text holds no zero bytes, and JSON
    none at all; four in eight bytes is not a bad line of a UTF-8 file.

    >>> _every_other_zero('{"a"'.encode("utf-16le"), 1), _every_other_zero(b'{"a": 1}', 1)
    (True, False)
    """
    return len(head) == 8 and all((byte == 0) == (i % 2 == zero) for i, byte in enumerate(head))


def _converted(command: str, path: str, stream: str | None, tag: str) -> str:
    """The shell line that converts the file with `command` (a filter) to a file to score,
    or, for a stream, the pipe to put it in (`path` is then a temporary copy, gone at exit).

    >>> print(_converted("tr a b", "my c.jsonl", None, "lf"))
    `tr a b < 'my c.jsonl' > 'my c-lf.jsonl'`
    """
    if stream is not None:
        return f"`... | {command} | rewardkit score -`"
    file = Path(path)
    return f"`{command} < {shlex.quote(path)} > {shlex.quote(f'{file.stem}-{tag}{file.suffix}')}`"


def _cr_lines(block: bytes) -> bool:
    """Whether the text in `block` (a file's start) breaks lines with CR alone: two or more
    CRs, no LF (a CRLF file has both), and UTF-8 text.

    >>> _cr_lines(b'{"a": 1}\\r{"a": 2}\\r'), _cr_lines(b'{"a": 1}\\r\\n{"a": 2}\\r\\n')
    (True, False)
    """
    if b"\n" in block or block.count(b"\r") < 2:
        return False
    try:
        block.decode("utf-8")
    except UnicodeDecodeError as error:  # cut inside a character at the block's end is text
        return error.start >= len(block) - 3
    return True


def _folder_fix(folder: Path) -> str:
    """What to pass instead of a folder; TRL writes its completion log as a folder of
    ``completions_<step>.parquet`` files, one per logging step."""
    try:
        logs = sorted(folder.glob("completions_*.parquet"))
    except OSError:
        logs = []
    if not logs:
        return "pass a file"
    joined = folder / "all.parquet"
    code = (
        "import glob, pandas as pd; pd.concat(map(pd.read_parquet,"
        f" sorted(glob.glob({str(folder / 'completions_*.parquet')!r}))), ignore_index=True)"
        f".to_parquet({str(joined)!r})"
    )
    return (
        f"it holds TRL's completion logs ({len(logs)} completions_*.parquet files, one per"
        f" logging step): pass one ({shlex.quote(str(logs[-1]))} is the last), or join them"
        f" into one file, whose groups are still per step: python -c {shlex.quote(code)}"
        f" && rewardkit score {shlex.quote(str(joined))}"
    )


# --- scoring into columns ------------------------------------------------------------------


class _Columns:
    """Growing columns for one chunk of input: compact to build and to send between processes.

    Each result is stored as a small code into a table of the distinct results seen, so a
    chunk travels as int arrays. Rows come a block at a time (`add`). The built-in rewards of
    every scheme are scored together, one `batch_scorer` call per block, and their results
    share one code per row: a row of built-in results takes one dict lookup and one append.
    Each custom reward has its own codes and table.
    """

    def __init__(self, schemes: Sequence[Scheme], prefix: str = "") -> None:
        self.schemes = schemes
        self.prefix = prefix  # put before every completion (`score_file`'s completion_prefix)
        self.lines = array("q")
        self.ids: list[str | None] | pa.Array = []  # an Array once pickled
        self.groups: list[str | None] | pa.Array = []
        self.skipped: list[Skipped] = []
        self.blank = 0
        self.bom = False
        self.count = 0  # lines seen, for line numbering across chunks
        slots = [
            (s_index, r_index, reward)
            for s_index, scheme in enumerate(schemes)
            for r_index, reward in enumerate(scheme.rewards)
        ]
        # (scheme, reward) -> index into a row of `batch_rows`, or into `custom`
        self.batch_index: dict[tuple[int, int], int] = {}
        self.custom_index: dict[tuple[int, int], int] = {}
        batch_fns: list[Callable[[str, str], Reward]] = []
        self._custom_fns: list[Callable[[str, str], Reward]] = []
        for s_index, r_index, reward in slots:
            fn = reward.fn
            if reward.builtin and is_builtin(fn):
                self.batch_index[s_index, r_index] = len(batch_fns)
                batch_fns.append(fn)
            else:
                self.custom_index[s_index, r_index] = len(self._custom_fns)
                self._custom_fns.append(functools.partial(call_reward, reward))  # RewardError
        # The schemes with a custom reward, whose totals are checked row by row: each
        # value is finite, but their weighted sum may not be (a built-in scheme's is, by the
        # checks of `Scheme`). Each reward as (in a batch row?, its index there).
        self._totals: list[tuple[Scheme, list[tuple[bool, int]]]] = []
        for s_index, scheme in enumerate(schemes):
            where = [self._where(s_index, r) for r in range(len(scheme.rewards))]
            if not all(in_batch for in_batch, _ in where):
                self._totals.append((scheme, where))
        self.batch_codes = array("i")
        self.batch_table: dict[tuple[Reward, ...], int] = {}
        self.custom = [(array("i"), dict[Reward, int]()) for _ in self.custom_index]
        self._batch = batch_scorer(batch_fns) if batch_fns else None

    def _where(self, s_index: int, r_index: int) -> tuple[bool, int]:
        """Where a reward's results are: (True, index in a batch row) or (False, in custom)."""
        if (s_index, r_index) in self.batch_index:
            return True, self.batch_index[s_index, r_index]
        return False, self.custom_index[s_index, r_index]

    def __getstate__(self) -> dict[str, Any]:
        # Functions stay behind: a finished chunk travels as its columns alone, its texts as
        # Arrow arrays (a few buffers to pickle, not a Python object per row).
        functions = {"_batch", "_custom_fns", "schemes", "_totals"}  # a lambda would not pickle
        state = {k: v for k, v in self.__dict__.items() if k not in functions}
        state["ids"], state["groups"] = _texts(self.ids), _texts(self.groups)
        return state

    def add(self, lines: Sequence[int], rows: Sequence[_Values]) -> bool:
        """Score `rows` (completion, answer, id, group); `lines` are their line numbers.

        A row on which a custom reward fails (raises, or returns what is not a reward) is
        not added: it goes to `skipped` with code ``reward_error``. Returns whether every
        row was added.
        """
        if not rows:
            return True
        completions, answers, ids, groups = zip(*rows, strict=True)
        if self.prefix:
            completions = tuple(self.prefix + c for c in completions)
        custom, failed = self._custom_results(completions, answers)
        batch: list[tuple[Reward, ...]] = []  # the built-in results, when the totals need them
        if self._totals and self._batch is not None:
            batch = list(self._batch(completions, answers))
        for scheme, where in self._totals:
            for i in range(len(rows)):
                if i in failed:
                    continue
                values = [
                    (batch[i][k] if in_batch else custom[k][i]).value for in_batch, k in where
                ]
                try:
                    weighted_total(scheme, values)
                except RewardError as error:
                    failed[i] = str(error)
        if failed:
            for i in sorted(failed):
                self.skipped.append(Skipped(lines[i], "reward_error", failed[i]))
            keep = [i for i in range(len(rows)) if i not in failed]
            if not keep:
                return False
            lines = [lines[i] for i in keep]
            completions, answers, ids, groups = (
                tuple(column[i] for i in keep) for column in (completions, answers, ids, groups)
            )
            custom = [[column[i] for i in keep] for column in custom]
            batch = [batch[i] for i in keep] if batch else batch
        if self._batch is not None:
            table, codes = self.batch_table, self.batch_codes
            for results in batch or self._batch(completions, answers):
                code = table.get(results)
                if code is None:
                    code = table[results] = len(table)
                codes.append(code)
        for column, (codes, custom_table) in zip(custom, self.custom, strict=True):
            for result in column:
                code = custom_table.get(result)
                if code is None:
                    code = custom_table[result] = len(custom_table)
                codes.append(code)
        self.lines.extend(lines)
        self.ids.extend(ids)
        self.groups.extend(groups)
        return not failed

    def _custom_results(
        self, completions: Sequence[str], answers: Sequence[str]
    ) -> tuple[list[list[Reward]], dict[int, str]]:
        """Each custom reward over the rows, and why it failed on a row, by row index.

        A failed row's results are placeholders (the row is dropped by `add`).
        """
        columns: list[list[Reward]] = []
        failed: dict[int, str] = {}
        for fn in self._custom_fns:
            column: list[Reward] = []
            for i, (completion, answer) in enumerate(zip(completions, answers, strict=True)):
                try:
                    column.append(fn(completion, answer))
                except RewardError as error:
                    failed.setdefault(i, str(error))
                    column.append(_FAILED)
            columns.append(column)
        return columns, failed

    def results(self, s_index: int, r_index: int) -> tuple[list[Reward], Any]:
        """One reward's results as (table of distinct results, int32 codes into it)."""
        if (s_index, r_index) in self.batch_index:
            k = self.batch_index[s_index, r_index]
            table = [row[k] for row in self.batch_table]
            return table, np.frombuffer(self.batch_codes, np.int32)
        codes, custom_table = self.custom[self.custom_index[s_index, r_index]]
        return list(custom_table), np.frombuffer(codes, np.int32)


_FAILED = Reward(0.0, "reward_error")  # stands in for a failed row's result until it is dropped


def _iter_lines(handle: Any, start: int, end: int, max_bytes: int) -> Iterator[bytes]:
    """Lines of ``[start, end)``; an over-long line is not kept: ``b""`` stands for it.

    (A line read from the file is never empty: it holds at least its newline or a byte.)
    """
    handle.seek(start)
    pos = start
    while pos < end:
        raw = handle.readline(max_bytes + 1)
        if not raw:
            return
        pos += len(raw)
        if len(raw) > max_bytes and not raw.endswith(b"\n"):
            # Drain the rest of the line without holding it.
            while raw and not raw.endswith(b"\n"):
                raw = handle.readline(1 << 20)
                pos += len(raw)
            yield b""
            continue
        yield raw


_BLOCK = 64  # lines parsed, then scored, at a time


def _read_line(
    raw: bytes, first: bool, keys: Fields, skip: bool, max_bytes: int
) -> _Values | _BadLine | None:
    """What one line holds: its four fields, None for a blank line, or the `_BadLine`.

    `first` is the file's first line, where a byte-order mark is an error (skipped past
    with `skip`; the caller sees the BOM by the line starting with it).
    """
    try:
        if not raw:
            raise _too_long(max_bytes)
        if first and raw.startswith(_BOM):
            if not skip:
                raise _bom_line()
            raw = raw[len(_BOM) :]
        if not raw or raw.isspace():  # not raw.strip(), without copying the line
            return None
        return _read_record(_json_value(raw), keys)
    except _BadLine as bad:
        return bad


def _score_chunk(
    path: str,
    start: int,
    end: int,
    schemes: Sequence[Scheme],
    keys: Fields,
    skip: bool,
    max_bytes: int,
    prefix: str = "",
) -> _Columns:
    """Score the lines of one byte range. Line numbers are local (1-based within the chunk).

    Lines are parsed `_BLOCK` at a time and the block is then scored: JSON parsing and
    scoring stay apart, each with its code and data warm in the CPU's caches, and each
    reward runs over the block in one loop (`bench/bench_score.py`: 2.53x the parse-only
    time, against 2.97-3.01x line by line).
    """
    columns = _Columns(schemes, prefix)
    local = 0
    stopped = False  # at the first bad line, without `skip`
    with open(path, "rb") as handle:
        lines = _iter_lines(handle, start, end, max_bytes)
        while not stopped and (block := list(itertools.islice(lines, _BLOCK))):
            first = block[0] if local == 0 and start == 0 else None  # the file's first line
            read = [_read_line(raw, raw is first, keys, skip, max_bytes) for raw in block]
            if first is not None:
                columns.bom = skip and first.startswith(_BOM)
            numbers: list[int] = []
            rows: list[_Values] = []
            for fields in read:
                local += 1
                if fields is None:
                    columns.blank += 1
                elif isinstance(fields, _BadLine):
                    columns.skipped.append(Skipped(local, fields.code, fields.message))
                    if not skip:
                        stopped = True
                        break
                else:
                    numbers.append(local)
                    rows.append(fields)
            if not columns.add(numbers, rows) and not skip:
                stopped = True  # a custom reward failed on a row
    columns.count = local
    return columns


# --- chunks and workers --------------------------------------------------------------------


def _chunk_bounds(path: str, size: int, parts: int) -> list[tuple[int, int]]:
    """Byte ranges that start at line starts, about `size / parts` bytes each."""
    if parts <= 1 or size == 0:
        return [(0, size)]
    bounds = [0]
    with open(path, "rb") as handle:
        for i in range(1, parts):
            handle.seek(max(size * i // parts, bounds[-1]))
            handle.readline()  # move to the start of the next line
            pos = handle.tell()
            if pos >= size:
                break
            if pos > bounds[-1]:
                bounds.append(pos)
    bounds.append(size)
    return list(itertools.pairwise(bounds))


_WORKER_STATE: dict[str, Any] = {}


def _init_worker(
    schemes: Sequence[Scheme], keys: Fields, skip: bool, max_bytes: int, prefix: str
) -> None:
    # Ctrl-C reaches the whole process group: the parent stops the workers (`_stop`), so
    # that a worker does not print a traceback of its own or go on to its next chunk.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _WORKER_STATE.update(schemes=schemes, keys=keys, skip=skip, max_bytes=max_bytes, prefix=prefix)


def _worker_chunk(path: str, start: int, end: int) -> _Columns:
    s = _WORKER_STATE
    return _score_chunk(
        path, start, end, s["schemes"], s["keys"], s["skip"], s["max_bytes"], s["prefix"]
    )


def _stop(pool: ProcessPoolExecutor) -> None:
    """End `pool` now: the chunks not begun are cancelled, the running ones killed.

    ``shutdown`` alone waits for every running chunk, which a slow custom reward makes
    minutes (and a hung one, forever) after Ctrl-C.
    """
    # Python 3.14 has terminate_workers(); before it, the processes are only reachable here,
    # and shutdown() drops them.
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(5)


def _worker_died(path: str, start: int) -> InputError:
    """The error for a worker process that died: killed for memory, or a reward crashed it."""
    line, left = 1, start  # the line that starts at byte `start`
    with open(path, "rb") as handle:
        while left > 0 and (block := handle.read(min(left, 1 << 20))):
            line += block.count(b"\n")
            left -= len(block)
    return InputError(
        path,
        None,
        "worker_died",
        f"a worker process died while scoring the lines from line {line} on (killed for"
        " memory, or a custom reward crashed the interpreter); score with --workers 1 to"
        " see the line and the reward, or with fewer workers if memory ran out",
    )


def score_file(
    path: str | Path,
    schemes: SchemeLike | Iterable[SchemeLike],
    keys: Keys = Keys(),
    *,
    workers: int | None = None,
    on_error: str = "raise",
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    progress: Callable[[int, int], None] | None = None,
    completion_prefix: str = "",
) -> ScoreResult:
    """Score a JSONL file under every scheme; see the module docstring for the frame.

    `workers` None means all cores, or one for a file under 4 MiB scored with built-in
    rewards only (a pool would take longer to start); the result does not depend on it.
    `progress` is called with ``(bytes_done, bytes_total)`` as chunks finish.
    `completion_prefix` goes before every completion: the start of the reply a chat
    template wrote into the prompt (``"<think>\\n"``), as the TRL and verl rewards take it.
    """
    if on_error not in {"raise", "skip"}:
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    schemes = schemes_of(schemes)
    name = str(path)
    _check_file(name)
    try:
        size = os.path.getsize(path)
    except OSError as error:
        raise InputError(
            name, None, "unreadable", f"cannot read the file ({error.strerror})"
        ) from None
    skip = on_error == "skip"
    fields = keys.fields()
    if workers is None:  # all cores, where a pool pays for itself
        builtin_only = all(r.builtin for scheme in schemes for r in scheme.rewards)
        small = size < _PARALLEL_MIN_BYTES and builtin_only
        workers = 1 if small else default_workers()
    workers = max(1, workers)
    method = "fork" if "fork" in get_all_start_methods() else "spawn"
    notes = []
    if workers > 1 and method == "spawn" and (why := _unpicklable(schemes)):
        # A spawned worker gets the schemes pickled: a lambda or a nested function cannot be.
        notes.append(f"scored in one process: {why}")
        workers = 1
    bounds = _chunk_bounds(name, size, workers * _CHUNKS_PER_WORKER if workers > 1 else 1)
    chunks: list[_Columns] = []
    done = 0
    if workers == 1 or len(bounds) == 1:
        for start, end in bounds:
            chunks.append(
                _score_chunk(
                    name, start, end, schemes, fields, skip, max_line_bytes, completion_prefix
                )
            )
            done += end - start
            if progress:
                progress(done, size)
    else:
        pool = ProcessPoolExecutor(
            max_workers=min(workers, len(bounds)),
            mp_context=get_context(method),
            initializer=_init_worker,
            initargs=(tuple(schemes), fields, skip, max_line_bytes, completion_prefix),
        )
        start = 0
        try:
            futures = [pool.submit(_worker_chunk, name, start, end) for start, end in bounds]
            for (start, end), future in zip(bounds, futures, strict=True):
                chunks.append(future.result())
                done += end - start
                if progress:
                    progress(done, size)
        except BrokenProcessPool:
            _stop(pool)
            raise _worker_died(name, start) from None
        except BaseException:  # Ctrl-C, or a chunk's error: the other chunks are not waited for
            _stop(pool)
            raise
        pool.shutdown()
    result = _assemble(name, tuple(schemes), chunks, skip)
    result.warnings.extend(notes)
    return result


def _unpicklable(schemes: Sequence[Scheme]) -> str:
    """Why the schemes cannot be sent to a spawned process, or "" when they can."""
    import pickle

    try:
        pickle.dumps(tuple(schemes))
    except Exception as error:  # PicklingError, AttributeError, TypeError: all say why
        return (
            f"the rewards cannot be sent to worker processes ({type(error).__name__}: {error});"
            " define reward functions at the top level of a module to score in several"
        )
    return ""


def _assemble(
    name: str, schemes: tuple[Scheme, ...], chunks: list[_Columns], skip: bool
) -> ScoreResult:
    offset = 0
    skipped: list[Skipped] = []
    for chunk in chunks:
        for item in sorted(chunk.skipped, key=lambda s: s.line):  # a block's reward errors
            line = item.line + offset  # come after its bad lines
            if not skip:
                raise InputError(name, line, item.code, item.message)
            skipped.append(Skipped(line, item.code, item.message))
        offset += chunk.count
    lines_read = offset
    blank = sum(c.blank for c in chunks)
    if lines_read == blank:
        what = "empty" if lines_read == 0 else "only blank lines"
        raise InputError(name, None, "empty", f"the file is {what}; there is nothing to score")
    frame = _frame(schemes, chunks)
    if frame.empty:
        raise InputError(
            name,
            None,
            "nothing_scored",
            f"no line could be scored ({len(skipped)} skipped; the first: line"
            f" {skipped[0].line}: {skipped[0].message})",
        )
    warnings = []
    if any(c.bom for c in chunks):
        warnings.append(BOM_WARNING)
    return ScoreResult(frame, schemes, name, lines_read, skipped, blank, warnings)


def _frame(schemes: tuple[Scheme, ...], chunks: list[_Columns]) -> pd.DataFrame:
    """Interleave the chunks' columns into the long frame: line-major, then scheme."""
    offset = 0
    line_parts = []
    for chunk in chunks:
        line_parts.append(np.frombuffer(chunk.lines, dtype=np.int64) + offset)
        offset += chunk.count
    lines = np.concatenate(line_parts) if line_parts else np.zeros(0, np.int64)
    n, width = len(lines), len(schemes)

    def interleave(per_scheme: list[Any], dtype: Any) -> Any:
        out = np.empty(n * width, dtype=dtype)
        for index, column in enumerate(per_scheme):
            out[index::width] = column
        return out

    data: dict[str, Any] = {
        "line": np.repeat(lines, width),
        "scheme": _categorical(np.tile(np.arange(width), n), [s.name for s in schemes]),
    }
    each_line = np.repeat(np.arange(n), width)
    for name, parts in (("id", [c.ids for c in chunks]), ("group", [c.groups for c in chunks])):
        texts = pa.concat_arrays([_texts(part) for part in parts]) if parts else _texts([])
        if texts.null_count < len(texts):
            # Text becomes pandas' string dtype once per line, then repeats per scheme.
            data[name] = pd.array(texts, dtype=_TEXT).take(each_line)
    totals = []
    reward_columns: dict[str, list[Any]] = {}
    reason_columns: dict[str, list[Any]] = {}
    for s_index, scheme in enumerate(schemes):
        total = np.zeros(n)
        for r_index, reward in enumerate(scheme.rewards):
            decoded = [c.results(s_index, r_index) for c in chunks]
            values = np.concatenate(
                [np.array([r.value for r in table] or [0.0])[codes] for table, codes in decoded]
            )
            total += reward.weight * values
            reward_columns.setdefault(reward.name, [np.nan] * width)[s_index] = values
            reason_columns.setdefault(reward.name, [None] * width)[s_index] = [
                ([r.reason for r in table], codes) for table, codes in decoded
            ]
        totals.append(total)
    for name, per_scheme in reward_columns.items():
        data[name] = interleave(per_scheme, np.float64)
    data["total"] = interleave(totals, np.float64)
    for name, per_scheme in reason_columns.items():
        data[name + "_reason"] = _reason_column(per_scheme, n, width)
    return pd.DataFrame(data)


def _texts(values: list[str | None] | pa.Array) -> pa.Array:
    r"""Texts (or None) as one Arrow array. Arrow holds UTF-8 only: a lone surrogate (from
    a JSON ``\ud800`` escape in an id or prompt id) is written back as that escape.

    >>> _texts(["q" + chr(0xD800), None]).to_pylist()
    ['q\\ud800', None]
    """
    if isinstance(values, pa.Array):
        return values
    try:
        return pa.array(values, type=pa.large_string())
    except (UnicodeEncodeError, pa.ArrowException):
        escaped = [None if v is None else escape_surrogates(v) for v in values]
        return pa.array(escaped, type=pa.large_string())


def _reason_column(per_scheme: list[Any], n: int, width: int) -> pd.Categorical:
    """One categorical reason column from each scheme's chunks of (names, codes)."""
    categories: dict[str, int] = {}
    for chunks in per_scheme:
        for names, _ in chunks or ():
            for reason in names:
                categories.setdefault(reason, len(categories))
    out = np.full(n * width, -1, dtype=np.int32)  # -1: a scheme without this reward
    for s_index, chunks in enumerate(per_scheme):
        if chunks is None:
            continue
        mapped = [
            np.array([categories[r] for r in names] or [0], dtype=np.int32)[codes]
            for names, codes in chunks
        ]
        out[s_index::width] = np.concatenate(mapped) if mapped else []
    return _categorical(out, list(categories))


def _categorical(codes: Any, categories: list[str]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=categories)  # type: ignore[call-overload, no-any-return]


def score_rows(
    rows: Iterable[tuple[int, Mapping[str, Any] | InputError]],
    schemes: SchemeLike | Iterable[SchemeLike],
    keys: Keys = Keys(),
    *,
    source: str = "<records>",
    on_error: str = "raise",
    completion_prefix: str = "",
) -> ScoreResult:
    """Score numbered rows, as the readers of other formats yield them, into a `ScoreResult`.

    A row is ``(line, record)``, or ``(line, InputError)`` for a row the reader could not
    parse; either kind of bad row raises, or with ``on_error="skip"`` is listed and skipped.
    """
    if on_error not in {"raise", "skip"}:
        raise ValueError(f"on_error must be 'raise' or 'skip', not {on_error!r}")
    schemes = schemes_of(schemes)
    skip = on_error == "skip"
    columns = _Columns(schemes, completion_prefix)
    fields = keys.fields()
    numbers: list[int] = []
    good: list[_Values] = []
    for line, record in rows:
        columns.count += 1
        try:
            if isinstance(record, InputError):
                raise _BadLine(record.code, record.message)
            good.append(_read_record(record, fields))
            numbers.append(line)
        except _BadLine as bad:
            columns.skipped.append(Skipped(line, bad.code, bad.message))
            if not skip:  # the rows before it are scored (a reward may fail first), not after
                columns.add(numbers, good)
                break
        if len(good) == _BLOCK:
            if not columns.add(numbers, good) and not skip:
                break  # a custom reward failed on a row
            numbers, good = [], []
    else:
        columns.add(numbers, good)
    # One chunk at offset 0: the lines stay as the reader numbered them.
    return _assemble(source, schemes, [columns], skip)


def score_records(
    records: Iterable[Mapping[str, Any]],
    schemes: SchemeLike | Iterable[SchemeLike],
    keys: Keys = Keys(),
    *,
    source: str = "<records>",
) -> pd.DataFrame:
    """Score in-memory rows (dicts as they would stand on JSONL lines) into the same frame.

    `line` is the 1-based position in `records`. Bad rows raise `InputError`.

    >>> from rewardkit.schemes import STRICT, LENIENT
    >>> frame = score_records([{"completion": "<answer>123</answer>", "answer": "123"}],
    ...                       [STRICT, LENIENT])
    >>> frame[["line", "scheme", "format", "total"]].to_dict("records")
    [{'line': 1, 'scheme': 'strict', 'format': 0.0, 'total': 2.5}, \
{'line': 1, 'scheme': 'lenient', 'format': 0.25, 'total': 3.0}]
    >>> len(score_records([], [STRICT]))  # no rows: an empty frame, not an error
    0
    """
    schemes = schemes_of(schemes)
    rows = iter(enumerate(records, 1))
    first = next(rows, None)
    if first is None:
        return _frame(schemes, [_Columns(schemes)])
    return score_rows(
        ((n, dict(r) if isinstance(r, Mapping) else r) for n, r in itertools.chain([first], rows)),
        schemes,
        keys,
        source=source,
    ).frame
