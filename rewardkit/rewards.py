"""The reward functions of the spec (section 4) and the one table that names them.

A reward function takes ``(completion, answer)``, where `answer` is the reference answer as
the data set gives it (``"#### 72"`` or ``"72"``), and returns a `Reward`: the value and a
stable reason code. Full credit has the reason ``ok``; every zero or partial value has a
reason from `REASONS`, which also holds the sentence shown to a person.

`REWARDS` is built here, once, without configuration. Schemes (`rewardkit.schemes`) pick a
variant of each reward by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import NamedTuple

from rewardkit.extract import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    THINK_CLOSE,
    THINK_OPEN,
    fallback_text,
    gold,
    has_pair,
    strict_answer,
    unpaired_answer,
)
from rewardkit.numbers import is_ascii_digits, numbers_equal, parse_number, strict_norm

__all__ = [
    "REASONS",
    "REWARDS",
    "Reward",
    "RewardDef",
    "RewardFn",
    "get_reward",
]


class Reward(NamedTuple):
    """A reward's value and the stable reason code that explains it."""

    value: float
    reason: str


RewardFn = Callable[[str, str], Reward]

OK = "ok"

# Every reason code a built-in reward can return, with the sentence a person reads.
REASONS: Mapping[str, str] = MappingProxyType(
    {
        OK: "full credit",
        # answer extraction
        "no_answer_tag": "no <answer> tag at all",
        "unclosed_answer_tag": "<answer> is never closed by a later </answer> (truncated?)",
        "empty_answer": "the <answer> pair is empty",
        "wrong_answer": "the answer is a different value from the gold",
        "right_number_wrong_text": (
            "the number is right but the text is not the gold exactly"
            " (units, '$', '18.0', words); the lenient scheme accepts it"
        ),
        "answer_not_numeric": "no number can be read in the answer",
        "gold_not_numeric": "no number can be read in the gold answer",
        "answer_not_digits": "the answer is not plain ASCII digits (a sign, decimal, unit, word)",
        # lenient format
        "no_think_pair": "an <answer>...</answer> pair but no <think>...</think> pair",
        "no_answer_pair": "no <answer>...</answer> pair",
        # strict format and marks: the tags and the newlines around them
        "no_think_tag": "no <think> tag",
        "no_think_close_tag": "no </think> tag",
        "no_answer_close_tag": "no </answer> tag",
        "text_before_think": "the completion does not start with <think>",
        "missing_newline_after_think": "<think> is not followed by a newline",
        "missing_newline_before_think_close": "</think> is not preceded by a newline",
        "missing_newline_after_think_close": "</think> is not followed by a newline",
        "missing_newline_after_answer": "<answer> is not followed by a newline",
        "missing_newline_before_answer_close": "</answer> is not preceded by a newline",
        "missing_newline_after_answer_close": "</answer> is not followed by a final newline",
        "text_between_think_and_answer": (
            "something other than one newline between </think> and <answer>"
        ),
        "text_after_answer_close": "text (or extra newlines) after the final </answer>\\n",
        "repeated_think_tag": "'<think>\\n' occurs more than once",
        "repeated_think_close_tag": "'</think>\\n' occurs more than once",
        "repeated_answer_tag": "'<answer>\\n' occurs more than once",
        "repeated_answer_close_tag": "'</answer>\\n' occurs more than once",
    }
)


@dataclass(frozen=True)
class RewardDef:
    """A reward: its name, its maximum, and its variants by name (``strict``, ``lenient``)."""

    name: str
    max: float
    variants: Mapping[str, RewardFn]
    description: str


class _Answers(NamedTuple):
    """What the answer-reading rewards need from one completion, computed once."""

    strict: str | None  # strict_answer(c)
    strict_norm: str | None  # strict_norm(strict_answer(c))
    lenient: str | None  # lenient_answer(c)
    problem: str  # why there is no usable strict answer, or "ok"


_last_answers: tuple[str, _Answers] | None = None


def _answers(completion: str) -> _Answers:
    """The answers of `completion`, remembered for the last completion seen.

    The scorer calls every reward of every scheme on one completion before the next, so a
    one-entry cache keyed by identity saves three quarters of the extraction work and can
    never return another string's answers. (A race between threads can only recompute.)
    """
    global _last_answers
    cached = _last_answers
    if cached is not None and cached[0] is completion:
        return cached[1]
    strict = strict_answer(completion)
    if strict is None:
        problem = "unclosed_answer_tag" if ANSWER_OPEN in completion else "no_answer_tag"
        answers = _Answers(None, None, unpaired_answer(completion), problem)
    else:
        answers = _Answers(strict, strict_norm(strict), strict, "ok" if strict else "empty_answer")
    _last_answers = (completion, answers)
    return answers


class _Gold(NamedTuple):
    text: str  # gold(answer)
    norm: str  # strict_norm(gold(answer))
    value: Decimal | None  # parse_number(gold(answer))


@lru_cache(maxsize=1 << 14)
def _gold(answer: str) -> _Gold:
    text = gold(answer)
    return _Gold(text, strict_norm(text), parse_number(text))


# Results that recur on every row are built once.
_ZERO = {code: Reward(0.0, code) for code in REASONS}
_CORRECT = Reward(2.0, OK)
_HALF = Reward(0.5, OK)


# --- correctness ---------------------------------------------------------------------------


def correctness_strict(completion: str, answer: str) -> Reward:
    """2.0 iff the strict answer equals the gold after `strict_norm` (string equality).

    >>> correctness_strict("<answer>\\n360,000\\n</answer>\\n", "360000")
    Reward(value=2.0, reason='ok')
    >>> correctness_strict("<answer>18 dollars</answer>", "#### 18")
    Reward(value=0.0, reason='right_number_wrong_text')
    """
    found = _answers(completion)
    expected = _gold(answer)
    if found.strict_norm is not None and found.strict_norm == expected.norm:
        return _CORRECT
    if found.problem != OK or found.strict is None:
        return _ZERO[found.problem]
    if numbers_equal(parse_number(found.strict), expected.value):
        return _ZERO["right_number_wrong_text"]
    return _ZERO["wrong_answer"]


def correctness_lenient(completion: str, answer: str) -> Reward:
    """2.0 iff the strict rule holds or the last numbers of answer and gold are equal.

    The answer is `lenient_answer`, or `fallback_text` when the completion has no answer tag.

    >>> correctness_lenient("The total is $1,234.50.", "1234.5")
    Reward(value=2.0, reason='ok')
    >>> correctness_lenient("So $\\\\boxed{18}$ dollars in 4 weeks", "#### 18")
    Reward(value=2.0, reason='ok')
    >>> correctness_lenient("<answer>about 7</answer>", "8")
    Reward(value=0.0, reason='wrong_answer')
    """
    found = _answers(completion)
    expected = _gold(answer)
    if found.strict_norm is not None and found.strict_norm == expected.norm:
        return _CORRECT
    text = fallback_text(completion) if found.lenient is None else found.lenient
    value = parse_number(text)
    if numbers_equal(value, expected.value):
        return _CORRECT
    if value is None:
        return _ZERO["answer_not_numeric"]
    if expected.value is None:
        return _ZERO["gold_not_numeric"]
    return _ZERO["wrong_answer"]


# --- digit ---------------------------------------------------------------------------------


def digit_strict(completion: str, answer: str) -> Reward:
    """0.5 iff the strict answer, normalised, is ASCII digits only (``-5`` and ``²`` are not).

    >>> digit_strict("<answer>1,000</answer>", "")
    Reward(value=0.5, reason='ok')
    >>> digit_strict("<answer>-5</answer>", "")
    Reward(value=0.0, reason='answer_not_digits')
    """
    found = _answers(completion)
    if found.strict_norm is None or found.problem != OK:
        return _ZERO[found.problem]
    return _HALF if is_ascii_digits(found.strict_norm) else _ZERO["answer_not_digits"]


def digit_lenient(completion: str, answer: str) -> Reward:
    """0.5 iff the strict rule holds or a number can be read in the lenient answer.

    >>> digit_lenient("<answer>-5</answer>", "")
    Reward(value=0.5, reason='ok')
    >>> digit_lenient("<answer>five</answer>", "")
    Reward(value=0.0, reason='answer_not_numeric')
    """
    found = _answers(completion)
    if found.strict_norm is not None and is_ascii_digits(found.strict_norm):
        return _HALF
    if found.lenient is None:
        return _ZERO["no_answer_tag"]
    if parse_number(found.lenient) is None:
        return _ZERO["answer_not_numeric"]
    return _HALF


# --- format --------------------------------------------------------------------------------

_HEAD = THINK_OPEN + "\n"
_MIDDLE = "\n" + THINK_CLOSE + "\n" + ANSWER_OPEN + "\n"
_TAIL = "\n" + ANSWER_CLOSE + "\n"


def _strict_format_problem(c: str) -> str:
    """Why `c` does not fullmatch ``<think>\\n.*?\\n</think>\\n<answer>\\n.*?\\n</answer>\\n``.

    Returns ``ok`` when it does. Linear: the pattern holds iff `c` starts with the head, ends
    with the tail, and the middle occurs between them; the first occurrence after the head
    is the best candidate. Problems are reported in reading order: start, middle, end.
    """
    if not c.startswith(_HEAD):
        if c.startswith(THINK_OPEN):
            return "missing_newline_after_think"
        return "text_before_think" if THINK_OPEN in c else "no_think_tag"
    middle = c.find(_MIDDLE, len(_HEAD))
    tail = len(c) - len(_TAIL)
    if middle == -1:
        after_head = len(_HEAD)
        if c.find(THINK_CLOSE, after_head) == -1:
            return "no_think_close_tag"
        if c.find(ANSWER_OPEN, after_head) == -1:
            return "no_answer_tag"
        if c.find("\n" + THINK_CLOSE, after_head) == -1:
            return "missing_newline_before_think_close"
        if c.find(THINK_CLOSE + "\n", after_head) == -1:
            return "missing_newline_after_think_close"
        if c.find(ANSWER_OPEN + "\n", after_head) == -1:
            return "missing_newline_after_answer"
        return "text_between_think_and_answer"
    if not c.endswith(_TAIL):
        if ANSWER_CLOSE not in c:
            return "no_answer_close_tag"
        if c.endswith(ANSWER_CLOSE):
            return "missing_newline_after_answer_close"
        if not c.endswith(ANSWER_CLOSE + "\n"):
            return "text_after_answer_close"
        return "missing_newline_before_answer_close"
    if middle + len(_MIDDLE) > tail:
        # `<answer>\n</answer>\n`: the one newline cannot both end `<answer>\n` and start
        # `\n</answer>`; the first middle is the best, so no later one fits either.
        return "missing_newline_before_answer_close"
    return OK


def format_strict(completion: str, answer: str) -> Reward:
    """0.5 iff the whole completion is ``<think>\\n…\\n</think>\\n<answer>\\n…\\n</answer>\\n``.

    >>> format_strict("<think>\\nhm\\n</think>\\n<answer>\\n5\\n</answer>\\n", "5")
    Reward(value=0.5, reason='ok')
    >>> format_strict("<think>hm</think><answer>5</answer>", "5")
    Reward(value=0.0, reason='missing_newline_after_think')
    """
    problem = _strict_format_problem(completion)
    return Reward(0.5 if problem == OK else 0.0, problem)


def format_lenient(completion: str, answer: str) -> Reward:
    """0.5 with a think pair and an answer pair (any order); 0.25 with only the answer pair.

    >>> format_lenient("<answer>123</answer>", "123")
    Reward(value=0.25, reason='no_think_pair')
    >>> format_lenient("<answer>1</answer><think>why</think>", "1")
    Reward(value=0.5, reason='ok')
    """
    if not has_pair(completion, ANSWER_OPEN, ANSWER_CLOSE):
        return Reward(0.0, "no_answer_pair")
    if not has_pair(completion, THINK_OPEN, THINK_CLOSE):
        return Reward(0.25, "no_think_pair")
    return Reward(0.5, OK)


# --- mark ----------------------------------------------------------------------------------

# (tag, tag + newline, reason when absent, when repeated, when present without the newline)
_MARKS = tuple(
    (tag, tag + "\n", "no_" + name, "repeated_" + name, no_newline)
    for tag, name, no_newline in (
        (THINK_OPEN, "think_tag", "missing_newline_after_think"),
        (THINK_CLOSE, "think_close_tag", "missing_newline_after_think_close"),
        (ANSWER_OPEN, "answer_tag", "missing_newline_after_answer"),
        (ANSWER_CLOSE, "answer_close_tag", "missing_newline_after_answer_close"),
    )
)
_FULL_MARKS = Reward(0.5, OK)


def mark_strict(completion: str, answer: str) -> Reward:
    """0.125 for each tag-plus-newline seen exactly once.

    The four marks are ``<think>\\n``, ``</think>\\n``, ``<answer>\\n`` and ``</answer>\\n``.
    The reason names the first mark that missed.

    >>> mark_strict(" answer </answer>\\n\\n", "24")
    Reward(value=0.125, reason='no_think_tag')
    """
    value = 0.0
    reason = OK
    for tag, marked, absent, repeated, no_newline in _MARKS:
        count = completion.count(marked)
        if count == 1:
            value += 0.125
        elif reason == OK and count > 1:
            reason = repeated
        elif reason == OK:
            reason = no_newline if tag in completion else absent
    return _FULL_MARKS if reason == OK else Reward(value, reason)


def mark_lenient(completion: str, answer: str) -> Reward:
    """0.125 for each of ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` seen at all.

    >>> mark_lenient("<answer>123</answer>", "123")
    Reward(value=0.25, reason='no_think_tag')
    """
    value = 0.0
    reason = OK
    for tag, _, absent, _, _ in _MARKS:
        if tag in completion:
            value += 0.125
        elif reason == OK:
            reason = absent
    return _FULL_MARKS if reason == OK else Reward(value, reason)


# --- the table -----------------------------------------------------------------------------

REWARDS: Mapping[str, RewardDef] = MappingProxyType(
    {
        "correctness": RewardDef(
            "correctness",
            2.0,
            MappingProxyType({"strict": correctness_strict, "lenient": correctness_lenient}),
            "the final answer equals the gold answer",
        ),
        "digit": RewardDef(
            "digit",
            0.5,
            MappingProxyType({"strict": digit_strict, "lenient": digit_lenient}),
            "the final answer is a number",
        ),
        "format": RewardDef(
            "format",
            0.5,
            MappingProxyType({"strict": format_strict, "lenient": format_lenient}),
            "the completion has the <think>/<answer> layout",
        ),
        "mark": RewardDef(
            "mark",
            0.5,
            MappingProxyType({"strict": mark_strict, "lenient": mark_lenient}),
            "partial credit for each tag present",
        ),
    }
)


def get_reward(name: str) -> RewardDef:
    """The built-in reward called `name`; a `KeyError` that lists the valid names otherwise.

    >>> get_reward("digit").max
    0.5
    >>> get_reward("digits")
    Traceback (most recent call last):
    ...
    KeyError: "unknown reward 'digits'; valid rewards: correctness, digit, format, mark"
    """
    try:
        return REWARDS[name]
    except KeyError:
        valid = ", ".join(REWARDS)
        raise KeyError(f"unknown reward {name!r}; valid rewards: {valid}") from None
