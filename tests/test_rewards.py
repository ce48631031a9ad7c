"""Tables of cases for every built-in reward, in both variants: the value AND the reason.

Values follow `REWARDS_SPEC.md` section 4; reason codes are the stable codes of
`rewardkit.rewards.REASONS` (``ok`` for full credit, else why).
"""

from __future__ import annotations

import re
from dataclasses import FrozenInstanceError

import pytest

from rewardkit.rewards import REASONS, REWARDS, Reward, get_reward

WELL_FORMED = "<think>\n24 + 6 = 30\n</think>\n<answer>\n30\n</answer>\n"


def _well_formed(answer: str) -> str:
    return f"<think>\nwork\n</think>\n<answer>\n{answer}\n</answer>\n"


CORRECTNESS_STRICT = [
    # the strict answer equals the gold after strict_norm: string equality
    (WELL_FORMED, "#### 30", 2.0, "ok"),
    ("<answer>\n360,000\n</answer>\n", "360000", 2.0, "ok"),
    ("<answer>360000</answer>", "#### 360,000", 2.0, "ok"),
    ("<answer> 18 </answer>", " 18\n", 2.0, "ok"),
    ("<answer>seven</answer>", "seven", 2.0, "ok"),
    ("<answer>1</answer><answer>18</answer>", "18", 2.0, "ok"),
    # an empty pair equals an empty gold (string equality, as the spec says)
    ("<answer></answer>", "", 2.0, "ok"),
    # the right number written differently: strict says no, and says why
    ("<answer>18 dollars</answer>", "#### 18", 0.0, "right_number_wrong_text"),
    ("<answer>18.0</answer>", "18", 0.0, "right_number_wrong_text"),
    ("<answer>$18</answer>", "18", 0.0, "right_number_wrong_text"),
    ("<answer>１８</answer>", "18", 0.0, "right_number_wrong_text"),
    ("<answer>\\boxed{18}</answer>", "18", 0.0, "right_number_wrong_text"),
    ("<answer>18</answer>", "18.0", 0.0, "right_number_wrong_text"),
    # a different value; the LAST pair counts
    ("<answer>17</answer>", "18", 0.0, "wrong_answer"),
    ("<answer>18</answer><answer>1</answer>", "18", 0.0, "wrong_answer"),
    ("<answer>1 8</answer>", "18", 0.0, "wrong_answer"),
    ("<answer>seven</answer>", "7", 0.0, "wrong_answer"),
    # no complete pair
    ("<answer>18", "18", 0.0, "unclosed_answer_tag"),
    ("18</answer>", "18", 0.0, "no_answer_tag"),
    ("The answer is 18", "18", 0.0, "no_answer_tag"),
    ("\\boxed{18}", "18", 0.0, "no_answer_tag"),
    ("<answer></answer>", "18", 0.0, "empty_answer"),
    ("<answer>  \n </answer>", "18", 0.0, "empty_answer"),
]

CORRECTNESS_LENIENT = [
    # the strict rule still gives full credit
    (WELL_FORMED, "#### 30", 2.0, "ok"),
    ("<answer>seven</answer>", "seven", 2.0, "ok"),
    # the same value, however written
    ("<answer>18 dollars</answer>", "18", 2.0, "ok"),
    ("<answer>18.0</answer>", "#### 18", 2.0, "ok"),
    ("<answer>$1,234.50</answer>", "1234.5", 2.0, "ok"),
    ("<answer>−5</answer>", "-5", 2.0, "ok"),
    ("<answer>１８</answer>", "18", 2.0, "ok"),
    ("<answer>-0</answer>", "0", 2.0, "ok"),
    ("<answer>0.5</answer>", "#### .5", 2.0, "ok"),
    ("<answer>18</answer>", "#### 18 dollars", 2.0, "ok"),
    # truncated or half-tagged answers
    ("<think>\n9 * 2\n</think>\n<answer>\n18", "18", 2.0, "ok"),
    (" 18 </answer>", "18", 2.0, "ok"),
    # no answer tag: the last \boxed{}, else the `####` line, else the whole text
    ("The total is $1,234.50.", "1234.5", 2.0, "ok"),
    ("So $\\boxed{18}$ dollars in 4 weeks", "#### 18", 2.0, "ok"),
    ("\\boxed{18} then 19", "18", 2.0, "ok"),
    ("9 * 2 = 18\n#### 18\nDone in 2 steps.", "18", 2.0, "ok"),
    ("it is 18, then \\boxed{", "18", 2.0, "ok"),
    # a different value
    ("<answer>about 7</answer>", "8", 0.0, "wrong_answer"),
    ("<answer>17</answer> 18", "18", 0.0, "wrong_answer"),
    ("So $\\boxed{18}$ dollars in 4 weeks", "4", 0.0, "wrong_answer"),
    ("18 dollars in 4 weeks", "18", 0.0, "wrong_answer"),
    # no number on one side
    ("<answer>seven</answer>", "7", 0.0, "answer_not_numeric"),
    ("18 <answer>", "18", 0.0, "answer_not_numeric"),
    ("no number here", "18", 0.0, "answer_not_numeric"),
    ("", "18", 0.0, "answer_not_numeric"),
    ("<answer>7</answer>", "seven", 0.0, "gold_not_numeric"),
    ("<answer>5</answer>", "", 0.0, "gold_not_numeric"),
]

DIGIT_STRICT = [
    # the strict answer, after strict_norm, is ASCII digits only
    ("<answer>1,000</answer>", "", 0.5, "ok"),
    ("<answer>\n42\n</answer>", "", 0.5, "ok"),
    ("<answer>007</answer>", "", 0.5, "ok"),
    (WELL_FORMED, "", 0.5, "ok"),
    # signs, decimals, units, spaces, non-ASCII digits
    ("<answer>-5</answer>", "", 0.0, "answer_not_digits"),
    ("<answer>5.0</answer>", "", 0.0, "answer_not_digits"),
    ("<answer>18 dollars</answer>", "", 0.0, "answer_not_digits"),
    ("<answer>1 000</answer>", "", 0.0, "answer_not_digits"),
    ("<answer>1,,000</answer>", "", 0.0, "answer_not_digits"),
    ("<answer>²</answer>", "", 0.0, "answer_not_digits"),
    ("<answer>５</answer>", "", 0.0, "answer_not_digits"),
    ("<answer>five</answer>", "", 0.0, "answer_not_digits"),
    # no (non-empty) strict answer
    ("<answer></answer>", "", 0.0, "empty_answer"),
    ("<answer>5", "", 0.0, "unclosed_answer_tag"),
    ("5", "", 0.0, "no_answer_tag"),
    ("5</answer>", "", 0.0, "no_answer_tag"),
]

DIGIT_LENIENT = [
    # the strict rule, or a number can be read in the lenient answer
    ("<answer>1,000</answer>", "", 0.5, "ok"),
    ("<answer>-5</answer>", "", 0.5, "ok"),
    ("<answer>$18.50</answer>", "", 0.5, "ok"),
    ("<answer>１８</answer>", "", 0.5, "ok"),
    ("<answer>5", "", 0.5, "ok"),
    (" 5 </answer>", "", 0.5, "ok"),
    # no number in the lenient answer
    ("<answer>five</answer>", "", 0.0, "answer_not_numeric"),
    ("<answer></answer>", "", 0.0, "answer_not_numeric"),
    ("<answer>٣</answer>", "", 0.0, "answer_not_numeric"),
    ("5 <answer>", "", 0.0, "answer_not_numeric"),
    # no answer tag: the fallback text is not used by `digit`
    ("The answer is 5", "", 0.0, "no_answer_tag"),
    ("\\boxed{5}", "", 0.0, "no_answer_tag"),
]

FORMAT_STRICT = [
    # the whole completion is <think>\n.*?\n</think>\n<answer>\n.*?\n</answer>\n
    (WELL_FORMED, "", 0.5, "ok"),
    ("<think>\n\n</think>\n<answer>\n\n</answer>\n", "", 0.5, "ok"),
    ("<think>\nmany\nlines\n</think>\n<answer>\n5\n</answer>\n", "", 0.5, "ok"),
    # `.*?` may hold tags: a second answer inside the layout still matches
    (_well_formed("1\n</answer>\n<answer>\n2"), "", 0.5, "ok"),
    # how it starts
    ("", "", 0.0, "no_think_tag"),
    ("<answer>123</answer>", "", 0.0, "no_think_tag"),
    ("Sure! " + WELL_FORMED, "", 0.0, "text_before_think"),
    ("<think>hm</think><answer>5</answer>", "", 0.0, "missing_newline_after_think"),
    # the middle
    ("<think>\nx\n", "", 0.0, "no_think_close_tag"),
    ("<think>\nx\n</think>\n", "", 0.0, "no_answer_tag"),
    ("<think>\nx</think>\n<answer>\n5\n</answer>\n", "", 0.0, "missing_newline_before_think_close"),
    ("<think>\n</think>\n<answer>\n5\n</answer>\n", "", 0.0, "missing_newline_before_think_close"),
    ("<think>\nx\n</think><answer>\n5\n</answer>\n", "", 0.0, "missing_newline_after_think_close"),
    ("<think>\nx\n</think>\n<answer>5\n</answer>\n", "", 0.0, "missing_newline_after_answer"),
    ("<think>\nx\n</think>\n\n<answer>\n5\n</answer>\n", "", 0.0, "text_between_think_and_answer"),
    # how it ends
    ("<think>\nx\n</think>\n<answer>\n5\n", "", 0.0, "no_answer_close_tag"),
    ("<think>\nx\n</think>\n<answer>\n5\n</answer>", "", 0.0, "missing_newline_after_answer_close"),
    (WELL_FORMED + "\n", "", 0.0, "text_after_answer_close"),
    (WELL_FORMED + "Thanks!", "", 0.0, "text_after_answer_close"),
    (
        "<think>\nx\n</think>\n<answer>\n5</answer>\n",
        "",
        0.0,
        "missing_newline_before_answer_close",
    ),
    # one newline cannot both end `<answer>\n` and start `\n</answer>`
    ("<think>\nx\n</think>\n<answer>\n</answer>\n", "", 0.0, "missing_newline_before_answer_close"),
]

FORMAT_LENIENT = [
    # a think pair and an answer pair, in any order
    (WELL_FORMED, "", 0.5, "ok"),
    ("<think>x</think><answer>5</answer>", "", 0.5, "ok"),
    ("<answer>1</answer><think>why</think>", "", 0.5, "ok"),
    ("<think><answer>1</answer></think>", "", 0.5, "ok"),
    # only the answer pair
    ("<answer>123</answer>", "", 0.25, "no_think_pair"),
    ("</think><think><answer>1</answer>", "", 0.25, "no_think_pair"),
    ("<think><answer>1</answer>", "", 0.25, "no_think_pair"),
    # no answer pair: a think pair alone is worth nothing
    ("<think>x</think>", "", 0.0, "no_answer_pair"),
    ("<think>x</think><answer>5", "", 0.0, "no_answer_pair"),
    ("</answer><answer>", "", 0.0, "no_answer_pair"),
    ("<think></answer><answer></think>", "", 0.0, "no_answer_pair"),
    ("", "", 0.0, "no_answer_pair"),
]

MARK_STRICT = [
    # 0.125 for each of `<think>\n`, `</think>\n`, `<answer>\n`, `</answer>\n` seen exactly once
    (WELL_FORMED, "", 0.5, "ok"),
    ("<think>\n</think>\n<answer>\n</answer>\n", "", 0.5, "ok"),
    ("<answer>\n360,000\n</answer>\n", "", 0.25, "no_think_tag"),
    (" answer </answer>\n\n", "", 0.125, "no_think_tag"),
    ("<answer>123</answer>", "", 0.0, "no_think_tag"),
    ("", "", 0.0, "no_think_tag"),
    # a tag without its newline: the reason names the first mark that missed
    ("<think>x\n</think>\n<answer>\n5\n</answer>\n", "", 0.375, "missing_newline_after_think"),
    (
        "<think>\nx\n</think><answer>\n5\n</answer>\n",
        "",
        0.375,
        "missing_newline_after_think_close",
    ),
    ("<think>\nx\n</think>\n<answer>5\n</answer>\n", "", 0.375, "missing_newline_after_answer"),
    (
        "<think>\nx\n</think>\n<answer>\n5\n</answer>",
        "",
        0.375,
        "missing_newline_after_answer_close",
    ),
    ("<think>hm</think><answer>5</answer>", "", 0.0, "missing_newline_after_think"),
    # a mark seen twice earns nothing
    ("<think>\n<think>\n" + WELL_FORMED[8:], "", 0.375, "repeated_think_tag"),
    (WELL_FORMED + "</answer>\n", "", 0.375, "repeated_answer_close_tag"),
    (WELL_FORMED + WELL_FORMED, "", 0.0, "repeated_think_tag"),
    ("</think>\n</think>\n", "", 0.0, "no_think_tag"),
]

MARK_LENIENT = [
    # 0.125 for each of `<think>`, `</think>`, `<answer>`, `</answer>` seen at all
    (WELL_FORMED, "", 0.5, "ok"),
    ("<think>x</think><answer>5</answer>", "", 0.5, "ok"),
    (WELL_FORMED + WELL_FORMED, "", 0.5, "ok"),
    ("<answer>123</answer>", "", 0.25, "no_think_tag"),
    ("</answer>", "", 0.125, "no_think_tag"),
    ("<think><think>", "", 0.125, "no_think_close_tag"),
    ("<think></think><answer>", "", 0.375, "no_answer_close_tag"),
    ("<think></think></answer>", "", 0.375, "no_answer_tag"),
    ("", "", 0.0, "no_think_tag"),
]

CASES = [
    ("correctness", "strict", CORRECTNESS_STRICT),
    ("correctness", "lenient", CORRECTNESS_LENIENT),
    ("digit", "strict", DIGIT_STRICT),
    ("digit", "lenient", DIGIT_LENIENT),
    ("format", "strict", FORMAT_STRICT),
    ("format", "lenient", FORMAT_LENIENT),
    ("mark", "strict", MARK_STRICT),
    ("mark", "lenient", MARK_LENIENT),
]


@pytest.mark.parametrize(
    ("name", "variant", "completion", "answer", "value", "reason"),
    [
        pytest.param(name, variant, *case, id=f"{name}-{variant}-{i}")
        for name, variant, table in CASES
        for i, case in enumerate(table)
    ],
)
def test_reward(
    name: str, variant: str, completion: str, answer: str, value: float, reason: str
) -> None:
    result = REWARDS[name].variants[variant](completion, answer)
    assert result == Reward(value, reason)
    assert type(result) is Reward
    assert isinstance(result.value, float)


# The worked examples of spec section 4, reward by reward (correctness, digit, format, mark).
WORKED_EXAMPLES = [
    (WELL_FORMED, "#### 30", (2.0, 0.5, 0.5, 0.5), (2.0, 0.5, 0.5, 0.5)),
    ("<answer>123</answer>", "123", (2.0, 0.5, 0.0, 0.0), (2.0, 0.5, 0.25, 0.25)),
    (" answer </answer>\n\n", "24", (0.0, 0.0, 0.0, 0.125), (0.0, 0.0, 0.0, 0.125)),
    ("<answer>\n360,000\n</answer>\n", "360000", (2.0, 0.5, 0.0, 0.25), (2.0, 0.5, 0.25, 0.25)),
    ("The total is $1,234.50.", "1234.5", (0.0, 0.0, 0.0, 0.0), (2.0, 0.0, 0.0, 0.0)),
]


@pytest.mark.parametrize(("completion", "answer", "strict", "lenient"), WORKED_EXAMPLES)
def test_worked_examples_reward_by_reward(
    completion: str,
    answer: str,
    strict: tuple[float, ...],
    lenient: tuple[float, ...],
) -> None:
    for variant, expected in (("strict", strict), ("lenient", lenient)):
        values = tuple(
            REWARDS[name].variants[variant](completion, answer).value for name in REWARDS
        )
        assert values == expected, variant


# --- the REWARDS table ---------------------------------------------------------------------


def test_rewards_table_names_maxima_and_variants() -> None:
    assert {name: r.max for name, r in REWARDS.items()} == {
        "correctness": 2.0,
        "digit": 0.5,
        "format": 0.5,
        "mark": 0.5,
    }
    for name, definition in REWARDS.items():
        assert definition.name == name
        assert set(definition.variants) == {"strict", "lenient"}
        assert definition.description


def test_rewards_table_is_read_only() -> None:
    with pytest.raises(TypeError):
        REWARDS["new"] = REWARDS["digit"]  # type: ignore[index]
    with pytest.raises(TypeError):
        REWARDS["digit"].variants["loose"] = REWARDS["digit"].variants["strict"]  # type: ignore[index]
    with pytest.raises(FrozenInstanceError):
        REWARDS["digit"].max = 1.0  # type: ignore[misc]


def test_get_reward_returns_the_definition() -> None:
    assert get_reward("correctness") is REWARDS["correctness"]


@pytest.mark.parametrize("name", ["digits", "Correctness", "", "total"])
def test_get_reward_unknown_lists_the_valid_names(name: str) -> None:
    with pytest.raises(KeyError, match="valid rewards: correctness, digit, format, mark"):
        get_reward(name)


def test_reason_codes_are_stable_snake_case_with_a_sentence() -> None:
    assert "ok" in REASONS
    for code, sentence in REASONS.items():
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", code), code
        assert sentence.strip(), code


def test_every_reason_in_these_tables_is_a_known_code() -> None:
    used = {case[3] for _, _, table in CASES for case in table}
    assert used <= set(REASONS)
