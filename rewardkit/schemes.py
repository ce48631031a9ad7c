"""Schemes as data: which rewards, which variant of each, and their weights.

`STRICT` and `LENIENT` are two instances of one frozen dataclass, not flags inside the
rewards. A user's scheme is a YAML or TOML file of the same shape, and may name their own
reward functions as ``module:function`` (or ``path/to/file.py:function``):

.. code-block:: yaml

    name: my_scheme
    rewards:
      - {reward: correctness, variant: lenient, weight: 2.0}
      - {reward: format, variant: strict}
      - {name: brevity, function: my_rewards:brevity, max: 1.0, weight: 0.5}

A custom reward takes ``(completion, answer)`` and returns a float, a ``(value, reason)``
pair or a `Reward`.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import math
import numbers
import os
import sys
import traceback
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeAlias, cast

from rewardkit.rewards import REWARDS, Reward, get_reward, is_builtin, texts

__all__ = [
    "LENIENT",
    "SCHEMES",
    "STRICT",
    "RewardError",
    "RewardResult",
    "Scheme",
    "SchemeError",
    "SchemeLike",
    "SchemeReward",
    "SchemeRewardFn",
    "call_reward",
    "escape_surrogates",
    "get_scheme",
    "load_scheme_file",
    "resolve_function",
    "schemes_of",
    "source_files",
    "weighted_total",
]


class SchemeError(ValueError):
    """A scheme file or a scheme name that cannot be used; the message says how to fix it."""


class RewardError(TypeError, ValueError):
    """A custom reward raised, or returned what is not a reward (the message names it).

    Both a TypeError (a wrong type returned) and a ValueError (a value out of range), as
    these checks raised before there was one class for them.
    """


RewardResult: TypeAlias = "Reward | float | tuple[float, str]"
"""What a reward function may return: a `Reward`, a number, or a ``(number, reason)`` pair
(`call_reward` checks a custom reward's result and makes it a `Reward`)."""

SchemeRewardFn: TypeAlias = "Callable[[str, str], RewardResult]"
"""A reward function of a scheme: ``fn(completion, answer)``. The built-in ones (and any
`rewardkit.rewards.RewardFn`) return a `Reward`."""


def _name_problem(name: str, *, file: bool) -> str:
    """What is wrong with a scheme's or reward's `name`, with the fix; "" when nothing is.

    A name is a column of the scores and a key of golden records, and a scheme's name is
    also a file or folder name (``<expected>/<scheme>.jsonl``, a run's folder): a control
    character (NUL ends a file name), space at either end (a file `` pad .jsonl``) and,
    for a scheme, a path separator are refused.

    >>> _name_problem("a\\0b", file=True)
    "holds the control character '\\\\x00'; use printable characters only"
    >>> _name_problem(" pad ", file=False)
    'starts or ends with whitespace; remove it'
    >>> _name_problem("runs/a", file=True)  # doctest: +ELLIPSIS
    "holds '/': it names the scheme's files (golden files, run folders); use a plain name..."
    """
    bad = sorted({c for c in name if unicodedata.category(c) in {"Cc", "Cs", "Zl", "Zp"}})
    if bad:
        shown = ", ".join(ascii(c) for c in bad)
        what = "character" if len(bad) == 1 else "characters"
        return f"holds the control {what} {shown}; use printable characters only"
    if name != name.strip():
        return "starts or ends with whitespace; remove it"
    if file and (name in {".", ".."} or "/" in name or "\\" in name):
        which = "/" if "/" in name else "\\" if "\\" in name else name
        return (
            f"holds {which!r}: it names the scheme's files (golden files, run folders); use a"
            " plain name such as my_scheme"
        )
    return ""


@dataclass(frozen=True)
class SchemeReward:
    """One reward of a scheme: a name, the function to call, its weight and maximum.

    `max` is None for a custom reward that does not declare one; then range checks and the
    "all groups at the maximum" statistic skip it.

    `origin` is set for a function loaded by location: one a scheme file names by path
    (``file.py:function``), or of a module found beside the scheme file or in the working
    folder. It is ``"<file or package folder>:<submodule>:<function>"`` (the submodule
    empty for the file itself). Python pickles a function by its module's name, and such a
    module has none that another process could import, so the reward pickles as its origin
    instead and a spawned process (a scoring worker, TRL's async rollout process) loads the
    file again.
    """

    name: str
    fn: SchemeRewardFn
    weight: float = 1.0
    max: float | None = None
    variant: str = "custom"
    builtin: bool = False  # a built-in reward's results are trusted: no checks per call
    origin: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        """The checks a scheme file gets, for a reward built in Python too.

        >>> SchemeReward("brevity", len, max=float("inf"))
        Traceback (most recent call last):
        ...
        rewardkit.schemes.SchemeError: reward 'brevity': max inf is not a finite number, 0 \
or more (or None when unknown)
        """
        if not isinstance(self.name, str) or not self.name.strip():
            raise SchemeError(f"reward name {self.name!r} is not a name; use a non-empty str")
        if problem := _name_problem(self.name, file=False):
            raise SchemeError(f"reward name {self.name!r} {problem}")
        if not callable(self.fn):
            raise SchemeError(f"reward {self.name!r}: fn {self.fn!r} is not callable")
        if not _finite(self.weight):
            raise SchemeError(
                f"reward {self.name!r}: weight {self.weight!r} is not a finite number"
            )
        if self.max is not None and not (_finite(self.max) and self.max >= 0):
            raise SchemeError(
                f"reward {self.name!r}: max {self.max!r} is not a finite number, 0 or more (or"
                " None when unknown)"
            )
        object.__setattr__(self, "weight", float(self.weight))  # a numpy scalar or Fraction
        if self.max is not None:  # would not go into --json, or into a parquet column
            object.__setattr__(self, "max", float(self.max))

    def __reduce_ex__(self, protocol: Any) -> Any:
        if self.origin is None:
            return super().__reduce_ex__(protocol)
        return _file_reward, (self.name, self.origin, self.weight, self.max, self.variant)


def _finite(value: Any) -> bool:
    """A real number (not a bool) that is finite as a float."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int beyond the float range
        return False


def _file_reward(
    name: str, origin: str, weight: float, maximum: float | None, variant: str
) -> SchemeReward:
    """A pickled reward of a user's file, back: from the module already loaded here (a
    forked process has it), else loaded again from its file (a spawned one)."""
    where, inner, attr = origin.rsplit(":", 2)
    location = Path(where)
    module_id = _module_id(location)
    module = sys.modules.get(f"{module_id}.{inner}" if inner else module_id)
    fn = getattr(module, attr, None) if module is not None else None
    if fn is None:
        spec = f"{location}:{inner}:{attr}" if inner else f"{location}:{attr}"
        fn = _attribute(spec, _load_located(spec, location, inner), inner or where, attr)
    return SchemeReward(name, fn, weight, maximum, variant, origin=origin)


@dataclass(frozen=True)
class Scheme:
    """A named, ordered set of weighted rewards. ``total`` is the weighted sum.

    >>> scores = STRICT.score("<answer>123</answer>", "123")
    >>> scores["format"]
    Reward(value=0.0, reason='no_think_tag')
    >>> STRICT.total(STRICT.score("<answer>123</answer>", "123"))
    2.5
    """

    name: str
    rewards: tuple[SchemeReward, ...]
    source: str = "built-in"
    _names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise SchemeError(f"scheme name {self.name!r} is not a name; use a non-empty str")
        if problem := _name_problem(self.name, file=True):
            raise SchemeError(
                f"scheme name {self.name!r} {problem}"
                + ("" if self.source == "built-in" else " (set `name:` in the scheme file)")
            )
        names = tuple(r.name for r in self.rewards)
        if not names:
            raise SchemeError(f"scheme {self.name!r} has no rewards; list at least one")
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SchemeError(
                f"scheme {self.name!r} names the reward(s) {', '.join(duplicates)} twice;"
                " give each entry a distinct `name`"
            )
        clashes = [n for n in names if n in RESERVED_NAMES or n.endswith("_reason")]
        if clashes:
            raise SchemeError(
                f"scheme {self.name!r}: reward name(s) {', '.join(clashes)} would overwrite a"
                f" column of the scores ({', '.join(sorted(RESERVED_NAMES))}, *_reason);"
                " rename them with `name`"
            )
        for r in self.rewards:
            if r.max is not None and not math.isfinite(r.weight * r.max):
                raise SchemeError(
                    f"scheme {self.name!r}: reward {r.name!r} weighs {r.weight:g} and may give"
                    f" {r.max:g}, and {r.weight:g} * {r.max:g} is beyond the float range"
                    f" (±{sys.float_info.max:.1e}); lower the weight"
                )
        if not math.isfinite(sum(abs(r.weight * r.max) for r in self.rewards if r.max)):
            raise SchemeError(
                f"scheme {self.name!r}: its rewards' weight * max add up beyond the float range"
                f" (±{sys.float_info.max:.1e}), so a total would be inf; lower the weights"
            )
        object.__setattr__(self, "_names", names)

    @property
    def reward_names(self) -> tuple[str, ...]:
        return self._names

    @property
    def max_total(self) -> float | None:
        """The largest possible total, or None when it is not known.

        A reward weighs in at best ``weight * max``; with a negative weight, at best
        ``weight * (its smallest value)``, which is 0 for a built-in reward (never below 0)
        and unknown for a custom one (a scheme declares no minimum). So it is None when a
        custom reward declares no `max` or has a negative weight.

        >>> penalty = SchemeReward("long", lambda c, a: -len(c) / 100, weight=-1.0, max=0)
        >>> Scheme("s", (*STRICT.rewards, penalty)).max_total is None
        True
        """
        best = 0.0
        for r in self.rewards:
            if r.weight >= 0 and r.max is not None:
                best += r.weight * r.max
            elif r.weight < 0 and not is_builtin(r.fn):
                return None  # its best is weight * its (undeclared) minimum
            elif r.max is None:
                return None
        return best

    def score(self, completion: str, answer: str | float) -> dict[str, Reward]:
        """Every reward of the scheme for one completion, by name, in the scheme's order.

        A numeric `answer` is read as `rewardkit score` reads one (`rewards.texts`).
        """
        if not isinstance(completion, str) or not isinstance(answer, str):
            completion, answer = texts(completion, answer, f"scheme {self.name!r}")
        return {r.name: call_reward(r, completion, answer) for r in self.rewards}

    def total(self, scores: Mapping[str, Reward]) -> float:
        """The weighted sum of `scores` (as returned by `score`).

        A sum beyond the float range raises `RewardError` rather than give ``inf``, which
        no JSON file or training step can take.
        """
        return weighted_total(self, [scores[r.name].value for r in self.rewards])


def weighted_total(scheme: Scheme, values: Sequence[float]) -> float:
    """The total of `scheme` for its rewards' `values` (in its order), summed as
    `rewardkit score` sums its columns; `RewardError` when it is not a finite number.

    >>> big = SchemeReward("big", lambda c, a: 1e308)
    >>> weighted_total(Scheme("s", (big, SchemeReward("also", big.fn))), [1e308, 1e308])
    Traceback (most recent call last):
    ...
    rewardkit.schemes.RewardError: scheme 's': the weighted total is inf: big 1e+308 * \
weight 1, also 1e+308 * weight 1 add up beyond the float range (±1.8e+308); lower the \
weights, or what the rewards return
    """
    total = 0.0
    for reward, value in zip(scheme.rewards, values, strict=True):
        total += reward.weight * value
    if not math.isfinite(total):
        terms = ", ".join(
            f"{r.name} {v:g} * weight {r.weight:g}"
            for r, v in zip(scheme.rewards, values, strict=True)
        )
        raise RewardError(
            f"scheme {scheme.name!r}: the weighted total is {total}: {terms} add up beyond the"
            f" float range (±{sys.float_info.max:.1e}); lower the weights, or what the rewards"
            " return"
        )
    return total


RESERVED_NAMES = frozenset({"line", "id", "group", "scheme", "total"})


def call_reward(reward: SchemeReward, completion: str, answer: str) -> Reward:
    """`reward` on one completion. A custom reward's result is checked and made a `Reward`;
    whatever goes wrong in it raises `RewardError`, naming the reward and, when it raised,
    the exception and the line of the user's code that raised it (see `_where`).

    >>> shout = SchemeReward("shout", lambda completion, answer: completion.upper())
    >>> call_reward(shout, "<answer>7</answer>", "7")
    Traceback (most recent call last):
    ...
    rewardkit.schemes.RewardError: reward 'shout' returned '<ANSWER>7</ANSWER>' (str); \
return a float, a (float, reason) pair or a rewardkit.rewards.Reward
    >>> import json
    >>> parse = SchemeReward("parse", lambda completion, answer: json.loads(completion))
    >>> call_reward(parse, "no JSON", "")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rewardkit.schemes.RewardError: reward 'parse' raised JSONDecodeError: Expecting value: \
line 1 column 1 (char 0) (at <doctest ...>:1, raised in .../json/decoder.py:...); a reward \
must give a value for every completion: fix the function
    """
    if reward.builtin:  # no checks on the hot path
        return cast(Reward, reward.fn(completion, answer))
    try:
        result: Any = reward.fn(completion, answer)
    except (Exception, SystemExit) as error:  # a user's function: whatever it raises, name it
        if (
            isinstance(error, TypeError)
            and not _where(error)
            and (wrong := _call_problem(reward.fn))
        ):
            raise RewardError(
                f"reward {reward.name!r}: {wrong}"
            ) from error  # not its code: the call
        raise RewardError(
            f"reward {reward.name!r} raised {type(error).__name__}: {error}{_where(error)};"
            " a reward must give a value for every completion: fix the function"
        ) from error
    return _coerce(reward, result)


def _call_problem(fn: Callable[..., Any]) -> str:
    """Why `fn` cannot be called as ``fn(completion, answer)``, naming where it is defined;
    "" when it can, or when Python cannot tell (a function written in C).

    >>> def brevity(completion):
    ...     return 1.0
    >>> print(_call_problem(brevity))  # doctest: +ELLIPSIS
    brevity(completion) (at <doctest ...>:1) cannot be called as fn(completion, answer): too
    many positional arguments; a reward takes two arguments, the completion and the answer:
    def brevity(completion, answer)
    """
    try:  # the function called, not the one a decorator wraps (it may supply arguments)
        signature = inspect.signature(fn, follow_wrapped=False)
    except (TypeError, ValueError):
        return ""
    try:
        signature.bind("", "")
    except TypeError as error:
        name = getattr(fn, "__name__", type(fn).__name__)
        signature = signature.replace(  # the parameters alone: annotations may be strings
            parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
            return_annotation=signature.empty,
        )
        code = getattr(inspect.unwrap(fn), "__code__", None)
        if code is None and not inspect.isroutine(fn):  # an object with a __call__ method
            code = getattr(type(fn).__call__, "__code__", None)
        at = f" (at {code.co_filename}:{code.co_firstlineno})" if code is not None else ""
        return (
            f"{name}{signature}{at} cannot be called as fn(completion, answer): {error}; a reward"
            f" takes two arguments, the completion and the answer: def {name}(completion, answer)"
        )
    return ""


def _where(error: BaseException) -> str:
    """Where a user's code raised `error`: `` (at file:line)``, or ``""`` when unknown.

    The line named is the deepest one in the user's own file (the file of the first frame
    past rewardkit and importlib), not in the library it called: a reward that fails in
    ``json.loads(c)`` is reported at its own ``json.loads`` line, and the library line that
    raised follows as ``raised in``. A `SyntaxError` in a module being imported has no
    frame of its own: its file and line are the ones it names. (`call_reward` shows one.)
    """
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if not _is_machinery(frame.filename)
    ]
    innermost = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else None
    if isinstance(error, SyntaxError) and error.lineno and Path(error.filename or "<").is_file():
        innermost = f"{error.filename}:{error.lineno}"
    if not frames:
        return f" (at {innermost})" if innermost else ""
    own = [frame for frame in frames if frame.filename == frames[0].filename][-1]
    at = f"{own.filename}:{own.lineno}"
    return f" (at {at})" if innermost == at else f" (at {at}, raised in {innermost})"


_IMPORTLIB = os.path.join(os.path.dirname(importlib.__file__), "")  # ends in a separator


def _is_machinery(filename: str) -> bool:
    """Frames of this module and of the import system: never where a user's bug is."""
    return filename == __file__ or filename.startswith(("<frozen ", _IMPORTLIB))


MAX_TOLERANCE = 1e-9
"""How far above its declared `max` (relative to it) a custom reward's value may be and
still count as the max: sums of floats land a little above a round max (0.1 + 0.1 + 0.1 is
0.30000000000000004). Such a value is read as the max itself, so that "of max" and "all
max" count it."""


def _coerce(reward: SchemeReward, result: Any) -> Reward:
    """Turn a custom reward's return value into a `Reward`, or say what was wrong with it.

    Any finite real number is a value: a float or an int, a `fractions.Fraction`, numpy's
    float and int scalars (all `numbers.Real`). A bool is refused (a reward that returns
    ``x == y`` is easy to write by mistake), and so is a `decimal.Decimal`, which Python
    does not count as a real number because it does not mix with floats.
    """
    name = reward.name
    reason = "ok"
    if isinstance(result, tuple) and len(result) == 2:
        result, reason = result
        if not isinstance(reason, str):
            raise RewardError(f"reward {name!r} returned reason {reason!r}; a reason must be a str")
        if not reason.isascii():
            reason = escape_surrogates(reason)
    if isinstance(result, bool) or not isinstance(result, numbers.Real):
        raise RewardError(
            f"reward {name!r} returned {result!r} ({type(result).__name__}); return a float,"
            " a (float, reason) pair or a rewardkit.rewards.Reward"
        )
    try:
        value = float(result)
    except OverflowError:  # an int or a Fraction beyond the float range
        raise RewardError(
            f"reward {name!r} returned {_short(result)} ({type(result).__name__}), a number too"
            f" large for a float (beyond ±{sys.float_info.max:.1e}); rewards must be finite"
            " numbers"
        ) from None
    if not math.isfinite(value):
        raise RewardError(f"reward {name!r} returned {value}; rewards must be finite numbers")
    if not math.isfinite(reward.weight * value):
        raise RewardError(
            f"reward {name!r} returned {value:g}, which times its weight {reward.weight:g} is"
            f" beyond the float range (±{sys.float_info.max:.1e}); lower the weight, or what"
            " the reward returns"
        )
    if reward.max is not None and value > reward.max:
        if not math.isclose(value, reward.max, rel_tol=MAX_TOLERANCE, abs_tol=0.0):
            raise RewardError(
                f"reward {name!r} returned {value}, above its declared max {reward.max};"
                " fix the reward or its `max` in the scheme file"
            )
        value = reward.max  # above by rounding alone (0.1 + 0.1 + 0.1 > 0.3): the max
    return Reward(value, reason)


def escape_surrogates(text: str) -> str:
    r"""`text`, with a lone surrogate (which no UTF-8 file, Arrow column or JSON writer takes)
    written as its escape: in a custom reward's reason, and in the ids `rewardkit score`
    writes.

    A reason copied from the completion (``completion[:5]``) holds one when the JSON line
    held a ``\ud800`` escape.

    >>> escape_surrogates("caf\u00e9 " + chr(0xD800))
    'café \\ud800'
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _builtin(name: str, variant: str) -> SchemeReward:
    definition = REWARDS[name]
    return SchemeReward(name, definition.variants[variant], 1.0, definition.max, variant, True)


STRICT = Scheme("strict", tuple(_builtin(name, "strict") for name in REWARDS))
LENIENT = Scheme("lenient", tuple(_builtin(name, "lenient") for name in REWARDS))

SCHEMES: Mapping[str, Scheme] = MappingProxyType({"strict": STRICT, "lenient": LENIENT})


def get_scheme(name_or_path: str | os.PathLike[str]) -> Scheme:
    """A built-in scheme by name, or a scheme file (``.yaml``, ``.yml``, ``.toml``) by path.

    >>> get_scheme("lenient").reward_names
    ('correctness', 'digit', 'format', 'mark')
    >>> get_scheme("relaxed")
    Traceback (most recent call last):
    ...
    rewardkit.schemes.SchemeError: unknown scheme 'relaxed'; valid schemes: strict, lenient, \
or the path of a .yaml/.toml scheme file
    """
    name_or_path = os.fspath(name_or_path)
    if name_or_path in SCHEMES:
        return SCHEMES[name_or_path]
    path = Path(name_or_path)
    if path.suffix.lower() in {".yaml", ".yml", ".toml"}:
        return load_scheme_file(path)
    raise SchemeError(
        f"unknown scheme {name_or_path!r}; valid schemes: {', '.join(SCHEMES)},"
        " or the path of a .yaml/.toml scheme file"
    )


SchemeLike: TypeAlias = str | os.PathLike[str] | Scheme
"""A built-in scheme's name, the path of a scheme file, or a `Scheme`."""


def schemes_of(schemes: SchemeLike | Iterable[SchemeLike]) -> tuple[Scheme, ...]:
    """The schemes to score under: each `Scheme` as it is, a name or path by `get_scheme`.

    One scheme may stand alone. There must be at least one, and two of one name would
    share every column of the scores.

    >>> [s.name for s in schemes_of(["strict", LENIENT])], schemes_of("lenient")[0].name
    (['strict', 'lenient'], 'lenient')
    >>> schemes_of([STRICT, "strict"])
    Traceback (most recent call last):
    ...
    rewardkit.schemes.SchemeError: two schemes are both called 'strict' (built-in and \
built-in); name each scheme once, or give a scheme file its own `name:`
    """
    if isinstance(schemes, (str, os.PathLike, Scheme)):
        schemes = [schemes]
    if not isinstance(schemes, Iterable):
        raise SchemeError(f"{schemes!r} is not a scheme or a list of schemes")
    found: list[Scheme] = []
    seen: dict[str, Scheme] = {}
    for item in schemes:
        if isinstance(item, Scheme):
            scheme = item
        elif isinstance(item, (str, os.PathLike)):
            scheme = get_scheme(item)
        else:
            raise SchemeError(
                f"{item!r} ({type(item).__name__}) is not a scheme; give a Scheme, a built-in"
                f" scheme's name ({', '.join(SCHEMES)}) or a scheme file's path"
            )
        if scheme.name in seen:
            raise SchemeError(
                f"two schemes are both called {scheme.name!r} ({seen[scheme.name].source} and"
                f" {scheme.source}); name each scheme once, or give a scheme file its own"
                " `name:`"
            )
        seen[scheme.name] = scheme
        found.append(scheme)
    if not found:
        raise SchemeError("no scheme given; name at least one (strict, lenient or a file)")
    return tuple(found)


def _read_mapping(path: Path) -> Mapping[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SchemeError(f"{path}: scheme file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SchemeError(f"{path}: cannot read the scheme file ({error})") from None
    text = text.removeprefix("\ufeff")  # a UTF-8 BOM from a Windows editor: TOML refuses it
    try:
        if path.suffix.lower() == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover
                import tomli as tomllib
            data: Any = tomllib.loads(text)
        else:
            from rewardkit.yamlfile import load

            data, _ = load(text)
    except Exception as error:  # the parsers' own error types differ; report, don't hide
        raise SchemeError(f"{path}: not valid {path.suffix[1:].upper()}: {error}") from None
    if not isinstance(data, dict):
        raise SchemeError(f"{path}: a scheme file holds a mapping with `name` and `rewards`")
    return data


_ENTRY_KEYS = {"reward", "variant", "weight", "name", "function", "max"}


def load_scheme_file(path: str | Path) -> Scheme:
    """Load a user's scheme from YAML or TOML; every mistake names the file and the entry."""
    path = Path(path)
    data = _read_mapping(path)
    unknown = sorted(set(data) - {"name", "rewards", "default_variant"})
    if unknown:
        raise SchemeError(
            f"{path}: unknown key(s) {', '.join(unknown)}; valid: name, rewards, default_variant"
        )
    name = _name(str(path), data, path.stem, file=True)
    default_variant = str(data.get("default_variant", "strict"))
    if default_variant not in {"strict", "lenient"}:
        raise SchemeError(
            f"{path}: default_variant {default_variant!r} is not a variant; use strict or lenient"
        )
    entries = data.get("rewards")
    if not isinstance(entries, list) or not entries:
        raise SchemeError(f"{path}: `rewards` must be a non-empty list of reward entries")
    with _one_load():  # the entries' rewards of one module share it, as they did when imported
        rewards = [_entry(path, i, entry, default_variant) for i, entry in enumerate(entries, 1)]
    try:
        return Scheme(name, tuple(rewards), source=str(path))
    except SchemeError as error:
        raise SchemeError(f"{path}: {error}") from None


def _entry(path: Path, index: int, entry: Any, default_variant: str) -> SchemeReward:
    where = f"{path}: reward #{index}"
    if not isinstance(entry, dict):
        raise SchemeError(f"{where}: expected a mapping such as {{reward: correctness}}")
    unknown = sorted(set(entry) - _ENTRY_KEYS)
    if unknown:
        raise SchemeError(
            f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(sorted(_ENTRY_KEYS))}"
        )
    weight = _number(where, "weight", entry.get("weight", 1.0))
    if ("reward" in entry) == ("function" in entry):
        raise SchemeError(
            f"{where}: give either `reward` (a built-in: {', '.join(REWARDS)})"
            " or `function` (module:function), not both or neither"
        )
    if "reward" in entry:
        try:
            definition = get_reward(str(entry["reward"]))
        except KeyError as error:
            raise SchemeError(f"{where}: {error.args[0]}") from None
        variant = str(entry.get("variant", default_variant))
        if variant not in definition.variants:
            raise SchemeError(
                f"{where}: reward {definition.name!r} has no variant {variant!r};"
                f" valid variants: {', '.join(definition.variants)}"
            )
        if "max" in entry:
            raise SchemeError(
                f"{where}: a built-in reward's max is fixed by the spec; remove `max`"
            )
        return SchemeReward(
            _name(where, entry, definition.name),
            definition.variants[variant],
            weight,
            definition.max,
            variant,
            builtin=True,
        )
    spec = str(entry["function"])
    if "variant" in entry:
        raise SchemeError(f"{where}: `variant` is for built-in rewards; remove it")
    maximum = None
    if entry.get("max") is not None:
        maximum = _number(where, "max", entry["max"])
        if maximum < 0:
            raise SchemeError(
                f"{where}: max {entry['max']!r} is negative; `max` is the largest value the"
                " function returns, 0 or more (0 for a penalty that is never positive)"
            )
    name = _name(where, entry, spec.rsplit(":", 1)[-1])
    try:  # last: it runs the user's module
        fn, origin = _resolve(spec, path.parent)
    except (ImportError, AttributeError, ValueError) as error:
        raise SchemeError(f"{where}: {error}") from None
    if wrong := _call_problem(fn):
        raise SchemeError(f"{where}: custom reward {spec!r}: {wrong}")
    return SchemeReward(name, fn, weight, maximum, origin=origin)


def _number(where: str, key: str, value: Any) -> float:
    """`value` as a float, or a `SchemeError` unless it is a finite number.

    >>> _number("s.yaml: reward #1", "max", 10**400)
    Traceback (most recent call last):
    ...
    rewardkit.schemes.SchemeError: s.yaml: reward #1: max 1000...000 is not a finite number
    """
    if not isinstance(value, bool) and isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an int beyond the float range
            number = math.inf
        if math.isfinite(number):
            return number
    raise SchemeError(f"{where}: {key} {_short(value)} is not a finite number")


def _short(value: Any) -> str:
    """`repr(value)` (`str` for an int or a fraction), shortened when long: a huge int
    has hundreds of digits.

    >>> from fractions import Fraction
    >>> _short(10**400), _short(0.5), _short(Fraction(10**400, 3)), _short(10**5000)
    ('1000...000', '0.5', '1000...0/3', 'an int of about 5000 digits')
    """
    try:
        shown = str(value) if isinstance(value, numbers.Rational) else repr(value)  # 1/3
    except ValueError:  # an int beyond sys.get_int_max_str_digits(), or a Fraction of one
        if isinstance(value, int):
            return f"an int of about {round(value.bit_length() * math.log10(2))} digits"
        return f"a {type(value).__name__} too large to show"
    return f"{shown[:4]}...{shown[-3:]}" if len(shown) > 20 else shown


def _name(where: str, mapping: Mapping[str, Any], default: str, file: bool = False) -> str:
    """The `name` in `mapping`, or `default` when there is none; a given name must be text.

    YAML reads ``name:`` with nothing after it as null and ``name: no`` as False: refuse
    them rather than name a column "None" or "False".

    >>> _name("s.yaml: reward #1", {"name": None}, "brevity")
    Traceback (most recent call last):
    ...
    rewardkit.schemes.SchemeError: s.yaml: reward #1: name None is not a name; write a \
non-empty string (quoted, in YAML, if it looks like a number or a yes/no), or remove `name` \
for the default, brevity
    """
    if "name" not in mapping:
        return default
    name = mapping["name"]
    if not isinstance(name, str) or not name.strip():
        raise SchemeError(
            f"{where}: name {name!r} is not a name; write a non-empty string (quoted, in YAML,"
            f" if it looks like a number or a yes/no), or remove `name` for the default,"
            f" {default}"
        )
    if problem := _name_problem(name, file=file):
        raise SchemeError(f"{where}: name {name!r} {problem}")
    return name


def resolve_function(spec: str, base: Path | None = None) -> SchemeRewardFn:
    """Import ``module:function`` or ``file.py:function`` (relative to `base`, then the cwd).

    A module that cannot be found, or that raises while it is imported (a `SyntaxError`, an
    exception at its top level, a missing dependency), raises `ImportError` naming the file
    and line that failed and the exception. A function of a file, or of a module found
    beside `base` or in the working folder, is loaded under a module name of its own: it
    pickles into another process only as part of a `SchemeReward` (which carries its file).

    >>> resolve_function("rewardkit.rewards:digit_lenient").__name__
    'digit_lenient'
    >>> resolve_function("rewardkit.rewards")
    Traceback (most recent call last):
    ...
    ValueError: custom reward 'rewardkit.rewards' must be written module:function
    """
    return _resolve(spec, base)[0]


def _resolve(spec: str, base: Path | None) -> tuple[SchemeRewardFn, str | None]:
    """`resolve_function`, and the origin of a function loaded by location (see
    `SchemeReward`), or None for one of an importable module.

    Where the function is found depends on the spec and the folders alone, never on what
    this process loaded before: a file is loaded from its path, a module that Python cannot
    import by name from the one it finds beside the scheme file or in the working folder,
    each under a module name of its own (`_module_id`), and `sys.path` is left as it was.
    """
    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"custom reward {spec!r} must be written module:function")
    if module_name.endswith(".py"):
        candidates = [Path(module_name)] if Path(module_name).is_absolute() else []
        candidates += [(base or Path()) / module_name, Path.cwd() / module_name]
        file = next((c for c in candidates if c.is_file()), None)
        if file is None:
            raise ImportError(f"custom reward {spec!r}: file {module_name} not found")
        location, inner = file.resolve(), ""
        module = _load_located(spec, location, inner)
    else:
        inner = module_name.partition(".")[2]
        found = _find_module(spec, module_name, base)
        if not isinstance(found, Path):
            return _attribute(spec, found, module_name, attr), None
        location = found
        module = _load_located(spec, location, inner)
    return _attribute(spec, module, module_name, attr), f"{location}:{inner}:{attr}"


def _attribute(spec: str, module: Any, module_name: str, attr: str) -> SchemeRewardFn:
    fn = getattr(module, attr, None)
    if fn is None:
        raise AttributeError(f"custom reward {spec!r}: module {module_name} has no {attr!r}")
    if not callable(fn):
        raise ValueError(f"custom reward {spec!r} is not callable")
    return cast(SchemeRewardFn, fn)


def _find_module(spec: str, module_name: str, base: Path | None) -> Any:
    """The module `module_name` by the documented search, or the `Path` to load it from.

    First the ordinary import (installed packages, `PYTHONPATH`): that module, imported by
    name. Else the top-level module or package of that name beside the scheme file, then
    in the working folder: its path, for `_load_located`. A name Python imported before from
    elsewhere never stands in for the one this search finds: when the ordinary import's
    module is not the file found beside the scheme, or not the one imported before, the
    error names both files.
    """
    top = module_name.partition(".")[0]
    ordinary = _ordinary_spec(top)
    folders = [folder for folder in (base, Path.cwd()) if folder is not None]
    located = _locate(top, folders)
    if ordinary is not None and located is not None and ordinary.origin is None:
        ordinary = None  # a namespace package yields to a module, as Python's path search does
    if ordinary is not None:
        _same_module(spec, module_name, base, ordinary)
        return _import_by_name(spec, module_name)
    if located is not None:
        return located
    if top in sys.modules:  # not on any path (built in a notebook, say): what Python imports
        return _import_by_name(spec, module_name)
    raise ImportError(
        f"cannot import module {module_name!r}: install it, or put it beside the scheme file"
        " or in the working directory"
    )


def _ordinary_spec(top: str) -> Any:
    """Where Python's import system finds the top-level module `top` now, not counting the
    modules it imported before (`importlib.util.find_spec` returns those as they are)."""
    for finder in sys.meta_path:
        find_spec = getattr(finder, "find_spec", None)
        if find_spec is not None and (found := find_spec(top, None)) is not None:
            return found
    return None


def _locate(top: str, folders: list[Path]) -> Path | None:
    """The module ``top.py`` or package folder ``top`` in the first of `folders` that holds
    one, as Python's path search finds it: a regular package, else a module file, in any
    folder, before a folder without ``__init__.py`` (a namespace package)."""
    for folder in folders:
        if (folder / top / "__init__.py").is_file():
            return (folder / top).resolve()
        if (folder / f"{top}.py").is_file():
            return (folder / f"{top}.py").resolve()
    return next(((f / top).resolve() for f in folders if (f / top).is_dir()), None)


def _places(module_or_spec: Any) -> set[Path]:
    """The files and folders a module (or the spec of one) comes from."""
    spec = getattr(module_or_spec, "__spec__", module_or_spec)
    paths = [getattr(module_or_spec, "__file__", None), getattr(spec, "origin", None)]
    paths += list(getattr(module_or_spec, "__path__", None) or [])
    paths += list(getattr(spec, "submodule_search_locations", None) or [])
    places = set()
    for path in paths:
        if isinstance(path, str) and os.path.exists(path):
            place = Path(path).resolve()
            places.add(place.parent if place.name == "__init__.py" else place)
    return places


def _same_module(spec: str, module_name: str, base: Path | None, ordinary: Any) -> None:
    """Raise unless the module Python imports by name is the one this scheme means: not
    another module of its name beside the scheme file, nor one imported before from a
    folder no longer searched (the two files are named)."""
    top = module_name.partition(".")[0]
    found = _places(ordinary)
    beside = _locate(top, [base]) if base is not None else None
    attr = spec.rpartition(":")[2]
    if beside is not None and found and beside not in found:
        path = module_name.replace(".", "/")
        if beside.is_dir() and module_name == top:
            path += "/__init__"
        raise ImportError(
            f"custom reward {spec!r}: the module {top!r} Python imports is"
            f" {_shown_places(found)}, not the {beside} beside the scheme file (an installed"
            f" module, or one on PYTHONPATH, comes first); name the file instead"
            f" ({path}.py:{attr}), or rename the module"
        )
    imported = sys.modules.get(top)
    before = _places(imported) if imported is not None else set()
    if before and found and not before & found:
        raise ImportError(
            f"custom reward {spec!r}: this process imported the module {top!r} from"
            f" {_shown_places(before)}, but Python's search path now finds"
            f" {_shown_places(found)}; name the file instead"
            f" ({module_name.replace('.', '/')}.py:{attr}), or rename one of the modules"
        )


def _shown_places(places: set[Path]) -> str:
    return ", ".join(sorted(str(place) for place in places))


def _import_by_name(spec: str, module_name: str) -> Any:
    """An ordinary import; a module that raises while it is imported is named, with the line."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if not _is_missing(module_name, error):
            raise _import_failed(spec, module_name, error) from error
        raise ImportError(
            f"cannot import module {module_name!r}: install it, or put it beside the scheme file"
            " or in the working directory"
        ) from None
    except (Exception, SystemExit) as error:  # a user's module: whatever it raises, name it
        raise _import_failed(spec, module_name, error) from error


def _load_located(spec: str, location: Path, inner: str) -> Any:
    """Load the module file or package folder at `location` as a module of its own (and
    then its submodule `inner`, when given), so that nothing imported before stands in for it.

    It is loaded again on every call, as `get_scheme` reads an edited file again, but once
    within one scheme file's load (`_one_load`): two rewards of one module share its state,
    and a package's submodules are all loaded beside each other. While it runs, its folder
    is at the end of `sys.path`, so that ``import helper`` of a ``helper.py`` beside it works
    as when Python runs the file itself; then `sys.path` is as it was.
    """
    module_id = _module_id(location)
    loaded = _LOADED.get()
    module = loaded.get(location) if loaded is not None else None
    if module is None:
        module = _exec_located(spec, location, module_id)
        if loaded is not None:
            loaded[location] = module
    if not inner:
        return module
    with _on_path(location.parent):
        try:
            return importlib.import_module(f"{module_id}.{inner}")
        except ModuleNotFoundError as error:
            if error.name is not None and f"{module_id}.{inner}.".startswith(error.name + "."):
                raise ImportError(
                    f"custom reward {spec!r}: {location} holds no module {inner}"
                ) from None
            raise _import_failed(spec, f"{location.name}.{inner}", error) from error
        except (Exception, SystemExit) as error:
            raise _import_failed(spec, f"{location.name}.{inner}", error) from error


# The modules loaded by location in the scheme file being loaded, by location (None outside).
_LOADED: contextvars.ContextVar[dict[Path, Any] | None] = contextvars.ContextVar(
    "rewardkit_loaded", default=None
)


@contextlib.contextmanager
def _one_load() -> Iterator[None]:
    """Within it, `_load_located` runs each module once."""
    token = _LOADED.set({})
    try:
        yield
    finally:
        _LOADED.reset(token)


def _exec_located(spec: str, location: Path, module_id: str) -> Any:
    """Run the module file or package folder at `location` anew as `module_id`."""
    for name in [n for n in sys.modules if n.startswith(module_id + ".")]:
        del sys.modules[name]  # the submodules of the last load
    if location.is_dir():
        init = location / "__init__.py"
        if init.is_file():
            found = importlib.util.spec_from_file_location(
                module_id, init, submodule_search_locations=[str(location)]
            )
        else:  # a namespace package: a folder of modules
            found = importlib.machinery.ModuleSpec(module_id, None, is_package=True)
            found.submodule_search_locations = [str(location)]
    else:
        found = importlib.util.spec_from_file_location(module_id, location)
    if found is None or (found.loader is None and not location.is_dir()):
        raise ImportError(f"custom reward {spec!r}: cannot import {location}")
    with _on_path(location.parent):
        module = importlib.util.module_from_spec(found)
        sys.modules[module_id] = module
        try:
            if found.loader is not None:
                found.loader.exec_module(module)
        except (Exception, SystemExit) as error:  # a user's module: whatever it raises
            del sys.modules[module_id]  # as the import system does: no half-run module left
            file = location / "__init__.py" if location.is_dir() else location
            raise _import_failed(spec, str(file), error) from error
    return module


@contextlib.contextmanager
def _on_path(folder: Path) -> Iterator[None]:
    """`folder` at the end of `sys.path` for the duration, unless it is there already."""
    entry = str(folder)
    if entry in sys.path:
        yield
        return
    sys.path.append(entry)
    try:
        yield
    finally:
        for index in range(len(sys.path) - 1, -1, -1):  # the entry added, not one of the user's
            if sys.path[index] == entry:
                del sys.path[index]
                break


def source_files(scheme: Scheme) -> list[str]:
    """The files of the modules that loading `scheme`'s file ran, and would run again:
    its rewards' files (``file.py:function``) and the modules found beside it or in the
    working folder, packages with their submodules; not those imported by name, which
    Python imports once. A cache of schemes keys on these (`rewardkit.integrations`).

    >>> source_files(get_scheme("examples/my_scheme.yaml"))  # doctest: +ELLIPSIS
    ['.../examples/my_rewards.py']
    """
    files: set[str] = set()
    for reward in scheme.rewards:
        if reward.origin is None:
            continue
        module_id = _module_id(Path(reward.origin.rsplit(":", 2)[0]))
        for name, module in list(sys.modules.items()):
            file = getattr(module, "__file__", None)
            if (name == module_id or name.startswith(module_id + ".")) and file:
                files.add(file)
    return sorted(files)


def _module_id(location: Path) -> str:
    """The name a user's file or package is loaded under: two ``rewards.py`` in two folders
    differ, and neither is the name another module may be imported under."""
    digest = hashlib.sha1(str(location.resolve()).encode("utf-8", "surrogatepass")).hexdigest()
    return f"rewardkit_user_{location.stem}_{digest[:10]}"


def _is_missing(module_name: str, error: ModuleNotFoundError) -> bool:
    """Whether `error` says `module_name` (or a package above it) does not exist, rather
    than that one of its own imports failed.

    >>> _is_missing("pkg.rewards", ModuleNotFoundError(name="pkg"))
    True
    >>> _is_missing("pkg_rewards", ModuleNotFoundError(name="pkg"))
    False
    """
    return error.name is not None and (module_name + ".").startswith(error.name + ".")


def _import_failed(spec: str, module: str, error: BaseException) -> ImportError:
    """The error for a module that was found but raised while it was imported."""
    what = f"{type(error).__name__}: {error}"
    if isinstance(error, SyntaxError):
        what = f"SyntaxError: {error.msg}"  # its str() repeats the file and line
    if isinstance(error, ModuleNotFoundError) and error.name is not None:
        return ImportError(
            f"custom reward {spec!r}: module {module} was found, but its own import of"
            f" {error.name!r} failed{_where(error)}: install {error.name!r}"
        )
    return ImportError(
        f"custom reward {spec!r}: importing {module} raised {what}{_where(error)}; fix the module"
    )
