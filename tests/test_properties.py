"""Property tests for the guarantees of `REWARDS_SPEC.md` section 5, and equivalence of the
linear-time code with the spec's own definitions.

The spec defines extraction and the format rule with regular expressions and the numbers
in words; the code computes the same results with `str.find` scans that cannot backtrack.
The `ref_*` functions below are the spec's definitions written as literally as possible
(slow, quadratic in places, obviously right); the properties check that the code agrees
with them on tag soup and on completions in every shape a policy produces.
"""

from __future__ import annotations

import itertools
import math
import random
import re
import time
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from strategies import (
    PREFIXES,
    SUFFIXES,
    FormattedAnswer,
    Layout,
    completions,
    decimals_as_text,
    formatted_answers,
    full_width,
    golds,
    integers_as_text,
    layouts,
    numbers,
    rows,
    tag_soup,
    with_commas,
    with_thousands,
)

from rewardkit.extract import (
    fallback_text,
    gold,
    has_pair,
    lenient_answer,
    strict_answer,
    tags,
)
from rewardkit.numbers import parse_number, strict_norm
from rewardkit.passk import mean_pass_at_k, pass_at_k
from rewardkit.rewards import REASONS, REWARDS, RewardFn, _scan_layout, _walk_layout
from rewardkit.schemes import LENIENT, STRICT, Scheme, SchemeReward

SCHEMES = (STRICT, LENIENT)
Test = TypeVar("Test", bound=Callable[..., None])
TAGS = ("<think>", "</think>", "<answer>", "</answer>")

# --- the spec's definitions, written literally ---------------------------------------------


def ref_gold(answer: str) -> str:
    if "####" in answer:
        return answer.split("####", 1)[1].split("\n", 1)[0].strip()
    return answer.strip()


def ref_strict_answer(c: str) -> str | None:
    found = re.findall(r"<answer>(.*?)</answer>", c, re.DOTALL)
    return found[-1].strip() if found else None


def ref_lenient_answer(c: str) -> str | None:
    found = ref_strict_answer(c)
    if found is not None:
        return found
    if "<answer>" in c:
        return c.rsplit("<answer>", 1)[1].strip()
    if "</answer>" in c:
        return c.split("</answer>", 1)[0].strip()
    return None


def ref_boxed(c: str) -> str | None:
    """The content of the last ``\\boxed{`` (by where it starts) whose brace is closed.

    Walks forward from each ``\\boxed{``, last first, counting braces. The spec does not say
    what an unclosed ``\\boxed{`` (a truncated completion) is: it is not a ``\\boxed{…}``,
    so an earlier closed one counts.
    """
    opener = "\\boxed{"
    for match in reversed(list(re.finditer(re.escape(opener), c))):
        depth = 0
        for i in range(match.end() - 1, len(c)):
            if c[i] == "{":
                depth += 1
            elif c[i] == "}":
                depth -= 1
                if depth == 0:
                    return c[match.end() : i]
    return None


def ref_fallback_text(c: str) -> str:
    boxed = ref_boxed(c)
    if boxed is not None:
        return boxed
    if "####" in c:
        return c.rsplit("####", 1)[1].split("\n", 1)[0]
    return c


def ref_strict_norm(s: str) -> str:
    while True:
        replaced = re.sub(r"(\d),(\d)", r"\1\2", s)
        if replaced == s:
            return s.strip()
        s = replaced


_SPEC_NUMBER = re.compile(r"(-?)([0-9]+(?:,[0-9]+)*(?:\.[0-9]+)?|\.[0-9]+)")


def ref_parse_number(s: str) -> Decimal | None:
    """NFKC, U+2212 as ``-``, then every number left to right; the last one's value.

    A ``-`` is a sign only when the character before it is not a letter, digit or ``.``
    (``str.isalpha`` decides letter; digits are ASCII 0-9, as the spec says).
    """
    s = unicodedata.normalize("NFKC", s).replace("\u2212", "-")
    last = None
    for match in _SPEC_NUMBER.finditer(s):
        sign, digits = match.groups()
        before = s[match.start() - 1] if match.start() > 0 else ""
        if sign and before and (before.isalpha() or before in "0123456789."):
            sign = ""
        last = sign + digits
    return None if last is None else Decimal(last.replace(",", ""))


def ref_values(c: str, answer: str, variant: str) -> dict[str, float]:
    """Every reward of section 4, as the table defines it."""
    g = ref_gold(answer)
    found = ref_strict_answer(c)
    strict_correct = found is not None and ref_strict_norm(found) == ref_strict_norm(g)
    strict_digit = found is not None and re.fullmatch("[0-9]+", ref_strict_norm(found))
    if variant == "strict":
        layout = r"<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>\n"
        return {
            "correctness": 2.0 if strict_correct else 0.0,
            "digit": 0.5 if strict_digit else 0.0,
            "format": 0.5 if re.fullmatch(layout, c, re.DOTALL) is not None else 0.0,
            "mark": sum(0.125 for tag in TAGS if c.count(tag + "\n") == 1),
        }
    lenient = ref_lenient_answer(c)
    x = ref_fallback_text(c) if lenient is None else lenient
    value, gold_value = ref_parse_number(x), ref_parse_number(g)
    numeric = value is not None and gold_value is not None and value == gold_value
    think = re.search(r"<think>.*?</think>", c, re.DOTALL) is not None
    answer_pair = re.search(r"<answer>.*?</answer>", c, re.DOTALL) is not None
    return {
        "correctness": 2.0 if strict_correct or numeric else 0.0,
        "digit": 0.5
        if strict_digit or (lenient is not None and ref_parse_number(lenient) is not None)
        else 0.0,
        "format": 0.5 if think and answer_pair else 0.25 if answer_pair else 0.0,
        "mark": sum(0.125 for tag in TAGS if tag in c),
    }


# --- strategies local to these properties --------------------------------------------------

texts = st.one_of(tag_soup(), completions(), st.text(max_size=40))
# (completion, gold) pairs: unrelated ones, and ones whose answer is near the gold
pairs = st.one_of(st.tuples(texts, golds()), rows())

PINNED = [
    "<answer>a<answer>b</answer>",
    "<answer></answer></answer>",
    "<think>\n\n</think>\n<answer>\n\n</answer>\n",
    "<think>\n</think>\n<answer>\n</answer>\n",
    "<think>\n</think>\n<answer>\n5\n</answer>\n",
    "<think>\nx\n</think>\n<answer>\n</answer>\n",
    "<think>\nx\n</think>\n<answer>\n5\n</answer>\n\n",
    "<think>\nx\n</think>\n<answer>\n5\n</answer>\n<answer>\n6\n</answer>\n",
    "<think>\n\n</think>\n<answer>\n</think>\n<answer>\n\n</answer>\n",
    "</answer><answer>5",
    "</think><think>",
    " answer </answer>\n\n",
    "\\boxed{\\boxed{5}+1}",
    "\\boxed{5} \\boxed{",
    "{\\boxed{5}",
    "#### 5\n#### 6\n",
    "#####",
]


def pin(*cases: str, answer: str | None = None) -> Callable[[Test], Test]:
    """`@example` for each case: the completion, or the row (case, answer) given `answer`."""

    def decorate(test: Test) -> Test:
        for case in reversed(cases):
            pinned = example(case) if answer is None else example((case, answer))
            test = pinned(test)
        return test

    return decorate


# --- extraction equals the spec's regular expressions -------------------------------------


@settings(max_examples=400)
@pin(*PINNED)
@given(texts)
def test_strict_answer_is_the_last_findall_match(c: str) -> None:
    assert strict_answer(c) == ref_strict_answer(c)


@settings(max_examples=400)
@pin(*PINNED)
@given(texts)
def test_lenient_answer_follows_the_spec(c: str) -> None:
    assert lenient_answer(c) == ref_lenient_answer(c)


@settings(max_examples=400)
@pin(*PINNED, "\\boxed{\\frac{1}{2}}", "\\boxed{1}}}", "\\boxed{{}")
@given(st.one_of(texts, st.text("\\boxed{}x1 #\n", max_size=30)))
def test_fallback_text_matches_braces_like_a_simple_walk(c: str) -> None:
    assert fallback_text(c) == ref_fallback_text(c)


@settings(max_examples=200)
@pin("#### 72", "72", "a #### 1,000\nb #### 2", "####", "#### \n 5")
@given(st.one_of(golds(), tag_soup()))
def test_gold_follows_the_spec(answer: str) -> None:
    assert gold(answer) == ref_gold(answer)


@settings(max_examples=400)
@pin(*PINNED)
@given(texts)
def test_format_strict_is_the_spec_fullmatch(c: str) -> None:
    layout = r"<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>\n"
    expected = re.fullmatch(layout, c, re.DOTALL) is not None
    reward = REWARDS["format"].variants["strict"](c, "")
    assert (reward.value == 0.5) == expected
    assert (reward.reason == "ok") == expected


@settings(max_examples=400)
@pin(*PINNED, "<answer></answer><think></think>", "<think></answer><answer></think>")
@given(texts)
def test_format_lenient_is_two_regex_searches(c: str) -> None:
    think = re.search(r"<think>.*?</think>", c, re.DOTALL) is not None
    answer = re.search(r"<answer>.*?</answer>", c, re.DOTALL) is not None
    assert has_pair(c, "<think>", "</think>") == think
    assert has_pair(c, "<answer>", "</answer>") == answer
    expected = 0.5 if think and answer else 0.25 if answer else 0.0
    assert REWARDS["format"].variants["lenient"](c, "").value == expected


@settings(max_examples=300)
@pin(*PINNED, "<think>\n<think>\n", "</answer>\n</answer>\n</answer>")
@given(texts)
def test_marks_count_as_the_spec_says(c: str) -> None:
    strict = sum(0.125 for tag in TAGS if c.count(tag + "\n") == 1)
    lenient = sum(0.125 for tag in TAGS if tag in c)
    assert REWARDS["mark"].variants["strict"](c, "").value == strict
    assert REWARDS["mark"].variants["lenient"](c, "").value == lenient


@settings(max_examples=400)
@pin(*PINNED, "<answer>1</answer><answer>2", "<answer>1<answer>2</answer></answer>")
@given(texts)
def test_the_walk_and_the_scans_read_the_same_layout(c: str) -> None:
    """Short tag sequences are walked in Python, long ones scanned in C: both agree.

    Where the walk says the last pair's tags are the last of their kind, the strict answer
    read from the end is the spec's.
    """
    found = tags(c)
    walked = _walk_layout(tuple(found))
    assert walked._replace(last_pair_is_last_tags=False) == _scan_layout(c, found)
    assert walked.answer_pair == (ref_strict_answer(c) is not None)
    if walked.last_pair_is_last_tags:
        content = c[c.rfind("<answer>") + len("<answer>") : c.rfind("</answer>")]
        assert content.strip() == ref_strict_answer(c)


# --- numbers equal the spec's definitions ---------------------------------------------------


@settings(max_examples=300)
@pin("1,2,3", "1,,2", ",1,", "1, 2", "١,٢,٣", " 3,4 ", "1,2,3,4,5,6")
@given(st.one_of(st.text(st.sampled_from("1234,, a١\n"), max_size=20), tag_soup()))
def test_strict_norm_is_the_fixed_point_of_the_spec_substitution(s: str) -> None:
    assert strict_norm(s) == ref_strict_norm(s)


@settings(max_examples=500)
@pin(
    "a--5",
    "5-3",
    "1.2.3",
    "x.-5",
    ".-5",
    "−５",
    "1,,2",
    "12,34",
    "1,234,",
    "-.5",
    "..5",
    "_-5",
    "é-5",
    "2⁻¹",
    "½",
    "5 −−3",
    "The total is $1,234.50.",
)
@given(
    st.one_of(
        tag_soup(),
        formatted_answers().map(lambda f: f.text),
        st.text(st.sampled_from("0123456789.,-−－ a_$%\n１٣²"), max_size=25),
        st.text(max_size=30),
    )
)
def test_parse_number_is_the_last_left_to_right_match(s: str) -> None:
    assert parse_number(s) == ref_parse_number(s)


@settings(max_examples=300)
@given(
    text=st.one_of(integers_as_text(), decimals_as_text()),
    prefix=st.sampled_from(PREFIXES),
    suffix=st.sampled_from(SUFFIXES),
    wide=st.booleans(),
)
@example(text="1,234.50", prefix="The total is $", suffix=".", wide=False)
@example(text="-0", prefix="", suffix="", wide=False)
@example(text="+.5", prefix="x = ", suffix="%", wide=True)
@example(text="12,34", prefix="", suffix="", wide=False)
def test_parse_number_agrees_with_decimal(text: str, prefix: str, suffix: str, wide: bool) -> None:
    expected = Decimal(text.replace(",", ""))
    written = full_width(text) if wide else text
    assert parse_number(text) == expected
    assert parse_number(prefix + written + suffix) == expected


@settings(max_examples=200)
@given(formatted_answers())
def test_parse_number_reads_what_models_write(answer: FormattedAnswer) -> None:
    assert parse_number(answer.text) == answer.value


@given(numbers())
def test_parse_number_equal_values_compare_equal(value: Decimal) -> None:
    text = format(value, "f")
    padded = text + ("" if "." in text else ".") + "00"
    assert parse_number(padded) == parse_number(text) == value


# --- every short string over small alphabets, exhaustively --------------------------------


def _all_strings(alphabet: list[str], longest: int) -> list[str]:
    return [
        "".join(parts)
        for size in range(longest + 1)
        for parts in itertools.product(alphabet, repeat=size)
    ]


def test_numbers_on_every_short_string() -> None:
    # 1 + 7 + ... + 7**5 strings: every way signs, dots, commas and letters can touch a digit
    for s in _all_strings(list("1.,-a _"), 5):
        assert parse_number(s) == ref_parse_number(s), repr(s)
        assert strict_norm(s) == ref_strict_norm(s), repr(s)


def test_rewards_on_every_short_tag_sequence() -> None:
    # every sequence of up to 5 tags, newlines and text: all layouts the format rules see
    for c in _all_strings([*TAGS, "\n", "7"], 5):
        assert strict_answer(c) == ref_strict_answer(c), repr(c)
        assert lenient_answer(c) == ref_lenient_answer(c), repr(c)
        for scheme in SCHEMES:
            values = {name: r.value for name, r in scheme.score(c, "7").items()}
            assert values == ref_values(c, "7", scheme.name), (scheme.name, c)


def test_format_strict_on_every_short_layout() -> None:
    # the pieces of the layout, and the newlines and text that go missing or get doubled
    pieces = ["<think>\n", "\n</think>\n<answer>\n", "\n</answer>\n", "\n", "x", "</think>"]
    layout = r"<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>\n"
    for c in _all_strings(pieces, 5):
        expected = 0.5 if re.fullmatch(layout, c, re.DOTALL) else 0.0
        assert REWARDS["format"].variants["strict"](c, "").value == expected, repr(c)


def test_fallback_text_on_every_short_brace_sequence() -> None:
    for c in _all_strings(["\\boxed{", "{", "}", "x", "####", "\n"], 6):
        assert fallback_text(c) == ref_fallback_text(c), repr(c)


# --- section 5: ranges, totals, lenient >= strict, reasons ---------------------------------


@settings(max_examples=400)
@pin(*PINNED, answer="#### 5")
@given(pairs)
def test_rewards_equal_the_spec_table(row: tuple[str, str]) -> None:
    c, answer = row
    for scheme in SCHEMES:
        scores = scheme.score(c, answer)
        values = {name: reward.value for name, reward in scores.items()}
        assert values == ref_values(c, answer, scheme.name), scheme.name


@settings(max_examples=400)
@given(pairs)
def test_values_in_range_and_total_is_the_weighted_sum(row: tuple[str, str]) -> None:
    c, answer = row
    for scheme in SCHEMES:
        scores = scheme.score(c, answer)
        assert list(scores) == list(REWARDS)
        for name, reward in scores.items():
            assert 0.0 <= reward.value <= REWARDS[name].max
            # every reason is a known code, and `ok` means exactly full credit
            assert reward.reason in REASONS
            assert (reward.reason == "ok") == (reward.value == REWARDS[name].max)
        expected = sum(r.weight * scores[r.name].value for r in scheme.rewards)
        assert scheme.total(scores) == expected
        assert 0.0 <= scheme.total(scores) <= 3.5


@settings(max_examples=100)
@given(
    row=pairs,
    weights=st.lists(st.floats(-10, 10, allow_nan=False), min_size=4, max_size=4),
)
def test_total_of_a_weighted_scheme(row: tuple[str, str], weights: list[float]) -> None:
    c, answer = row
    rewards = tuple(
        SchemeReward(r.name, r.fn, w, r.max, r.variant)
        for r, w in zip(LENIENT.rewards, weights, strict=True)
    )
    scheme = Scheme("weighted", rewards)
    scores = scheme.score(c, answer)
    expected = math.fsum(w * scores[r.name].value for r, w in zip(rewards, weights, strict=True))
    assert scheme.total(scores) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@settings(max_examples=400)
@pin(*PINNED, answer="#### 5")
@given(pairs)
def test_lenient_is_never_below_strict(row: tuple[str, str]) -> None:
    c, answer = row
    strict = STRICT.score(c, answer)
    lenient = LENIENT.score(c, answer)
    for name in REWARDS:
        assert lenient[name].value >= strict[name].value, name
    assert LENIENT.total(lenient) >= STRICT.total(strict)


# --- section 5: thousands separators never change correctness ------------------------------

# A plain number without separators: sign, at least four integer digits, maybe a fraction.
plain_numbers = st.builds(
    lambda sign, whole, fraction: sign + str(whole) + fraction,
    st.sampled_from(["", "", "-"]),
    st.integers(1000, 10**15),
    st.sampled_from(["", ".5", ".25", ".125", ".0"]),
)


@st.composite
def separated(draw: st.DrawFn) -> tuple[str, str, str]:
    """A plain number, the same with commas between some or all of its groups of three,
    and a gold answer for it (bare, GSM8K style, or itself written with commas)."""
    plain = draw(plain_numbers)
    if draw(st.booleans()):
        grouped = with_thousands(plain)
    else:
        sign = plain[:1] if plain[:1] == "-" else ""
        whole, dot, fraction = plain[len(sign) :].partition(".")
        cuts = range(len(whole) % 3 or 3, len(whole), 3)
        places = draw(st.frozensets(st.sampled_from(list(cuts)), min_size=1))
        grouped = sign + with_commas(whole, places) + dot + fraction
    answers = [plain, f"#### {plain}", f"3 + 4 = 7\n#### {grouped}", f" {grouped} "]
    return plain, grouped, draw(st.sampled_from(answers))


def _boxed(answer: str) -> str:
    return f"\\boxed{{{answer}}}$ dollars"


def _well_formed(answer: str) -> str:
    return f"<think>\n1,000 / 4 = 250\n</think>\n<answer>\n{answer}\n</answer>\n"


@settings(max_examples=300)
@given(layout=layouts(correct=True), case=separated())
@example(Layout("well_formed", _well_formed, True, True), ("1234567", "1,234,567", "1234567"))
@example(Layout("well_formed", _well_formed, True, True), ("-1234.5", "-1,234.5", "#### -1234.5"))
@example(Layout("boxed", _boxed, False, True), ("12345", "12,345", "12345"))
def test_thousands_separators_never_change_correctness(
    layout: Layout, case: tuple[str, str, str]
) -> None:
    plain, grouped, gold_text = case
    for scheme in SCHEMES:
        before = scheme.score(layout.render(plain), gold_text)["correctness"]
        after = scheme.score(layout.render(grouped), gold_text)["correctness"]
        assert after.value == before.value, scheme.name
    # the completions were built to be correct, so the property is not vacuous
    assert LENIENT.score(layout.render(plain), gold_text)["correctness"].value == 2.0
    if layout.strict_correct:
        assert STRICT.score(layout.render(plain), gold_text)["correctness"].value == 2.0


@settings(max_examples=200)
@given(layout=layouts(correct=True), value=numbers(), data=st.data())
def test_thousands_separators_in_decorated_answers(
    layout: Layout, value: Decimal, data: st.DataObject
) -> None:
    # `$1234567 dollars` -> `$1,234,567 dollars`: the lenient scheme reads both
    prefix = data.draw(st.sampled_from(PREFIXES), label="prefix")
    suffix = data.draw(st.sampled_from(SUFFIXES), label="suffix")
    sign = "-" if value < 0 else ""
    plain = prefix + sign + format(abs(value), "f") + suffix
    grouped = prefix + sign + format(abs(value), ",f") + suffix
    gold_text = format(value, "f")
    for scheme in SCHEMES:
        before = scheme.score(layout.render(plain), gold_text)["correctness"]
        after = scheme.score(layout.render(grouped), gold_text)["correctness"]
        assert after.value == before.value, scheme.name
    assert LENIENT.score(layout.render(grouped), gold_text)["correctness"].value == 2.0


@settings(max_examples=200)
@given(layout=layouts(correct=True), answer=formatted_answers())
def test_lenient_reads_formatted_answers_in_every_correct_layout(
    layout: Layout, answer: FormattedAnswer
) -> None:
    completion = layout.render(answer.text)
    assert LENIENT.score(completion, format(answer.value, "f"))["correctness"].value == 2.0


# --- section 5: linear time ---------------------------------------------------------------

MB = 1_000_000


def _mb(unit: str, head: str = "", tail: str = "") -> str:
    return head + unit * ((MB - len(head) - len(tail)) // len(unit)) + tail


ADVERSARIAL = {
    "repeated_middle": _mb("\n</think>\n<answer>\n"),
    "head_then_repeated_middle": _mb("\n</think>\n<answer>\n", head="<think>\n"),
    "head_middles_no_tail": _mb("x\n</think>\n<answer>", head="<think>\n", tail="\n</answer>"),
    "head_middles_tail": _mb("\n</think>\n<answer>\n", head="<think>\n", tail="\n</answer>\n"),
    "answer_without_close": _mb("<answer>"),
    "answer_newline_without_close": _mb("<answer>\n", tail="5"),
    "close_without_open": _mb("</answer>"),
    "many_pairs": _mb("<answer>1</answer>"),
    "think_opens_then_closes": "<think>" * (MB // 16) + "</think>" * (MB // 16),
    "digit_run_with_commas": _mb("1,", head="<answer>\n"),
    "long_digit_run": _mb("1234567890"),
    "digit_run_commas_and_dots": _mb("1,1.1-"),
    "dotted": _mb("1."),
    "minus_signs": _mb("-", tail="5"),
    "unicode_minus_signs": _mb("\u2212", tail="5"),
    "letter_minus": _mb("a-"),
    "dot_minus": _mb(".-"),
    "full_width_digits": _mb("１２，"),
    "boxed_unclosed": _mb("\\boxed{"),
    "boxed_unclosed_one_closed": _mb("\\boxed{", head="\\boxed{5}"),
    "boxed_nested": "\\boxed{" * (MB // 14) + "}" * (MB // 14),
    "open_braces": _mb("{", head="\\boxed{"),
    "hashes": _mb("####"),
    "hashes_and_digits": _mb("#### 1\n"),
    "tag_prefixes": _mb("<answer</answer<think"),
    "newlines": _mb("\n"),
}


@pytest.mark.parametrize("completion", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
@pytest.mark.parametrize("answer", ["#### 5", _mb("1,")], ids=["short_gold", "long_gold"])
def test_a_megabyte_is_scored_in_well_under_a_second(completion: str, answer: str) -> None:
    for scheme in SCHEMES:
        for reward in scheme.rewards:
            # best of two runs: a guard against quadratic code, not a benchmark
            elapsed = min(_timed(reward.fn, completion, answer) for _ in range(2))
            assert elapsed < 1.0, f"{scheme.name}/{reward.name} took {elapsed:.2f} s"


def _timed(fn: RewardFn, completion: str, answer: str) -> float:
    start = time.perf_counter()
    fn(completion, answer)
    return time.perf_counter() - start


# --- section 5: one row alone equals the row in a batch -----------------------------------

BATCH = 100_000


@settings(max_examples=1, deadline=None, suppress_health_check=list(HealthCheck))
@given(generated=st.lists(pairs, min_size=100, max_size=100))
def test_one_row_alone_equals_the_row_in_a_batch(generated: list[tuple[str, str]]) -> None:
    # 100 generated rows, repeated to 100,000, scored in order and shuffled
    rows = generated
    batch = [rows[i % len(rows)] for i in range(BATCH)]
    order = list(range(BATCH))
    random.Random(len(rows)).shuffle(order)
    for scheme in SCHEMES:
        alone = [scheme.score(c, a) for c, a in rows]
        in_batch = [scheme.score(c, a) for c, a in batch]
        assert all(in_batch[i] == alone[i % len(rows)] for i in range(BATCH)), scheme.name
        shuffled = [scheme.score(*batch[i]) for i in order]
        assert all(shuffled[j] == alone[i % len(rows)] for j, i in enumerate(order))
        assert [scheme.score(c, a) for c, a in rows] == alone  # and again, after the batch


@settings(max_examples=100, deadline=None)
@given(generated=st.lists(pairs, min_size=2, max_size=20), seed=st.integers(0, 2**32 - 1))
def test_rewards_do_not_depend_on_the_calls_before(
    generated: list[tuple[str, str]], seed: int
) -> None:
    # every reward of every row, called in a shuffled order: rows and rewards interleaved,
    # as no scorer calls them, still give the spec's values and the reasons of a fresh call
    calls = [
        (i, name, variant)
        for i in range(len(generated))
        for name, definition in REWARDS.items()
        for variant in definition.variants
    ]
    random.Random(seed).shuffle(calls)
    for i, name, variant in calls:
        c, answer = generated[i]
        fn = REWARDS[name].variants[variant]
        result = fn(c, answer)
        assert result.value == ref_values(c, answer, variant)[name], (c, answer, name, variant)
        fresh = fn((c + "x")[:-1], (answer + "x")[:-1])  # equal text, another object
        assert result == fresh


# --- section 6: pass@k --------------------------------------------------------------------


def brute_force_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """The share of k-subsets of n samples (the first c correct) holding a correct one."""
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(i < c for i in s) for s in subsets), len(subsets))


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_equals_brute_force(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            expected = float(brute_force_pass_at_k(n, c, k))
            assert pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@given(n=st.integers(1, 400), data=st.data())
def test_pass_at_k_is_monotone_in_k_and_c(n: int, data: st.DataObject) -> None:
    c = data.draw(st.integers(0, n), label="c")
    k = data.draw(st.integers(1, n), label="k")
    value = pass_at_k(n, c, k)
    assert 0.0 <= value <= 1.0
    if k < n:
        assert pass_at_k(n, c, k + 1) >= value
    if c < n:
        assert pass_at_k(n, c + 1, k) >= value
    assert (value == 0.0) == (c == 0)
    assert value == pytest.approx(float(1 - Fraction(math.comb(n - c, k), math.comb(n, k))))


@given(n=st.integers(0, 50), extra=st.integers(1, 5), data=st.data())
def test_pass_at_k_with_k_above_n_raises(n: int, extra: int, data: st.DataObject) -> None:
    c = data.draw(st.integers(0, n), label="c")
    with pytest.raises(ValueError, match="samples per problem"):
        pass_at_k(n, c, n + extra)


@given(st.lists(st.tuples(st.integers(1, 20), st.integers(0, 20)), min_size=1, max_size=10))
def test_mean_pass_at_k_is_the_mean(pairs: list[tuple[int, int]]) -> None:
    groups = [(n, min(c, n)) for n, c in pairs]
    expected = sum(pass_at_k(n, c, 1) for n, c in groups) / len(groups)
    assert mean_pass_at_k(groups, 1) == pytest.approx(expected)
    # pass@1 is the mean correctness of the samples
    assert pass_at_k(groups[0][0], groups[0][1], 1) == pytest.approx(groups[0][1] / groups[0][0])
