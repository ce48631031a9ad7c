"""What the adapters share: naming a scheme, and reading a row by `rewardkit score`'s rules."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any

from rewardkit.schemes import Scheme, SchemeLike, get_scheme
from rewardkit.score import _answer_text, _BadLine, _completion_text


def as_scheme(scheme: SchemeLike) -> Scheme:
    """`scheme` itself, a built-in scheme by name, or a scheme file by path.

    >>> as_scheme("strict").name
    'strict'
    """
    if isinstance(scheme, Scheme):
        return scheme
    name = os.fspath(scheme)
    try:  # a file edited since (in a notebook, say) is read again, as get_scheme would
        stamp = os.stat(name).st_mtime_ns
    except OSError:  # a built-in scheme's name, or a missing file (get_scheme says so)
        stamp = 0
    return _named_scheme(name, stamp)


@lru_cache(maxsize=32)
def _named_scheme(name: str, stamp: int) -> Scheme:
    # verl calls once per response: read a scheme file once per process, not once per row.
    return get_scheme(name)


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
    ValueError: 'completions' is NoneType (null), not text or a list of chat messages
    >>> read_row("x", ["72"], "c", "answer", fix="name the column with answer_key=NAME")
    Traceback (most recent call last):
    ...
    ValueError: 'answer' is list (["72"]), not a string or number; name the column with \
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
