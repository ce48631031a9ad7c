"""Named hypothesis strategies for rewardkit's tests.

Numbers as text (`integers_as_text`, `decimals_as_text`), numbers as models write them
(`formatted_answers`), completions in the shapes a policy produces during GRPO
(`layouts`, `completions`), and `tag_soup` for checking the linear-time scanners against
the spec's regular expressions. Every strategy here draws only what it documents; the
tests state the properties.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from hypothesis import strategies as st

__all__ = [
    "PREFIXES",
    "SUFFIXES",
    "TAG_FRAGMENTS",
    "FormattedAnswer",
    "Layout",
    "completions",
    "decimals_as_text",
    "formatted_answers",
    "full_width",
    "golds",
    "integers_as_text",
    "layouts",
    "numbers",
    "rows",
    "tag_soup",
    "think_texts",
    "with_commas",
    "with_thousands",
]

DIGITS = "0123456789"
_FULL_WIDTH = str.maketrans(DIGITS + ",.-", "０１２３４５６７８９，．－")
MINUS = "\u2212"  # the Unicode minus sign, read as `-` by parse_number


def full_width(text: str) -> str:
    """`text` with ASCII digits, commas, dots and hyphens in their full-width forms.

    NFKC maps each back to ASCII, so the value `parse_number` reads does not change.
    """
    return text.translate(_FULL_WIDTH)


def with_thousands(digits: str) -> str:
    """Commas between groups of three, from the right: ``1234567`` -> ``1,234,567``.

    Only the integer part of a decimal is grouped; a sign is kept in front.
    """
    sign = digits[:1] if digits[:1] in ("-", "+", MINUS) else ""
    body = digits[len(sign) :]
    whole, dot, fraction = body.partition(".")
    groups = [whole[max(0, end - 3) : end] for end in range(len(whole), 0, -3)]
    return sign + ",".join(reversed(groups)) + dot + fraction


def with_commas(digits: str, positions: frozenset[int]) -> str:
    """A comma before each digit whose index is in `positions` (never before the first).

    ``with_commas("1234", {2})`` is ``12,34``: the spec reads any comma between two digits
    as a group separator, not only thousands.
    """
    return "".join(("," + ch) if i in positions and i > 0 else ch for i, ch in enumerate(digits))


def _commas(digits: str, draw: st.DrawFn) -> str:
    """No commas, thousands grouping, or commas at drawn places between the digits."""
    style = draw(st.sampled_from(["none", "thousands", "anywhere"]))
    if style == "thousands":
        return with_thousands(digits)
    if style == "anywhere" and len(digits) > 1:
        places = draw(st.frozensets(st.integers(1, len(digits) - 1), max_size=len(digits)))
        return with_commas(digits, places)
    return digits


_digit_runs = st.one_of(
    st.integers(0, 10**18).map(str),
    st.text(DIGITS, min_size=1, max_size=30),  # leading zeros, long runs
)


@st.composite
def integers_as_text(draw: st.DrawFn) -> str:
    """An integer as text: optional ``-``/``+``, digits, maybe commas between groups.

    ``Decimal(text.replace(",", ""))`` is its value: ``-1,234``, ``+007``, ``12,34``.
    """
    sign = draw(st.sampled_from(["", "", "-", "+"]))
    return sign + _commas(draw(_digit_runs), draw)


@st.composite
def decimals_as_text(draw: st.DrawFn) -> str:
    """A decimal as text: sign, integer part (maybe with commas, maybe absent: ``.5``), fraction.

    ``Decimal(text.replace(",", ""))`` is its value: ``-1,234.50``, ``.5``, ``+0.125``.
    """
    sign = draw(st.sampled_from(["", "", "-", "+"]))
    whole = draw(st.one_of(st.just(""), st.just("0"), _digit_runs))
    fraction = draw(st.text(DIGITS, min_size=1, max_size=12))
    return sign + _commas(whole, draw) + "." + fraction


def numbers() -> st.SearchStrategy[Decimal]:
    """Exact decimal values of the size GSM8K answers have: integers and short fractions."""
    integers = st.integers(-(10**12), 10**12).map(Decimal)
    fractions = st.integers(1, 6).flatmap(
        lambda places: st.decimals(
            min_value=-(10**9),
            max_value=10**9,
            places=places,
            allow_nan=False,
            allow_infinity=False,
        )
    )
    return st.one_of(integers, fractions)


class FormattedAnswer(NamedTuple):
    """A number as a model writes it, and the value the spec's `parse_number` reads in it."""

    text: str
    value: Decimal


# Words before the number. Each ends in a character that lets a `-` after it be a sign, and
# digits in them come before the number, so the number written last is still the last one.
PREFIXES = (
    "",
    "The answer is ",
    "Answer: ",
    "= ",
    "x = ",
    "So she has ",
    "After 3 weeks, the total is ",
    "Therefore, 12 * 3 + 4 = ",
    "**",
    "(",
    "Total:",
)
# Words after the number: no digits, and never a `.` followed by a digit.
SUFFIXES = (
    "",
    "%",
    " %",
    " dollars",
    " apples.",
    " km/h",
    " per cent",
    ".",
    "!",
    " in total.",
    ")",
    "**",
    " (rounded)",
    "\n",
)
_CURRENCIES = ("$", "€", "£", "USD ", "Rs. ")


@st.composite
def formatted_answers(draw: st.DrawFn) -> FormattedAnswer:
    """A number with the decoration models put around it, and its value.

    `$`, `%`, units, words around, thousands commas, ``.5`` for 0.5, trailing zeros,
    full-width digits, the Unicode minus (U+2212) or a full-width hyphen for negatives.
    """
    value = draw(numbers())
    magnitude = abs(value)
    body = format(magnitude, ",f" if draw(st.booleans()) else "f")
    if body.startswith("0.") and draw(st.booleans()):
        body = body[1:]  # `.5`
    if "." not in body and draw(st.booleans()):
        body += draw(st.sampled_from([".0", ".00"]))
    if draw(st.booleans()):
        body = full_width(body)
    if value < 0:
        body = draw(st.sampled_from(["-", MINUS, "－"])) + body
    elif draw(st.booleans()):
        body = draw(st.sampled_from(_CURRENCIES)) + body
    text = draw(st.sampled_from(PREFIXES)) + body + draw(st.sampled_from(SUFFIXES))
    return FormattedAnswer(text, value)


_THINK_ALPHABET = "abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789 \n.,+-*/=()$%?:'"
_THINK_LINES = (
    "24 + 6 = 30",
    "She sells 16 - 3 - 4 = 9 eggs.",
    "9 * $2 = $18",
    "Let me think step by step.",
    "Wait, that's not right.",
    "1,000 / 4 = 250",
    "The ratio is 0.5 or 50%.",
    "−3 + 5 = 2",
    "",
)


def think_texts() -> st.SearchStrategy[str]:
    """Reasoning text without tags, braces or ``####``: arithmetic, prose, blank lines."""
    random_text = st.text(st.sampled_from(_THINK_ALPHABET), max_size=60)
    lines = st.lists(st.sampled_from(_THINK_LINES) | random_text, min_size=1, max_size=4)
    return lines.map("\n".join)


@dataclass(frozen=True)
class Layout:
    """A completion with a hole for the answer: `render(answer)` fills it in.

    `strict_correct`: when the hole holds exactly the gold text, strict correctness is 2.0;
    `lenient_correct`: likewise when it holds any text whose last number is the gold's
    value (and no text after the hole adds a number). `render` is pure, so one layout can be
    rendered twice (an answer with and without thousands commas).
    """

    name: str
    template: Callable[[str], str]
    strict_correct: bool
    lenient_correct: bool

    def render(self, answer: str) -> str:
        return self.template(answer)


def _separators() -> st.SearchStrategy[str]:
    return st.sampled_from(["\n", "\n", "", " ", "\n\n"])


@st.composite
def layouts(draw: st.DrawFn, correct: bool = False) -> Layout:
    """One of the shapes a completion takes; with ``correct=True``, only the shapes whose
    answer the lenient scheme finds (well formed, answer-only, truncated inside the answer
    tag, ``</answer>`` only, ``\\boxed{}``, ``####``, free text).
    """
    think = draw(think_texts())
    wrong = draw(st.sampled_from(["17", "no idea", "", "3.5", "-2"]))
    trail = draw(st.sampled_from(["", " dollars", " in 4 weeks.", "\nDone."]))
    shapes: dict[str, tuple[Callable[[str], str], bool, bool]] = {
        "well_formed": (
            lambda a: f"<think>\n{think}\n</think>\n<answer>\n{a}\n</answer>\n",
            True,
            True,
        ),
        "no_newlines": (lambda a: f"<think>{think}</think><answer>{a}</answer>", True, True),
        "answer_only": (lambda a: f"<answer>\n{a}\n</answer>\n", True, True),
        "no_think_open": (
            lambda a: f"{think}\n</think>\n<answer>\n{a}\n</answer>\n",
            True,
            True,
        ),
        "answer_first": (
            lambda a: f"<answer>\n{a}\n</answer>\n<think>\n{think}\n</think>\n",
            True,
            True,
        ),
        "doubled_answer": (
            lambda a: (
                f"<think>\n{think}\n</think>\n<answer>\n{wrong}\n</answer>\n"
                f"<answer>\n{a}\n</answer>\n"
            ),
            True,
            True,
        ),
        "doubled_think": (
            lambda a: (
                f"<think>\n{think}\n</think>\n<think>\n{think}\n</think>\n"
                f"<answer>\n{a}\n</answer>\n"
            ),
            True,
            True,
        ),
        "trailing_text": (
            lambda a: f"<think>\n{think}\n</think>\n<answer>\n{a}\n</answer>\nHope it helps!",
            True,
            True,
        ),
        "truncated_answer": (lambda a: f"<think>\n{think}\n</think>\n<answer>\n{a}", False, True),
        "answer_close_only": (lambda a: f"{think} {a} </answer>\n\n", False, True),
        "boxed": (lambda a: f"{think}\nSo the answer is $\\boxed{{{a}}}${trail}", False, True),
        "hashes": (lambda a: f"{think}\n#### {a}\n{trail.strip()}", False, True),
        "free_text": (lambda a: f"{think}\nThe answer is {a}", False, True),
    }
    if not correct:
        seps = draw(st.lists(_separators(), min_size=6, max_size=6))
        shapes.update(
            {
                # the well-formed layout with each newline dropped, doubled or a space
                "shuffled_newlines": (
                    lambda a: (
                        f"<think>{seps[0]}{think}{seps[1]}</think>{seps[2]}"
                        f"<answer>{seps[3]}{a}{seps[4]}</answer>{seps[5]}"
                    ),
                    False,
                    False,
                ),
                "nested_open": (lambda a: f"<answer>{wrong}<answer>{a}</answer>", False, False),
                "no_tags_wrong_last": (lambda a: f"{think} {a} and 5 more", False, False),
                "wrong_after": (
                    lambda a: f"<answer>\n{a}\n</answer>\n<answer>\n{wrong}\n</answer>\n",
                    False,
                    False,
                ),
                "unclosed_think": (lambda a: f"<think>\n{think}\n{a}", False, False),
                "empty": (lambda a: "", False, False),
            }
        )
    name = draw(st.sampled_from(sorted(shapes)))
    template, strict_ok, lenient_ok = shapes[name]
    return Layout(name, template, strict_ok, lenient_ok)


def _answer_texts() -> st.SearchStrategy[str]:
    return st.one_of(
        formatted_answers().map(lambda f: f.text),
        integers_as_text(),
        decimals_as_text(),
        think_texts(),
        st.text(max_size=20),
    )


@st.composite
def completions(draw: st.DrawFn, answer: str | st.SearchStrategy[str] | None = None) -> str:
    """A completion in one of the `layouts`, holding `answer` (a text or a strategy; any
    answer text when None). Sometimes cut off at a drawn point, as a completion that hit
    the token limit is.
    """
    if answer is None:
        text = draw(_answer_texts())
    elif isinstance(answer, str):
        text = answer
    else:
        text = draw(answer)
    completion = draw(layouts()).render(text)
    if completion and draw(st.integers(0, 4)) == 0:
        completion = completion[: draw(st.integers(0, len(completion)))]
    return completion


def golds() -> st.SearchStrategy[str]:
    """Reference answers as data sets give them: bare, GSM8K's ``#### 72``, with commas,
    decorated, or with no number at all."""
    return st.one_of(
        integers_as_text(),
        decimals_as_text(),
        integers_as_text().map(lambda n: f"She pays 3 * 4 = 12 dollars.\n#### {n}"),
        formatted_answers().map(lambda f: f.text),
        st.sampled_from(["#### 30", "30", " 1,000 ", "#### ", "", "seven", "#### 5\n#### 6"]),
    )


@st.composite
def rows(draw: st.DrawFn) -> tuple[str, str]:
    """A ``(completion, gold answer)`` pair whose answer is often right, nearly right, or
    the same value written differently: where strict and lenient part ways.
    """
    value = draw(numbers())
    plain = format(value, "f")
    gold_text = draw(
        st.sampled_from(
            [plain, f"#### {plain}", f"3 * 4 = 12\n#### {with_thousands(plain)}", f" {plain}\n"]
        )
    )
    answer = draw(
        st.one_of(
            st.sampled_from(
                [plain, with_thousands(plain), f" {plain} ", f"{plain} dollars", f"${plain}"]
            ),
            st.sampled_from([plain + "0", plain + ".0", full_width(plain), "-" + plain]),
            formatted_answers().map(lambda f: f.text),
            _answer_texts(),
        )
    )
    return draw(completions(answer=answer)), gold_text


TAG_FRAGMENTS = (
    "<think>",
    "</think>",
    "<answer>",
    "</answer>",
    "\n",
    "\\boxed{",
    "{",
    "}",
    "####",
    "#",
    ",",
    " ",
    ".",
    "-",
    MINUS,
    "<",
    ">",
    "/",
    "answer",
    "think",
    "\\boxed",
    "$",
    "%",
    "１",
    "，",
    "²",
    "٣",
    "_",
)


def tag_soup() -> st.SearchStrategy[str]:
    """Random concatenations of tag fragments, digits, commas, spaces and letters.

    Tags half written (``<answer``), doubled, out of order and unclosed, ``\\boxed{`` with
    unbalanced braces: what an equivalence check against a regular expression needs.
    """
    pieces = st.one_of(
        st.sampled_from(TAG_FRAGMENTS),
        st.text(DIGITS, min_size=1, max_size=4),
        st.text("abcxyz", min_size=1, max_size=3),
    )
    return st.lists(pieces, max_size=40).map("".join)
