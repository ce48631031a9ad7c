"""Tables of cases for `rewardkit.extract` (spec sections 1 and 2), one group per rule."""

from __future__ import annotations

import pytest

from rewardkit.extract import (
    ANSWER_CLOSE,
    ANSWER_OPEN,
    THINK_CLOSE,
    THINK_OPEN,
    answer_pairs,
    fallback_text,
    gold,
    has_pair,
    lenient_answer,
    strict_answer,
)

GOLD = [
    # GSM8K: the text after `####` to the end of that line, stripped
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72"),
    ("#### 72", "72"),
    ("####72", "72"),
    ("#### 1,000", "1,000"),
    ("#### 5\nexplanation after the marker", "5"),
    # the FIRST `####` counts; a second one is text
    ("#### 5 #### 6", "5 #### 6"),
    ("a #### 5\n#### 6", "5"),
    # a bare answer is the whole string, stripped
    ("72", "72"),
    ("  72 \n", "72"),
    ("seventy-two", "seventy-two"),
    # edge cases: nothing after the marker, nothing at all
    ("####", ""),
    ("#### \n5", ""),
    ("", ""),
    ("#####5", "#5"),
]


@pytest.mark.parametrize(("answer", "expected"), GOLD)
def test_gold(answer: str, expected: str) -> None:
    assert gold(answer) == expected


ANSWER_PAIRS = [
    # each complete pair, left to right, as re.findall(r"<answer>(.*?)</answer>") finds them
    ("<answer>1</answer>", ["1"]),
    ("<answer>1</answer><answer>2</answer>", ["1", "2"]),
    ("<answer>\n1\n</answer>\n", ["\n1\n"]),
    # shortest matches: a second opening tag is content; a second closing tag is text
    ("<answer>a<answer>b</answer>", ["a<answer>b"]),
    ("<answer>a</answer>b</answer>", ["a"]),
    # no complete pair
    ("<answer>1", []),
    ("1</answer>", []),
    ("</answer><answer>", []),
    ("", []),
    # an empty pair is still a pair
    ("<answer></answer>", [""]),
    # a pair after an unclosed opening tag cannot exist
    ("<answer>1</answer><answer>2", ["1"]),
]


@pytest.mark.parametrize(("completion", "expected"), ANSWER_PAIRS)
def test_answer_pairs(completion: str, expected: list[str]) -> None:
    assert [completion[s:e] for s, e in answer_pairs(completion)] == expected


STRICT_ANSWER = [
    # the well-formed layout
    ("<think>\n24 + 6 = 30\n</think>\n<answer>\n30\n</answer>\n", "30"),
    # the content of the LAST pair, stripped with str.strip()
    ("<answer>1</answer> then <answer> 2 </answer>", "2"),
    ("<answer>\t 7 \n</answer>", "7"),
    ("<answer>1</answer><answer></answer>", ""),
    ("<answer>  </answer>", ""),
    # nested opening tags: the one pair's content starts at the first `<answer>`
    ("<answer>a<answer>b</answer>", "a<answer>b"),
    ("<answer>1</answer>junk<answer>2", "1"),
    # no complete pair: None, not ""
    ("<answer>24", None),
    ("24</answer>", None),
    ("</answer>24<answer>", None),
    ("The answer is 24.", None),
    ("", None),
    # tags are case- and spelling-sensitive
    ("<Answer>1</Answer>", None),
    ("<answer >1</answer>", None),
]


@pytest.mark.parametrize(("completion", "expected"), STRICT_ANSWER)
def test_strict_answer(completion: str, expected: str | None) -> None:
    assert strict_answer(completion) == expected


LENIENT_ANSWER = [
    # a complete pair: the strict answer
    ("<answer>\n42\n</answer>\n", "42"),
    ("<answer>1</answer><answer>2", "1"),
    ("<answer>1</answer><answer>2</answer>", "2"),
    # truncated: the text after the LAST `<answer>`, stripped
    ("so the answer is <answer> 42", "42"),
    ("<answer>1 <answer> 2", "2"),
    ("</answer><answer>5", "5"),
    ("<answer>", ""),
    # only a closing tag: the text before the FIRST `</answer>`, stripped
    (" 17 </answer>\n", "17"),
    ("a</answer>b</answer>", "a"),
    (" answer </answer>\n\n", "answer"),
    # no answer tag at all
    ("The answer is 5.", None),
    ("", None),
    ("\\boxed{5}", None),
]


@pytest.mark.parametrize(("completion", "expected"), LENIENT_ANSWER)
def test_lenient_answer(completion: str, expected: str | None) -> None:
    assert lenient_answer(completion) == expected


FALLBACK_TEXT = [
    # the content of the last \boxed{...}, braces matched
    ("So $\\boxed{18}$ dollars in 4 weeks.", "18"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
    ("\\boxed{1} then \\boxed{2}", "2"),
    ("\\boxed{}", ""),
    ("\\boxed{{}}", "{}"),
    ("\\boxed{1}}}", "1"),
    # nested boxes: the last one by where it starts is the inner one
    ("\\boxed{\\boxed{5}+1}", "5"),
    # an unclosed \boxed{ (truncated) is passed over
    ("\\boxed{5} and \\boxed{6", "5"),
    ("\\boxed{5", "\\boxed{5"),
    ("{\\boxed{5}", "5"),
    # a box wins over `####`, wherever each stands
    ("\\boxed{5}\n#### 6", "5"),
    # `####`: the rest of the line after its LAST occurrence, not stripped
    ("3 + 4 = 7\n#### 7\nDone in 2 steps.", " 7"),
    ("#### 5\n#### 6\n", " 6"),
    ("#### 5", " 5"),
    ("#####", ""),
    ("####\n5", ""),
    # neither: the whole completion
    ("The answer is 7.", "The answer is 7."),
    ("", ""),
    ("\\boxed", "\\boxed"),
    ("\\boxed {5}", "\\boxed {5}"),
]


@pytest.mark.parametrize(("completion", "expected"), FALLBACK_TEXT)
def test_fallback_text(completion: str, expected: str) -> None:
    assert fallback_text(completion) == expected


HAS_PAIR = [
    # an opening tag followed somewhere later by its closing tag
    ("<think>x</think>", THINK_OPEN, THINK_CLOSE, True),
    ("<think></think>", THINK_OPEN, THINK_CLOSE, True),
    ("<think>a</think><think>", THINK_OPEN, THINK_CLOSE, True),
    ("</think><think>x</think>", THINK_OPEN, THINK_CLOSE, True),
    # the closing tag before the opening one does not count
    ("</think><think>", THINK_OPEN, THINK_CLOSE, False),
    ("<think>", THINK_OPEN, THINK_CLOSE, False),
    ("</think>", THINK_OPEN, THINK_CLOSE, False),
    ("", THINK_OPEN, THINK_CLOSE, False),
    # the answer tags, and the other pair's tags do not help
    ("<answer>1</answer>", ANSWER_OPEN, ANSWER_CLOSE, True),
    ("<answer>1</think>", ANSWER_OPEN, ANSWER_CLOSE, False),
    ("<think>1</answer>", ANSWER_OPEN, ANSWER_CLOSE, False),
]


@pytest.mark.parametrize(("completion", "opening", "closing", "expected"), HAS_PAIR)
def test_has_pair(completion: str, opening: str, closing: str, expected: bool) -> None:
    assert has_pair(completion, opening, closing) is expected
