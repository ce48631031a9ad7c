"""Answer text to numbers and normal forms (spec section 3). Pure, linear-time functions.

Two verbs, kept apart on purpose: `strict_norm` is the strict scheme's string normal form
(only digit-group commas go), `parse_number` reads the value of the last number in a text
as an exact `Decimal` for the lenient scheme.
"""

from __future__ import annotations

import math
import numbers
import re
import unicodedata
from decimal import Decimal
from typing import Any

__all__ = [
    "decimal_text",
    "is_ascii_digits",
    "number_text",
    "numbers_equal",
    "parse_number",
    "strict_norm",
]

# A comma with a digit on both sides. Removing all of them in one pass is the fixed point of
# the spec's repeated `(\d),(\d)` -> `\1\2`: a removable comma never has a comma neighbour,
# so removing one never makes another one removable or unremovable. `\d` is Python's (any
# Unicode decimal digit), exactly as the spec's pattern reads.
_DIGIT_COMMA = re.compile(r"(?<=\d),(?=\d)")

_NON_DIGITS = re.compile(r"[^0-9]*")
_NUMBER_CHARS = re.compile(r"[0-9.,]*")


def strict_norm(text: str) -> str:
    """The strict scheme's normal form: commas between two digits removed, then stripped.

    >>> strict_norm(" 1,234,567 ")
    '1234567'
    >>> strict_norm("1,2,3")
    '123'
    >>> strict_norm("3, 4")
    '3, 4'
    """
    text = text.strip()  # stripping first changes nothing: whitespace is not a digit
    if "," in text:
        if (
            not text.strip("0123456789,")
            and ",," not in text
            and text[0] != ","
            and text[-1] != ","
        ):
            # Only ASCII digits and single inner commas (`360,000`, or a megabyte of
            # `1,234,567,...`): one C-level replace does what a quarter-million matches would.
            return text.replace(",", "")
        text = _DIGIT_COMMA.sub("", text)
    return text


def parse_number(text: str) -> Decimal | None:
    """The value of the last number in `text` as an exact decimal, or None.

    Full-width digits are read after NFKC and U+2212 (−) as ``-``. Currency signs, ``%``,
    units and words around the number are ignored.

    >>> parse_number("The total is $1,234.50.")
    Decimal('1234.50')
    >>> parse_number("−５")
    Decimal('-5')
    >>> parse_number("x-3") # a sign after a letter is a hyphen
    Decimal('3')
    >>> parse_number(".5 of it") == parse_number("0.50")
    True
    >>> parse_number("no digits") is None
    True
    """
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text).replace("\u2212", "-")
    elif text.isdigit():  # the common answer "18": ASCII digits alone are one number
        return Decimal(text)
    # Find the last ASCII digit from the end, then the run of digits, commas and dots around
    # it: tokenising just that run left to right gives the same last number as tokenising
    # the whole text, without a Python loop over every match. The text is reversed a window
    # at a time (reversing is a copy), growing the window while it holds no digit.
    end, window = len(text), _WINDOW
    while True:
        start = max(0, end - window)
        backwards = text[start:end][::-1]
        trailing = _NON_DIGITS.match(backwards).end()  # type: ignore[union-attr]
        if trailing < len(backwards):
            break
        if start == 0:
            return None
        end, window = start, window * 2
    last_digit = end - trailing
    run_end = _NUMBER_CHARS.match(backwards, trailing).end()  # type: ignore[union-attr]
    if run_end == len(backwards) and start > 0:  # the run may go on left of the window
        backwards = text[:last_digit][::-1]
        run_start = last_digit - _NUMBER_CHARS.match(backwards).end()  # type: ignore[union-attr]
    else:
        run_start = end - run_end
    return Decimal(_last_token(text, run_start, last_digit).replace(",", ""))


_WINDOW = 128


def _last_token(text: str, start: int, end: int) -> str:
    """The last number of the run ``text[start:end]`` of digits, commas and dots.

    `end` follows the run's last digit. This gives what tokenising the run left to right
    with the number pattern gives, with a few C-level scans from the end instead: a
    megabyte of ``1.1.1.1`` or ``1,1,1,1`` holds half a million numbers or one number of a
    million characters, and the regular expression is slow on both. The facts used:

    - no number holds two adjacent separators (``..``, ``.,``, ``,.``, ``,,``), and a comma
      never starts one, so tokenising restarts cleanly after the last such pair;
    - after that, a comma after a fraction ends the number (``1.5,3`` is 1.5 and 3) and
      otherwise joins digit groups, and a dot after a fraction starts a new ``.5`` number.
    The property tests compare this with the spec's left-to-right definition.
    """
    if "." not in text[start:end] and "," not in text[start:end]:  # digits alone: one number
        return _signed(text, start, text[start:end])
    for pair in ("..", ".,", ",.", ",,"):
        found = text.rfind(pair, start, end)
        if found != -1:
            start = max(start, found + 1)
    last_dot = text.rfind(".", start, end)
    if last_dot != -1:
        comma = text.find(",", last_dot, end)
        if comma != -1:  # "5.25,3,4": the fraction ended at the comma; "3,4" is last
            return text[comma + 1 : end]
        previous_dot = text.rfind(".", start, last_dot)
        if previous_dot != -1:
            comma = text.find(",", previous_dot, last_dot)
            # "1.23,4,5.6": "4,5.6" is last; "1.2.3": ".3" is last
            return text[comma + 1 : end] if comma != -1 else text[last_dot:end]
    token = text[start:end].lstrip(",")
    return _signed(text, start, token) if end - len(token) == start else token


def _signed(text: str, start: int, token: str) -> str:
    """`token`, which starts at `start`, with the sign before it when the spec reads one."""
    if start == 0 or text[start - 1] != "-":
        return token
    # The spec's sign rule: not after a letter, a digit or a dot (`x-3` is 3). A letter is
    # any Unicode letter; a digit is ASCII 0-9, as the spec defines digits after NFKC
    # (`٣-5` is -5: ٣ is neither).
    if start == 1 or not (text[start - 2].isalpha() or text[start - 2] in "0123456789."):
        return "-" + token
    return token


def decimal_text(number: Any) -> str:
    """A finite float (Python's or numpy's) as a gold's text: its shortest digits in its
    own precision, never with an exponent, whose last number `parse_number` reads as it.

    >>> decimal_text(5e-05), decimal_text(1e21), decimal_text(18.0)
    ('0.00005', '1000000000000000000000.0', '18.0')
    """
    import numpy as np  # only here: the rewards themselves need no numpy

    return str(np.format_float_positional(number, unique=True, trim="0"))


def number_text(value: Any) -> str:
    """A gold answer given as a number, as its text: an integer in digits, a float in plain
    decimal notation (`decimal_text`). Any real number counts, numpy's too.

    `TypeError` for what is not a real number (a bool is not); `ValueError` for a number
    with no text to score against, its message what the value is (after "the answer is").

    >>> number_text(18), number_text(18.0), number_text(5e-05)
    ('18', '18.0', '0.00005')
    >>> number_text(float("nan"))
    Traceback (most recent call last):
    ...
    ValueError: nan, not a number
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy's bool is not
        raise TypeError(f"{type(value).__name__}, not a number")
    if isinstance(value, numbers.Integral):
        try:
            return str(int(value))
        except ValueError:  # Python's limit on the digits of an int written out
            raise ValueError("an integer too long to write out (over 4,300 digits)") from None
    number = value if type(value).__module__ == "numpy" else float(value)
    if not math.isfinite(number):
        raise ValueError(f"{number}, not a number")
    # In its own precision: a float32 0.1 is "0.1", not float64's 0.10000000149011612.
    return decimal_text(number)


def numbers_equal(left: Decimal | None, right: Decimal | None) -> bool:
    """Exact decimal equality, false when either side is None.

    >>> numbers_equal(Decimal("5"), Decimal("5.00"))
    True
    >>> numbers_equal(Decimal("-0"), Decimal("0"))
    True
    >>> numbers_equal(None, None)
    False
    """
    return left is not None and right is not None and left == right


def is_ascii_digits(text: str) -> bool:
    """Whether `text` is one or more ASCII digits and nothing else (``²`` and ``-5`` are not).

    >>> is_ascii_digits("360000"), is_ascii_digits("-5"), is_ascii_digits("²"), is_ascii_digits("")
    (True, False, False, False)
    """
    return text.isascii() and text.isdigit()  # in ASCII only 0-9 are digits
