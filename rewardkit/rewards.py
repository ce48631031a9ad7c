"""The reward functions of the spec (section 4) and the one table that names them.

A reward function takes ``(completion, answer)``, where `answer` is the reference answer as
the data set gives it (``"#### 72"`` or ``"72"``), and returns a `Reward`: the value and a
stable reason code. Full credit has the reason ``ok``; every zero or partial value has a
reason from `REASONS`, which also holds the sentence shown to a person.

`REWARDS` is built here, once, without configuration. Schemes (`rewardkit.schemes`) pick a
variant of each reward by name.

Each built-in reward is a decision on one reading of the row (`_Facts` of the completion,
`_Gold` of the answer). The public function reads the row and decides; `batch_scorer` reads
each row of a block once and runs several decisions over the block, which is how the scorer
runs the built-in rewards of every scheme.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import Any, NamedTuple, TypeGuard, cast

from rewardkit.extract import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    TAGS,
    THINK_CLOSE,
    THINK_OPEN,
    fallback_text,
    gold,
    has_pair,
    strict_answer,
    tags,
    unpaired_answer,
)
from rewardkit.numbers import (
    is_ascii_digits,
    number_text,
    numbers_equal,
    parse_number,
    strict_norm,
)

__all__ = [
    "REASONS",
    "REWARDS",
    "Reward",
    "RewardDef",
    "RewardFn",
    "batch_scorer",
    "correctness_lenient",
    "correctness_strict",
    "digit_lenient",
    "digit_strict",
    "format_lenient",
    "format_strict",
    "get_reward",
    "is_builtin",
    "mark_lenient",
    "mark_strict",
    "texts",
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


# The four tags, in the order the marks count them.
_MARKED_TAGS = tuple(tag + "\n" for tag in TAGS)


# For each tag of TAGS, in order: the reason when it is absent, when its tag-plus-newline
# is repeated, and when it is present without the newline.
_MARKS = tuple(
    ("no_" + name, "repeated_" + name, no_newline)
    for name, no_newline in (
        ("think_tag", "missing_newline_after_think"),
        ("think_close_tag", "missing_newline_after_think_close"),
        ("answer_tag", "missing_newline_after_answer"),
        ("answer_close_tag", "missing_newline_after_answer_close"),
    )
)
_FULL_MARKS = Reward(0.5, OK)


def _strict_marks(marked: tuple[int, ...], present: tuple[bool, ...]) -> Reward:
    """`mark_strict` from ``completion.count(tag + "\\n")`` and ``tag in completion``."""
    value = 0.0
    reason = OK
    for count, seen, (absent, repeated, no_newline) in zip(marked, present, _MARKS, strict=True):
        if count == 1:
            value += 0.125
        elif reason == OK and count > 1:
            reason = repeated
        elif reason == OK:
            reason = no_newline if seen else absent
    return _FULL_MARKS if reason == OK else Reward(value, reason)


def _lenient_marks(present: tuple[bool, ...]) -> Reward:
    """`mark_lenient` from ``tag in completion`` for each tag."""
    value = 0.0
    reason = OK
    for seen, (absent, _, _) in zip(present, _MARKS, strict=True):
        if seen:
            value += 0.125
        elif reason == OK:
            reason = absent
    return _FULL_MARKS if reason == OK else Reward(value, reason)


class _Layout(NamedTuple):
    """What the sequence of tags in a completion `c` says, with no look at the text between.

    `tags(c)` lists every tag in order (with its newline when one follows), so each field is
    a function of that list alone; see `_layout`.
    """

    marked: tuple[int, ...]  # c.count(tag + "\n") for each tag of TAGS
    present: tuple[bool, ...]  # tag in c, for each tag of TAGS
    think_pair: bool  # has_pair(c, THINK_OPEN, THINK_CLOSE)
    answer_pair: bool  # has_pair(c, ANSWER_OPEN, ANSWER_CLOSE): strict_answer(c) is not None
    last_pair_is_last_tags: bool  # the last pair is the last <answer> and the last </answer>
    strict_marks: Reward  # mark_strict(c, _): it depends on the tag counts alone
    lenient_marks: Reward  # mark_lenient(c, _)


def _layout_of(
    marked: tuple[int, ...],
    present: tuple[bool, ...],
    think_pair: bool,
    answer_pair: bool,
    last_pair_is_last_tags: bool,
) -> _Layout:
    return _Layout(
        marked,
        present,
        think_pair,
        answer_pair,
        last_pair_is_last_tags,
        _strict_marks(marked, present),
        _lenient_marks(present),
    )


@lru_cache(maxsize=1024)
def _walk_layout(found: tuple[str, ...]) -> _Layout:
    """The layout from a short tag sequence, walking it once."""
    bare = [tag.rstrip("\n") for tag in found]
    present = tuple(tag in bare for tag in TAGS)
    think_pair = THINK_OPEN in bare and THINK_CLOSE in bare[bare.index(THINK_OPEN) :]
    # The pairs as strict_answer finds them: each <answer> with the first </answer> after it.
    last: tuple[int, int] | None = None
    opening: int | None = None
    for index, tag in enumerate(bare):
        if opening is None:
            if tag == ANSWER_OPEN:
                opening = index
        elif tag == ANSWER_CLOSE:
            last, opening = (opening, index), None
    last_is_last = last is not None and not (
        ANSWER_OPEN in bare[last[0] + 1 :] or ANSWER_CLOSE in bare[last[1] + 1 :]
    )
    marked = tuple(map(found.count, _MARKED_TAGS))
    return _layout_of(marked, present, think_pair, last is not None, last_is_last)


def _scan_layout(completion: str, found: list[str]) -> _Layout:
    """The layout of a completion with many tags, from C-level scans of the text.

    (A megabyte of tags would make a walk in Python too slow; `last_pair_is_last_tags` is
    left False, which only sends `strict_answer` the long way.)
    """
    marked = tuple(map(found.count, _MARKED_TAGS))
    present = tuple(tag in completion for tag in TAGS)
    think_pair = has_pair(completion, THINK_OPEN, THINK_CLOSE)
    answer_pair = has_pair(completion, ANSWER_OPEN, ANSWER_CLOSE)
    return _layout_of(marked, present, think_pair, answer_pair, False)


_FEW_TAGS = 16


def _layout(completion: str) -> _Layout:
    """The `_Layout` of `completion`; the few tag sequences real completions show are cached."""
    found = tags(completion)
    if len(found) <= _FEW_TAGS:
        return _walk_layout(tuple(found))
    return _scan_layout(completion, found)


class _Facts(NamedTuple):
    """What the rewards read from one completion `c`, computed once for all of them.

    Each field is defined by the expression in its comment; the property tests hold every
    reward to the spec, which is written in those expressions.
    """

    layout: _Layout  # _layout(c)
    strict: str | None  # strict_answer(c)
    strict_norm: str | None  # strict_norm(strict_answer(c))
    lenient: str | None  # lenient_answer(c)
    problem: str  # why there is no usable strict answer, or "ok"


def _read_facts(completion: str) -> _Facts:
    """The facts of `completion`: one `tags` pass, then only the scans the tags call for."""
    layout = _layout(completion)
    if not layout.answer_pair:
        has_tag = layout.present[2] or layout.present[3]
        lenient = unpaired_answer(completion) if has_tag else None
        problem = "unclosed_answer_tag" if layout.present[2] else "no_answer_tag"
        return _Facts(layout, None, None, lenient, problem)
    if layout.last_pair_is_last_tags:
        # The last pair's tags are the last of their kind: find them from the end, where
        # the answer usually is, instead of scanning every pair from the start.
        content = completion.rfind(ANSWER_OPEN) + len(ANSWER_OPEN)
        strict = completion[content : completion.rfind(ANSWER_CLOSE)].strip()
    else:
        strict = cast(str, strict_answer(completion))
    problem = OK if strict else "empty_answer"
    return _Facts(layout, strict, strict_norm(strict), strict, problem)


_last_facts: tuple[str, _Facts] | None = None


def _facts(completion: str) -> _Facts:
    """The facts of `completion`, remembered for the last completion seen.

    `Scheme.score` calls every reward of a scheme on one completion before the next, so a
    one-entry cache keyed by identity lets the rewards share one look at the completion,
    and can never return another string's facts. (A race between threads can only
    recompute.)
    """
    global _last_facts
    cached = _last_facts
    if cached is not None and cached[0] is completion:
        return cached[1]
    facts = _read_facts(completion)
    _last_facts = (completion, facts)
    return facts


class _Gold(NamedTuple):
    text: str  # gold(answer)
    norm: str  # strict_norm(gold(answer))
    value: Decimal | None  # parse_number(gold(answer))


@lru_cache(maxsize=1 << 14)
def _gold(answer: str) -> _Gold:
    text = gold(answer)
    return _Gold(text, strict_norm(text), parse_number(text))


_SHORT = 40


@lru_cache(maxsize=1 << 14)
def _short_number(text: str) -> Decimal | None:
    return parse_number(text)


def _number(text: str) -> Decimal | None:
    """`parse_number`, remembered for short texts: answers such as ``18`` recur on many rows.

    Long texts (a whole completion read as the fallback) are not kept alive by the cache.
    """
    return _short_number(text) if len(text) <= _SHORT else parse_number(text)


# Results that recur on every row are built once.
_ZERO = {code: Reward(0.0, code) for code in REASONS}
_CORRECT = Reward(2.0, OK)
_HALF = Reward(0.5, OK)

# A built-in reward is written as a decision on what has already been read: the completion,
# its `_Facts` and the `_Gold`. `_reward` turns the decision into the public
# ``(completion, answer)`` function, and `batch_scorer` runs several decisions on one
# reading of a row, so both paths run the same code.
_Decision = Callable[[str, "_Facts", _Gold], Reward]
_DECISIONS: dict[RewardFn, _Decision] = {}


def _reward(decide: _Decision) -> RewardFn:
    def reward(completion: str, answer: str) -> Reward:
        if not isinstance(completion, str) or not isinstance(answer, str):
            completion, answer = texts(completion, answer, decide.__name__)
        return decide(completion, _facts(completion), _gold(answer))

    reward.__name__ = reward.__qualname__ = decide.__name__
    reward.__doc__ = decide.__doc__
    _DECISIONS[reward] = decide
    return reward


def texts(completion: Any, answer: Any, who: str = "the reward") -> tuple[str, str]:
    """A completion and its gold answer as the rewards read them: the completion must be
    text, the answer may be text or a number (written as `number_text` writes it, as
    `rewardkit score` reads a numeric gold).

    >>> texts("<answer>5</answer>", 5), texts("x", 0.5)
    (('<answer>5</answer>', '5'), ('x', '0.5'))
    >>> texts(None, "5", "correctness_strict")
    Traceback (most recent call last):
    ...
    TypeError: correctness_strict: the completion is NoneType, not text
    """
    if not isinstance(completion, str):
        raise TypeError(f"{who}: the completion is {type(completion).__name__}, not text")
    if isinstance(answer, str):
        return completion, answer
    try:
        return completion, number_text(answer)
    except TypeError:
        raise TypeError(
            f"{who}: the answer is {type(answer).__name__}, not text or a number"
        ) from None
    except ValueError as error:
        raise ValueError(f"{who}: the answer is {error}; there is no gold to score") from None


def batch_scorer(
    fns: Sequence[RewardFn],
) -> Callable[[Sequence[str], Sequence[str]], list[tuple[Reward, ...]]]:
    """One function that scores many rows with built-in rewards at once.

    Given completions and answers, it returns ``[tuple(fn(c, a) for fn in fns) for c, a in
    zip(completions, answers)]``: it reads each completion and each gold once, then runs
    each reward's decision over all the rows in one loop per reward. The scorer calls it
    once per block of lines.

    >>> both = batch_scorer([digit_strict, mark_lenient])
    >>> both(["<answer>-5</answer>"], ["5"])
    [(Reward(value=0.0, reason='answer_not_digits'), Reward(value=0.25, reason='no_think_tag'))]
    """
    decisions = tuple(_DECISIONS[fn] for fn in fns)

    def score(completions: Sequence[str], answers: Sequence[str]) -> list[tuple[Reward, ...]]:
        if not decisions:
            return [()] * len(completions)
        found = [_read_facts(c) for c in completions]
        expected = [_gold(a) for a in answers]
        rows = list(zip(completions, found, expected, strict=True))
        columns = [[decide(c, f, g) for c, f, g in rows] for decide in decisions]
        return list(zip(*columns, strict=True))

    return score


def is_builtin(fn: Callable[..., Any]) -> TypeGuard[RewardFn]:
    """Whether `fn` is one of the built-in reward functions (which `batch_scorer` takes)."""
    return fn in _DECISIONS


# --- correctness ---------------------------------------------------------------------------


@_reward
def correctness_strict(completion: str, found: _Facts, expected: _Gold) -> Reward:
    """2.0 iff the strict answer equals the gold after `strict_norm` (string equality).

    >>> correctness_strict("<answer>\\n360,000\\n</answer>\\n", "360000")
    Reward(value=2.0, reason='ok')
    >>> correctness_strict("<answer>18 dollars</answer>", "#### 18")
    Reward(value=0.0, reason='right_number_wrong_text')
    """
    if found.strict_norm is not None and found.strict_norm == expected.norm:
        return _CORRECT
    if found.problem != OK or found.strict is None:
        return _ZERO[found.problem]
    if numbers_equal(_number(found.strict), expected.value):
        return _ZERO["right_number_wrong_text"]
    return _ZERO["wrong_answer"]


@_reward
def correctness_lenient(completion: str, found: _Facts, expected: _Gold) -> Reward:
    """2.0 iff the strict rule holds or the last numbers of answer and gold are equal.

    The answer is `lenient_answer`, or `fallback_text` when the completion has no answer tag.

    >>> correctness_lenient("The total is $1,234.50.", "1234.5")
    Reward(value=2.0, reason='ok')
    >>> correctness_lenient("So $\\\\boxed{18}$ dollars in 4 weeks", "#### 18")
    Reward(value=2.0, reason='ok')
    >>> correctness_lenient("<answer>about 7</answer>", "8")
    Reward(value=0.0, reason='wrong_answer')
    """
    if found.strict_norm is not None and found.strict_norm == expected.norm:
        return _CORRECT
    text = fallback_text(completion) if found.lenient is None else found.lenient
    value = _number(text)
    if numbers_equal(value, expected.value):
        return _CORRECT
    if value is None:
        return _ZERO["answer_not_numeric"]
    if expected.value is None:
        return _ZERO["gold_not_numeric"]
    return _ZERO["wrong_answer"]


# --- digit ---------------------------------------------------------------------------------


@_reward
def digit_strict(completion: str, found: _Facts, expected: _Gold) -> Reward:
    """0.5 iff the strict answer, normalised, is ASCII digits only (``-5`` and ``²`` are not).

    >>> digit_strict("<answer>1,000</answer>", "")
    Reward(value=0.5, reason='ok')
    >>> digit_strict("<answer>-5</answer>", "")
    Reward(value=0.0, reason='answer_not_digits')
    """
    if found.strict_norm is None or found.problem != OK:
        return _ZERO[found.problem]
    return _HALF if is_ascii_digits(found.strict_norm) else _ZERO["answer_not_digits"]


@_reward
def digit_lenient(completion: str, found: _Facts, expected: _Gold) -> Reward:
    """0.5 iff the strict rule holds or a number can be read in the lenient answer.

    >>> digit_lenient("<answer>-5</answer>", "")
    Reward(value=0.5, reason='ok')
    >>> digit_lenient("<answer>five</answer>", "")
    Reward(value=0.0, reason='answer_not_numeric')
    """
    if found.strict_norm is not None and is_ascii_digits(found.strict_norm):
        return _HALF
    if found.lenient is None:
        return _ZERO["no_answer_tag"]
    if _number(found.lenient) is None:
        return _ZERO["answer_not_numeric"]
    return _HALF


# --- format --------------------------------------------------------------------------------

_HEAD = THINK_OPEN + "\n"
_MIDDLE = "\n" + THINK_CLOSE + "\n" + ANSWER_OPEN + "\n"
_TAIL = "\n" + ANSWER_CLOSE + "\n"


def _strict_format_problem(c: str, layout: _Layout) -> str:
    """Why `c` does not fullmatch ``<think>\\n.*?\\n</think>\\n<answer>\\n.*?\\n</answer>\\n``.

    Returns ``ok`` when it does. Linear: the pattern holds iff `c` starts with the head, ends
    with the tail, and the middle occurs between them; the first occurrence after the head
    is the best candidate. Problems are reported in reading order: start, middle, end.
    `layout` is `_layout(c)`: it answers "is this tag in `c`" without a scan.
    """
    think_open, _, _, answer_close = layout.present
    if not c.startswith(_HEAD):
        if c.startswith(THINK_OPEN):
            return "missing_newline_after_think"
        return "text_before_think" if think_open else "no_think_tag"
    # With at most one "</think>\n" the middle occurs at most once: look from the end, where
    # it usually is.
    middle = (c.rfind if layout.marked[1] <= 1 else c.find)(_MIDDLE, len(_HEAD))
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
        if not answer_close:
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


_FORMAT_STRICT = {code: Reward(0.5 if code == OK else 0.0, code) for code in REASONS}


@_reward
def format_strict(completion: str, found: _Facts, expected: _Gold) -> Reward:
    """0.5 iff the whole completion is ``<think>\\n…\\n</think>\\n<answer>\\n…\\n</answer>\\n``.

    >>> format_strict("<think>\\nhm\\n</think>\\n<answer>\\n5\\n</answer>\\n", "5")
    Reward(value=0.5, reason='ok')
    >>> format_strict("<think>hm</think><answer>5</answer>", "5")
    Reward(value=0.0, reason='missing_newline_after_think')
    """
    return _FORMAT_STRICT[_strict_format_problem(completion, found.layout)]


_NO_ANSWER_PAIR = Reward(0.0, "no_answer_pair")
_NO_THINK_PAIR = Reward(0.25, "no_think_pair")


@_reward
def format_lenient(completion: str, found: _Facts, expected: _Gold) -> Reward:
    """0.5 with a think pair and an answer pair (any order); 0.25 with only the answer pair.

    >>> format_lenient("<answer>123</answer>", "123")
    Reward(value=0.25, reason='no_think_pair')
    >>> format_lenient("<answer>1</answer><think>why</think>", "1")
    Reward(value=0.5, reason='ok')
    """
    if not found.layout.answer_pair:
        return _NO_ANSWER_PAIR
    if not found.layout.think_pair:
        return _NO_THINK_PAIR
    return _HALF


# --- mark ----------------------------------------------------------------------------------


@_reward
def mark_strict(completion: str, found: _Facts, expected: _Gold) -> Reward:
    """0.125 for each tag-plus-newline seen exactly once.

    The four marks are ``<think>\\n``, ``</think>\\n``, ``<answer>\\n`` and ``</answer>\\n``.
    The reason names the first mark that missed.

    >>> mark_strict(" answer </answer>\\n\\n", "24")
    Reward(value=0.125, reason='no_think_tag')
    """
    return found.layout.strict_marks


@_reward
def mark_lenient(completion: str, found: _Facts, expected: _Gold) -> Reward:
    """0.125 for each of ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` seen at all.

    >>> mark_lenient("<answer>123</answer>", "123")
    Reward(value=0.25, reason='no_think_tag')
    """
    return found.layout.lenient_marks


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
