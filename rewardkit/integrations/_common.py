"""What the adapters share: naming a scheme, and reading a row by `rewardkit score`'s rules."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Any, TypeAlias

from rewardkit.schemes import Scheme, get_scheme
from rewardkit.score import _answer_text, _BadLine, _completion_text

SchemeLike: TypeAlias = str | os.PathLike[str] | Scheme
"""A built-in scheme's name, the path of a scheme file, or a `Scheme`."""


def as_scheme(scheme: SchemeLike) -> Scheme:
    """`scheme` itself, a built-in scheme by name, or a scheme file by path.

    >>> as_scheme("strict").name
    'strict'
    """
    if isinstance(scheme, Scheme):
        return scheme
    return _named_scheme(os.fspath(scheme))


@lru_cache(maxsize=32)
def _named_scheme(name: str) -> Scheme:
    # verl calls once per response: read a scheme file once per process, not once per row.
    return get_scheme(name)


def read_row(completion: Any, answer: Any, completion_key: str, answer_key: str) -> tuple[str, str]:
    """The completion's text and the gold answer, as `rewardkit score` reads a record.

    A chat-message list gives its last assistant message's content; an answer may be a
    string or a number. Anything else raises `ValueError`.

    >>> read_row([{"role": "assistant", "content": "<answer>4</answer>"}], 4, "c", "a")
    ('<answer>4</answer>', '4')
    >>> read_row(None, "4", "completions", "answer")
    Traceback (most recent call last):
    ...
    ValueError: 'completions' is NoneType (null), not text or a list of chat messages
    """
    try:
        return _completion_text(completion, completion_key), _answer_text(answer, answer_key)
    except _BadLine as bad:
        raise ValueError(_without_cli_hint(bad.message)) from None


def _without_cli_hint(message: str) -> str:
    # The scorer's messages end with a fix for `rewardkit score` users ("...; fix the data
    # or pass --answer-key"): a flag a trainer's user cannot pass. Keep what was wrong.
    head, sep, tail = message.rpartition("; ")
    return head if sep and "--" in tail else message
