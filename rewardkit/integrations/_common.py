"""What the adapters share: naming a scheme, and reading a row by `rewardkit score`'s rules."""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any

from rewardkit.schemes import Scheme, SchemeLike, get_scheme, source_files
from rewardkit.score import _answer_text, _BadLine, _completion_text


def as_scheme(scheme: SchemeLike) -> Scheme:
    """`scheme` itself, a built-in scheme by name, or a scheme file by path.

    A scheme file is read once per process, not once per call (verl calls once per
    response: `get_scheme` takes about 3 ms, a cached scheme some 30 us), and again when it or a
    reward file it loads has changed since, so the scheme is always the one `get_scheme`
    gives now (a notebook that edits either).

    >>> as_scheme("strict").name
    'strict'
    """
    if isinstance(scheme, Scheme):
        return scheme
    name = os.fspath(scheme)
    cached = _LOADED.get(name)
    if cached is not None and _stamps(stamp[0] for stamp in cached[1]) == cached[1]:
        _LOADED.move_to_end(name)
        return cached[0]
    loaded = get_scheme(name)
    files = [] if loaded.source == "built-in" else [name, *source_files(loaded)]
    _LOADED[name] = (loaded, _stamps(files))
    if len(_LOADED) > _CACHED_SCHEMES:
        _LOADED.popitem(last=False)
    return loaded


_CACHED_SCHEMES = 32
_LOADED: OrderedDict[str, tuple[Scheme, tuple[tuple[str, int, int], ...]]] = OrderedDict()
"""Schemes by the name or path asked for, each with the stamps of the files it was read from."""


def _stamps(files: Any) -> tuple[tuple[str, int, int], ...]:
    """Each file with its modification time and size (-1 for a file that is gone): a
    change in any of them is an edit."""
    stamps = []
    for file in files:
        try:
            stat = os.stat(file)
        except OSError:
            stamps.append((file, -1, -1))
        else:
            stamps.append((file, stat.st_mtime_ns, stat.st_size))
    return tuple(stamps)


def read_row(
    completion: Any,
    answer: Any,
    completion_key: str,
    answer_key: str,
    fix: str = "fix the data",
    prefix: str = "",
) -> tuple[str, str]:
    """The completion's text and the gold answer, as `rewardkit score` reads a record.

    A chat-message list gives its last assistant message's content; an answer may be a
    string or a number. `prefix` goes before the completion's text: the part of the reply
    the chat template already wrote (``"<think>\\n"`` for templates that open the thinking
    block in the prompt). Anything else raises `ValueError`, ending in `fix`.

    >>> read_row([{"role": "assistant", "content": "<answer>4</answer>"}], 4, "c", "a")
    ('<answer>4</answer>', '4')
    >>> read_row("8*9\\n</think>", 72, "c", "a", prefix="<think>\\n")
    ('<think>\\n8*9\\n</think>', '72')
    >>> read_row(None, "4", "completions", "answer")
    Traceback (most recent call last):
    ...
    ValueError: 'completions' is null, not text or a list of chat messages
    >>> read_row("x", ["72"], "c", "answer", fix="name the column with answer_key=NAME")
    Traceback (most recent call last):
    ...
    ValueError: 'answer' is an array (["72"]), not a string or number; name the column with \
answer_key=NAME
    """
    try:
        text = _completion_text(completion, completion_key)
    except _BadLine as bad:
        raise ValueError(_what(bad.message)) from None
    try:
        return prefix + text, _answer_text(answer, answer_key)
    except _BadLine as bad:
        raise ValueError(f"{_what(bad.message)}; {fix}") from None


def _what(message: str) -> str:
    """A scorer's message without the fix it gives `rewardkit score` users ("...; fix the
    data or pass --answer-key"): a flag a trainer's user cannot pass."""
    head, sep, tail = message.rpartition("; ")
    return head if sep and ("--" in tail or tail.startswith("fix")) else message
