"""Tables of cases for `rewardkit.numbers` (spec section 3), one group per rule."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rewardkit.numbers import is_ascii_digits, numbers_equal, parse_number, strict_norm

STRICT_NORM = [
    # every comma between two digits goes, then str.strip()
    (" 1,234,567 ", "1234567"),
    ("360,000", "360000"),
    ("12,34", "1234"),
    ("1,2,3", "123"),
    ("1,234.50", "1234.50"),
    # commas not between two digits stay
    ("3, 4", "3, 4"),
    ("1,,2", "1,,2"),
    (",5", ",5"),
    ("5,", "5,"),
    ("a,b", "a,b"),
    ("$1,000", "$1000"),
    # `\d` is any Unicode decimal digit, as the spec's regular expression reads it
    ("١,٢٣٤", "١٢٣٤"),
    ("１,０００", "１０００"),
    # nothing else changes: no case folding, no unit removal, inner spaces kept
    (" 18 dollars ", "18 dollars"),
    ("1 000", "1 000"),
    ("18.0", "18.0"),
    ("", ""),
    ("\n\t", ""),
]


@pytest.mark.parametrize(("text", "expected"), STRICT_NORM)
def test_strict_norm(text: str, expected: str) -> None:
    assert strict_norm(text) == expected


PARSE_NUMBER = [
    # integers and decimals
    ("72", "72"),
    ("0", "0"),
    ("007", "7"),
    ("1234.5", "1234.5"),
    ("0.125", "0.125"),
    # `.5` reads as 0.5; `5.` is 5 followed by a full stop
    (".5", "0.5"),
    ("5.", "5"),
    ("-.5", "-0.5"),
    # commas between digit groups are removed, wherever they stand
    ("1,000", "1000"),
    ("12,34", "1234"),
    ("1,234,567.89", "1234567.89"),
    ("1,234,", "1234"),
    # the LAST number in the text
    ("The total is $1,234.50.", "1234.50"),
    ("3 + 4 = 7", "7"),
    ("18 dollars in 4 weeks", "4"),
    ("1.2.3", "0.3"),
    ("1,,2", "2"),
    ("1, 2", "2"),
    # currency, %, units and words are ignored
    ("$18", "18"),
    ("18%", "18"),
    ("€ 3.50", "3.50"),
    ("12 km/h", "12"),
    ("x = 5", "5"),
    # signs: `-` is a sign unless a letter, digit or `.` stands before it
    ("-5", "-5"),
    ("x = -5", "-5"),
    ("(-5)", "-5"),
    ("$-5", "-5"),
    ("--5", "-5"),
    ("_-5", "-5"),
    ("x-5", "5"),
    ("5-3", "3"),
    ("1.-5", "5"),
    ("é-5", "5"),
    ("-$5", "5"),
    ("+5", "5"),
    # the Unicode minus (U+2212) and full-width forms, via NFKC
    ("−5", "-5"),
    ("x = −5", "-5"),
    ("－5", "-5"),
    ("５", "5"),
    ("１，２３４．５", "1234.5"),
    ("−１２", "-12"),
    # NFKC also turns superscripts into digits
    ("x²", "2"),
    ("2⁻¹", "1"),
    ("½", "2"),
    # -0 is a number; its value equals 0
    ("-0", "0"),
    ("-0.0", "0"),
    # digits outside ASCII (after NFKC) are not digits of a number
    ("٣", None),
    ("३", None),
    # no number at all
    ("", None),
    ("seven", None),
    ("-", None),
    (".", None),
    ("-.", None),
    (",", None),
]


@pytest.mark.parametrize(("text", "expected"), PARSE_NUMBER)
def test_parse_number(text: str, expected: str | None) -> None:
    assert parse_number(text) == (None if expected is None else Decimal(expected))


def test_parse_number_keeps_the_written_precision() -> None:
    # the value is exact: 0.1 + 0.2 reads as it is written, not as a float
    assert parse_number("0.3") == Decimal("0.3")
    assert parse_number("12345678901234567890.123456789") == Decimal(
        "12345678901234567890.123456789"
    )
    assert str(parse_number("1,234.50")) == "1234.50"


NUMBERS_EQUAL = [
    # exact decimal equality
    ("5", "5.0", True),
    ("5", "5.00", True),
    ("-0", "0", True),
    ("0.5", ".5", True),
    ("1,000", "1000", True),
    ("0.1", "0.10000000000000001", False),
    ("5", "-5", False),
    ("18", "18.01", False),
]


@pytest.mark.parametrize(("left", "right", "expected"), NUMBERS_EQUAL)
def test_numbers_equal(left: str, right: str, expected: bool) -> None:
    assert numbers_equal(parse_number(left), parse_number(right)) is expected


@pytest.mark.parametrize(
    ("left", "right"),
    [
        # None is never equal, not even to None
        (None, None),
        (None, Decimal(0)),
        (Decimal(0), None),
    ],
)
def test_numbers_equal_with_none(left: Decimal | None, right: Decimal | None) -> None:
    assert numbers_equal(left, right) is False


IS_ASCII_DIGITS = [
    # one or more of 0-9, nothing else
    ("0", True),
    ("360000", True),
    ("007", True),
    # signs, decimals, spaces, commas, units
    ("-5", False),
    ("+5", False),
    ("5.0", False),
    (" 5", False),
    ("1,000", False),
    ("5%", False),
    # non-ASCII digits
    ("²", False),
    ("５", False),
    ("٣", False),
    # empty
    ("", False),
    # a trailing newline is not a digit ($ in a regular expression would allow it)
    ("5\n", False),
]


@pytest.mark.parametrize(("text", "expected"), IS_ASCII_DIGITS)
def test_is_ascii_digits(text: str, expected: bool) -> None:
    assert is_ascii_digits(text) is expected
