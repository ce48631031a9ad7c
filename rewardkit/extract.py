"""Text to answer text: where in a completion (and in a gold answer) the answer stands.

Every function here is pure and runs in time linear in the length of its input. The spec
(`REWARDS_SPEC.md` section 2) defines some of them with regular expressions such as
``re.findall(r"<answer>(.*?)</answer>", c, re.DOTALL)``; a lazy ``.*?`` retried from every
``<answer>`` is quadratic on a completion with thousands of unclosed tags, so the same
results are computed here with ``str.find`` scans. The property tests check that both agree.
"""

from __future__ import annotations

import re

__all__ = [
    "ANSWER_CLOSE",
    "ANSWER_OPEN",
    "TAGS",
    "THINK_CLOSE",
    "THINK_OPEN",
    "answer_pairs",
    "fallback_text",
    "gold",
    "has_pair",
    "lenient_answer",
    "strict_answer",
    "tags",
    "unpaired_answer",
]

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)  # in the order a reply has them

_BOXED = "\\boxed{"
# A tag never contains a "<" after its first character, so no two occurrences overlap and one
# left-to-right pass finds every occurrence of every tag.
_TAG = re.compile(r"</?(?:think|answer)>\n?")
_BRACE = re.compile(r"[{}]")


def gold(answer: str) -> str:
    """The ground truth of a reference answer (spec section 1).

    The text after the first ``####`` up to the end of that line, stripped; without ``####``
    the whole string, stripped.

    >>> gold("She has 3 + 4 = 7 apples.\\n#### 7")
    '7'
    >>> gold("  72 ")
    '72'
    >>> gold("#### 1,000\\nextra")
    '1,000'
    """
    marker = answer.find("####")
    if marker == -1:
        return answer.strip()
    rest = answer[marker + 4 :]
    end = rest.find("\n")
    return (rest if end == -1 else rest[:end]).strip()


def answer_pairs(completion: str) -> list[tuple[int, int]]:
    """Spans ``(start, end)`` of the contents of every complete ``<answer>…</answer>`` pair.

    Pairs are found left to right as non-overlapping shortest matches, exactly as
    ``re.findall(r"<answer>(.*?)</answer>", c, re.DOTALL)`` finds them.

    >>> c = "<answer>a<answer>b</answer>"
    >>> [c[s:e] for s, e in answer_pairs(c)]
    ['a<answer>b']
    """
    spans: list[tuple[int, int]] = []
    pos = 0
    while True:
        start = completion.find(ANSWER_OPEN, pos)
        if start == -1:
            return spans
        content = start + len(ANSWER_OPEN)
        end = completion.find(ANSWER_CLOSE, content)
        if end == -1:
            # No close after this opening tag means none after any later one either.
            return spans
        spans.append((content, end))
        pos = end + len(ANSWER_CLOSE)


def strict_answer(completion: str) -> str | None:
    """The content of the last complete ``<answer>…</answer>`` pair, stripped; else None.

    >>> strict_answer("<think>\\n6*4\\n</think>\\n<answer>\\n24\\n</answer>\\n")
    '24'
    >>> strict_answer("<answer>1</answer> then <answer> 2 </answer>")
    '2'
    >>> strict_answer("<answer>24") is None
    True
    """
    pos = 0
    last: tuple[int, int] | None = None
    # Same scan as answer_pairs, without building the list (this is the hot path).
    while True:
        start = completion.find(ANSWER_OPEN, pos)
        if start == -1:
            break
        content = start + len(ANSWER_OPEN)
        end = completion.find(ANSWER_CLOSE, content)
        if end == -1:
            break
        last = (content, end)
        pos = end + len(ANSWER_CLOSE)
    if last is None:
        return None
    return completion[last[0] : last[1]].strip()


def lenient_answer(completion: str) -> str | None:
    """The answer of the lenient scheme: also reads truncated and half-tagged answers.

    The strict answer when a complete pair exists; else the text after the last
    ``<answer>`` (a completion cut off before its closing tag); else the text before the
    first ``</answer>``; else None.

    >>> lenient_answer("<answer>\\n42\\n</answer>\\n")
    '42'
    >>> lenient_answer("so the answer is <answer> 42")
    '42'
    >>> lenient_answer(" 17 </answer>\\n")
    '17'
    >>> lenient_answer("The answer is 5.") is None
    True
    """
    found = strict_answer(completion)
    return found if found is not None else unpaired_answer(completion)


def unpaired_answer(completion: str) -> str | None:
    """`lenient_answer` of a completion known to have no complete pair.

    The text after the last ``<answer>``; else the text before the first ``</answer>``.

    >>> unpaired_answer("</answer> x <answer> 42")
    '42'
    """
    opening = completion.rfind(ANSWER_OPEN)
    if opening != -1:
        return completion[opening + len(ANSWER_OPEN) :].strip()
    closing = completion.find(ANSWER_CLOSE)
    if closing != -1:
        return completion[:closing].strip()
    return None


def _last_closed_boxed(completion: str, first: int) -> str | None:
    """Content of the last ``\\boxed{`` (by start) whose brace closes, scanning from `first`.

    One pass over the braces with a stack. A ``\\boxed{`` that never closes (a truncated
    completion) is passed over. Past a few thousand braces the same matching is done with
    numpy, so a megabyte of unclosed ``\\boxed{`` costs milliseconds, not a Python loop.
    """
    if completion.count("{", first) + completion.count("}", first) > _MANY_BRACES:
        return _last_closed_boxed_numpy(completion, first)
    closes: dict[int, int] = {}
    stack: list[int] = []
    for match in _BRACE.finditer(completion, first):
        index = match.start()
        if completion[index] == "{":
            stack.append(index)
        elif stack:
            closes[stack.pop()] = index
    pos = completion.rfind(_BOXED, first)
    while pos != -1:
        brace = pos + len(_BOXED) - 1
        if brace in closes:
            return completion[brace + 1 : closes[brace]]
        pos = completion.rfind(_BOXED, first, pos)
    return None


_MANY_BRACES = 4096


def _last_closed_boxed_numpy(completion: str, first: int) -> str | None:
    """`_last_closed_boxed` with arrays: a brace closes where the depth first drops below it.

    A ``}`` with nothing open is ignored by the stack; in the running depth it only shifts
    what follows, and it cannot fall between an open brace and its close, so "the first
    later depth below the brace's own" is exactly the stack's match.
    """
    import numpy as np

    text = completion[first:]
    chars = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    depth = np.cumsum((chars == ord("{")).astype(np.int64) - (chars == ord("}")))  # (N,)
    # depth after each character; the lowest depth from each position to the end
    suffix_min = np.minimum.accumulate(depth[::-1])[::-1]  # (N,)
    pattern = np.frombuffer(_BOXED.encode("utf-32-le"), dtype=np.uint32)
    starts = np.ones(len(chars) - len(pattern) + 1, dtype=bool)
    for offset, code in enumerate(pattern):
        starts &= chars[offset : len(chars) - len(pattern) + 1 + offset] == code
    braces = np.flatnonzero(starts) + len(pattern) - 1  # the "{" of each \boxed{
    braces = braces[braces + 1 < len(chars)]
    closed = braces[suffix_min[braces + 1] < depth[braces]]
    if len(closed) == 0:
        return None
    brace = int(closed[-1])
    close = brace + 1 + int(np.argmax(depth[brace + 1 :] < depth[brace]))
    return text[brace + 1 : close]


def fallback_text(completion: str) -> str:
    """Where the lenient scheme looks for an answer when the completion has no answer tag.

    The content of the last ``\\boxed{…}`` (braces matched); else the rest of the line
    after the last ``####``; else the whole completion. A ``\\boxed{`` whose braces never
    close is not a boxed answer.

    >>> fallback_text("So $\\\\boxed{18}$ dollars in 4 weeks.")
    '18'
    >>> fallback_text("\\\\boxed{\\\\frac{1}{2}}")
    '\\\\frac{1}{2}'
    >>> fallback_text("3 + 4 = 7\\n#### 7\\nDone in 2 steps.")
    ' 7'
    >>> fallback_text("The answer is 7.")
    'The answer is 7.'
    """
    # Looking for one character first is a memchr; most completions hold no "\\" or "#".
    first = completion.find(_BOXED) if "\\" in completion else -1
    if first != -1:
        boxed = _last_closed_boxed(completion, first)
        if boxed is not None:
            return boxed
    marker = completion.rfind("####") if "#" in completion else -1
    if marker != -1:
        rest = completion[marker + 4 :]
        end = rest.find("\n")
        return rest if end == -1 else rest[:end]
    return completion


def tags(completion: str) -> list[str]:
    """Every ``<think>``, ``</think>``, ``<answer>``, ``</answer>`` in order, with its newline.

    A tag followed by a newline is listed with it, so ``tags(c).count("<think>\\n")`` is
    ``c.count("<think>\\n")`` and a tag occurs in `c` iff it is listed with or without the
    newline. One regular-expression pass (no backtracking) where counting each tag and each
    tag-plus-newline would take eight.

    >>> tags("<think>\\nhm</think><answer>5</answer>\\n")
    ['<think>\\n', '</think>', '<answer>', '</answer>\\n']
    """
    return _TAG.findall(completion) if "<" in completion else []


def has_pair(completion: str, opening: str, closing: str) -> bool:
    """Whether `opening` occurs with `closing` somewhere after it (the lenient format rule).

    >>> has_pair("<think>x</think>", THINK_OPEN, THINK_CLOSE)
    True
    >>> has_pair("</think><think>", THINK_OPEN, THINK_CLOSE)
    False
    """
    start = completion.find(opening)
    # Any `closing` after the opening tag will do: look from the end, where it usually is.
    return start != -1 and completion.rfind(closing, start + len(opening)) != -1
