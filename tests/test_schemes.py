"""Schemes as data: the built-in STRICT and LENIENT, user schemes from YAML and TOML,
custom ``module:function`` and ``file.py:function`` rewards, and every `SchemeError`."""

from __future__ import annotations

import json
import multiprocessing
import pickle
import re
import sys
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewardkit.cli import main
from rewardkit.rewards import REWARDS, Reward
from rewardkit.schemes import (
    LENIENT,
    SCHEMES,
    STRICT,
    RewardError,
    Scheme,
    SchemeError,
    SchemeReward,
    get_scheme,
    load_scheme_file,
    resolve_function,
    schemes_of,
    source_files,
)
from rewardkit.score import score_file

WELL_FORMED = "<think>\n24 + 6 = 30\n</think>\n<answer>\n30\n</answer>\n"


@pytest.fixture(autouse=True)
def _isolated_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Scheme loading may add folders to sys.path and user modules to sys.modules: undo."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith(("rewardkit_user_", "user_rewards_")):
            del sys.modules[name]


def _module_name() -> str:
    return f"user_rewards_{uuid.uuid4().hex[:12]}"


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


USER_REWARDS = """
import json
from decimal import Decimal
from fractions import Fraction

import numpy as np

from rewardkit.rewards import Reward

def brevity(completion, answer):
    return 1.0 if len(completion) < 50 else 0.0

def explained(completion, answer):
    return (0.0, "too_long") if len(completion) >= 50 else (1.0, "ok")

def as_reward(completion, answer):
    return Reward(0.75, "ok")

def as_int(completion, answer):
    return 1

def as_text(completion, answer):
    return "1.0"

def as_none(completion, answer):
    return None

def as_bool(completion, answer):
    return True

def as_list(completion, answer):
    return [1.0]

def reason_not_text(completion, answer):
    return (1.0, 7)

def as_fraction(completion, answer):
    return Fraction(1, 4)

def as_float32(completion, answer):
    return np.float32(0.25)

def as_float64(completion, answer):
    return np.float64(0.25)

def as_int64(completion, answer):
    return np.int64(1)

def as_numpy_bool(completion, answer):
    return np.bool_(True)

def as_huge_int(completion, answer):
    return 10**400

def as_huge_fraction(completion, answer):
    return Fraction(10**400, 3)

def almost_max_float(completion, answer):
    return 1e308

def quotes(completion, answer):
    return 0.5, completion[:5]

def tenths(completion, answer):
    return sum([0.1] * len(completion))  # "abc": 0.30000000000000004

def as_decimal(completion, answer):
    return Decimal("0.25")

def too_big(completion, answer):
    return 1.5

def infinite_reward(completion, answer):
    return Reward(float("inf"), "ok")

def infinite(completion, answer):
    return float("inf")

def not_a_number(completion, answer):
    return float("nan")

def raises(completion, answer):
    raise RuntimeError("bug in the reward")

def parses(completion, answer):
    return json.loads(completion)  # the line a JSONDecodeError is reported at

def _helper(completion):
    raise KeyError(completion)  # the line a KeyError is reported at

def calls_a_helper(completion, answer):
    return _helper(completion)

NOT_CALLABLE = 3
"""


def _user_scheme(tmp_path: Path, function: str, entry: str = "") -> tuple[Path, str]:
    """A scheme file of one reward, `function` of a fresh copy of USER_REWARDS beside it;
    the file's path and the module's name."""
    module = _module_name()
    _write(tmp_path / f"{module}.py", USER_REWARDS)
    text = f'rewards:\n  - {{function: "{module}:{function}"{entry}}}\n'
    return _write(tmp_path / "s.yaml", text), module


# --- the built-in schemes ------------------------------------------------------------------


@pytest.mark.parametrize(("scheme", "variant"), [(STRICT, "strict"), (LENIENT, "lenient")])
def test_builtin_scheme_is_every_reward_in_one_variant(scheme: Scheme, variant: str) -> None:
    assert scheme.name == variant
    assert scheme.reward_names == ("correctness", "digit", "format", "mark")
    for reward in scheme.rewards:
        assert reward.variant == variant
        assert reward.weight == 1.0
        assert reward.fn is REWARDS[reward.name].variants[variant]
        assert reward.max == REWARDS[reward.name].max
    assert scheme.max_total == 3.5
    assert scheme.source == "built-in"


def test_builtin_schemes_are_frozen_data() -> None:
    assert SCHEMES == {"strict": STRICT, "lenient": LENIENT}
    with pytest.raises(FrozenInstanceError):
        STRICT.name = "other"  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        STRICT.rewards[0].weight = 2.0  # type: ignore[misc]


# The worked examples of spec section 4: strict and lenient totals.
WORKED_EXAMPLES = [
    (WELL_FORMED, "#### 30", 3.5, 3.5),
    ("<answer>123</answer>", "123", 2.5, 3.0),
    (" answer </answer>\n\n", "24", 0.125, 0.125),
    ("<answer>\n360,000\n</answer>\n", "360000", 2.75, 3.0),
    ("The total is $1,234.50.", "1234.5", 0.0, 2.0),
]


@pytest.mark.parametrize(("completion", "answer", "strict", "lenient"), WORKED_EXAMPLES)
def test_worked_examples_totals(
    completion: str, answer: str, strict: float, lenient: float
) -> None:
    assert STRICT.total(STRICT.score(completion, answer)) == strict
    assert LENIENT.total(LENIENT.score(completion, answer)) == lenient


def test_score_returns_rewards_by_name_in_scheme_order() -> None:
    scores = STRICT.score("<answer>123</answer>", "123")
    assert list(scores) == ["correctness", "digit", "format", "mark"]
    assert scores["format"] == Reward(0.0, "no_think_tag")
    assert scores["correctness"] == Reward(2.0, "ok")


@pytest.mark.parametrize(
    "name_or_path",
    [
        # built-in names
        "strict",
        "lenient",
    ],
)
def test_get_scheme_builtin(name_or_path: str) -> None:
    assert get_scheme(name_or_path) is SCHEMES[name_or_path]


@pytest.mark.parametrize(
    "name",
    [
        # unknown names, and files that are not .yaml/.yml/.toml
        "relaxed",
        "Strict",
        "",
        "scheme.json",
        "scheme.yaml.bak",
    ],
)
def test_get_scheme_unknown_lists_the_valid_names(name: str) -> None:
    with pytest.raises(SchemeError, match=r"valid schemes: strict, lenient, or the path"):
        get_scheme(name)


def test_scheme_error_is_a_value_error() -> None:
    assert issubclass(SchemeError, ValueError)


# --- user schemes from YAML and TOML -------------------------------------------------------

YAML_SCHEME = """
name: my_scheme
rewards:
  - {reward: correctness, variant: lenient, weight: 2.0}
  - {reward: format, variant: strict}
  - {reward: mark, weight: 0.5}
"""

TOML_SCHEME = """
name = "my_scheme"

[[rewards]]
reward = "correctness"
variant = "lenient"
weight = 2.0

[[rewards]]
reward = "format"
variant = "strict"

[[rewards]]
reward = "mark"
weight = 0.5
"""


@pytest.mark.parametrize(
    ("filename", "text"),
    [
        # the same scheme in each format, and each YAML suffix
        ("scheme.yaml", YAML_SCHEME),
        ("scheme.yml", YAML_SCHEME),
        ("scheme.toml", TOML_SCHEME),
        ("SCHEME.YAML", YAML_SCHEME),
    ],
)
def test_load_user_scheme(tmp_path: Path, filename: str, text: str) -> None:
    path = _write(tmp_path / filename, text)
    scheme = get_scheme(str(path))
    assert scheme == load_scheme_file(path)
    assert scheme.name == "my_scheme"
    assert scheme.source == str(path)
    assert scheme.reward_names == ("correctness", "format", "mark")
    assert [r.variant for r in scheme.rewards] == ["lenient", "strict", "strict"]
    assert [r.weight for r in scheme.rewards] == [2.0, 1.0, 0.5]
    assert scheme.max_total == 2.0 * 2.0 + 0.5 + 0.5 * 0.5
    scores = scheme.score("<answer>\n18 dollars\n</answer>\n", "#### 18")
    assert scores["correctness"] == Reward(2.0, "ok")
    assert scores["format"] == Reward(0.0, "no_think_tag")
    assert scores["mark"].value == 0.25
    assert scheme.total(scores) == 2.0 * 2.0 + 0.0 + 0.5 * 0.25


def test_default_variant_and_name_from_the_file(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "mine.yaml",
        """
        default_variant: lenient
        rewards:
          - {reward: correctness}
          - {reward: digit, variant: strict}
        """,
    )
    scheme = load_scheme_file(path)
    assert scheme.name == "mine"
    assert [r.variant for r in scheme.rewards] == ["lenient", "strict"]


def test_one_builtin_twice_under_two_names(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "both.toml",
        """
        [[rewards]]
        reward = "correctness"
        variant = "strict"
        name = "correct_strict"

        [[rewards]]
        reward = "correctness"
        variant = "lenient"
        name = "correct_lenient"
        """,
    )
    scores = load_scheme_file(path).score("<answer>18.0</answer>", "18")
    assert scores == {
        "correct_strict": Reward(0.0, "right_number_wrong_text"),
        "correct_lenient": Reward(2.0, "ok"),
    }


# --- custom rewards: module:function and file.py:function ---------------------------------


def test_custom_module_function_beside_the_scheme_file(tmp_path: Path) -> None:
    module = _module_name()
    _write(tmp_path / f"{module}.py", USER_REWARDS)
    path = _write(
        tmp_path / "custom.yaml",
        f"""
        name: custom
        rewards:
          - {{reward: correctness}}
          - {{name: brevity, function: "{module}:brevity", max: 1.0, weight: 0.5}}
          - {{function: "{module}:explained"}}
        """,
    )
    scheme = load_scheme_file(path)
    assert scheme.reward_names == ("correctness", "brevity", "explained")
    assert scheme.rewards[1].variant == "custom"
    assert scheme.rewards[1].max == 1.0
    assert scheme.rewards[2].max is None
    assert scheme.max_total is None  # a custom reward without a declared max
    short = scheme.score("<answer>5</answer>", "5")
    assert short == {
        "correctness": Reward(2.0, "ok"),
        "brevity": Reward(1.0, "ok"),
        "explained": Reward(1.0, "ok"),
    }
    assert scheme.total(short) == 2.0 + 0.5 * 1.0 + 1.0
    long = scheme.score("x" * 60, "5")
    assert long["explained"] == Reward(0.0, "too_long")


def test_custom_file_py_function(tmp_path: Path) -> None:
    (tmp_path / "rewards_dir").mkdir()
    _write(tmp_path / "rewards_dir" / "my_rewards.py", USER_REWARDS)
    path = _write(
        tmp_path / "custom.toml",
        """
        [[rewards]]
        function = "rewards_dir/my_rewards.py:as_reward"
        max = 1

        [[rewards]]
        name = "whole"
        function = "rewards_dir/my_rewards.py:as_int"

        [[rewards]]
        function = "rewards_dir/my_rewards.py:as_fraction"
        """,
    )
    scheme = load_scheme_file(path)
    assert scheme.reward_names == ("as_reward", "whole", "as_fraction")
    assert scheme.max_total is None
    scores = scheme.score("anything", "1")
    assert scores == {
        "as_reward": Reward(0.75, "ok"),
        "whole": Reward(1.0, "ok"),
        "as_fraction": Reward(0.25, "ok"),  # any real number is read as a float
    }
    assert type(scores["whole"].value) is float
    assert type(scores["as_fraction"].value) is float


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max": float("inf")}, "max inf is not a finite number, 0 or more"),
        ({"max": float("nan")}, "max nan is not a finite number"),
        ({"max": -1.0}, "max -1.0 is not a finite number, 0 or more"),
        ({"weight": float("nan")}, "weight nan is not a finite number"),
        ({"weight": 10**400}, "is not a finite number"),
        ({"weight": True}, "weight True is not a finite number"),
        ({"name": ""}, "reward name '' is not a name"),
        ({"fn": "brevity"}, "fn 'brevity' is not callable"),
    ],
)
def test_a_reward_built_in_python_gets_the_scheme_files_checks(
    kwargs: dict[str, Any], message: str
) -> None:
    # a scheme file refuses these (see above); before, a SchemeReward took them as given
    # and `max=inf` reached --json as Infinity, `max=nan` switched the above-max check off
    fields: dict[str, Any] = {"name": "r", "fn": lambda c, a: 0.5, **kwargs}
    with pytest.raises(SchemeError, match=re.escape(message)):
        SchemeReward(**fields)
    reward = SchemeReward("r", len, weight=np.float32(2.0), max=Fraction(1, 2))
    assert (reward.weight, reward.max) == (2.0, 0.5)
    assert type(reward.weight) is float and type(reward.max) is float


def _two_files_named_alike(tmp_path: Path) -> Scheme:
    """A scheme whose two rewards live in two files called ``bonus.py``."""
    for folder, value in (("a", 1.0), ("b", 0.5)):
        (tmp_path / folder).mkdir()
        code = f"def bonus(completion, answer):\n    return {value}\n"
        _write(tmp_path / folder / "bonus.py", code)
    text = "rewards:\n"
    for folder in ("a", "b"):
        text += f'  - {{name: {folder}, function: "{folder}/bonus.py:bonus", max: 1}}\n'
    return load_scheme_file(_write(tmp_path / "s.yaml", text))


def test_files_of_the_same_name_stay_apart(tmp_path: Path) -> None:
    scheme = _two_files_named_alike(tmp_path)
    assert scheme.score("x", "1") == {"a": Reward(1.0, "ok"), "b": Reward(0.5, "ok")}
    # pickled (as for a scoring worker or TRL's async rollout process) and back, each
    # reward is still its own file's function, not the last one loaded under that name
    clone = pickle.loads(pickle.dumps(scheme))
    assert [r.fn for r in clone.rewards] == [r.fn for r in scheme.rewards]
    assert clone.score("x", "1") == scheme.score("x", "1")


def _score_pickled(data: bytes) -> dict[str, Reward]:
    scheme: Scheme = pickle.loads(data)
    return scheme.score("x", "1")


def test_file_rewards_reach_a_spawned_process(tmp_path: Path) -> None:
    # a spawned process has none of the modules the parent loaded from files: it imports
    # each file again from its absolute path (before, unpickling found no such module)
    scheme = _two_files_named_alike(tmp_path)
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        scores = pool.apply(_score_pickled, (pickle.dumps(scheme),))
    assert scores == {"a": Reward(1.0, "ok"), "b": Reward(0.5, "ok")}


def test_custom_file_py_function_by_absolute_path(tmp_path: Path) -> None:
    file = _write(tmp_path / "elsewhere.py", USER_REWARDS)
    fn = resolve_function(f"{file}:brevity")
    result: object = fn("short", "")  # a custom reward may return a plain float
    assert result == 1.0


@pytest.mark.parametrize(
    ("spec", "name"),
    [
        # importable modules, by their dotted name
        ("rewardkit.rewards:digit_lenient", "digit_lenient"),
        ("rewardkit.rewards:correctness_strict", "correctness_strict"),
    ],
)
def test_resolve_function_importable_module(spec: str, name: str) -> None:
    assert resolve_function(spec).__name__ == name


@pytest.mark.parametrize(
    ("function", "value"),
    [
        # any finite real number is a value, read as a float
        ("as_int", 1.0),
        ("as_fraction", 0.25),
        ("as_float64", 0.25),
        ("as_float32", 0.25),
        ("as_int64", 1.0),
    ],
)
def test_custom_reward_returning_any_real_number(
    tmp_path: Path, function: str, value: float
) -> None:
    path, _ = _user_scheme(tmp_path, function)
    reward = load_scheme_file(path).score("", "")[function]
    assert reward == Reward(value, "ok")
    assert type(reward.value) is float


@pytest.mark.parametrize(
    ("function", "error"),
    [
        # what a custom reward may not return: the error names the reward and the value
        ("as_text", r"reward 'as_text' returned '1.0' \(str\); return a float"),
        ("as_none", r"returned None \(NoneType\)"),
        ("as_bool", r"returned True \(bool\)"),
        ("as_list", r"returned \[1.0\] \(list\)"),
        ("as_decimal", r"returned Decimal\('0.25'\) \(Decimal\)"),  # not a numbers.Real
        ("as_numpy_bool", r"returned (np\.)?True_? \(bool_?\)"),
        ("reason_not_text", r"returned reason 7; a reason must be a str"),
    ],
)
def test_custom_reward_returning_a_non_number_raises_type_error(
    tmp_path: Path, function: str, error: str
) -> None:
    path, _ = _user_scheme(tmp_path, function)
    scheme = load_scheme_file(path)
    with pytest.raises(TypeError, match=error):
        scheme.score("<answer>1</answer>", "1")


@pytest.mark.parametrize(
    ("function", "error"),
    [
        # finite numbers only
        ("infinite", r"returned inf; rewards must be finite numbers"),
        ("not_a_number", r"returned nan; rewards must be finite numbers"),
        ("infinite_reward", r"returned inf; rewards must be finite numbers"),
        # beyond a float: said so, not "returned inf"
        ("as_huge_int", r"returned 1000\.\.\.000 \(int\), a number too large for a float"),
        ("as_huge_fraction", r"returned 1000\.\.\.0/3 \(Fraction\), a number too large"),
        # a custom reward declared with a max may not exceed it
        ("too_big", r"returned 1.5, above its declared max 1.0; fix the reward or its `max`"),
    ],
)
def test_custom_reward_returning_a_non_finite_number_raises(
    tmp_path: Path, function: str, error: str
) -> None:
    path, _ = _user_scheme(tmp_path, function, ", max: 1.0")
    with pytest.raises(ValueError, match=error):
        load_scheme_file(path).score("", "")


def test_a_bug_in_a_custom_reward_is_not_hidden(tmp_path: Path) -> None:
    path, module = _user_scheme(tmp_path, "raises")
    with pytest.raises(
        RewardError, match="reward 'raises' raised RuntimeError: bug in the reward"
    ) as caught:
        load_scheme_file(path).score("", "")
    assert f"{module}.py:" in str(caught.value)  # where in the user's file it raised
    assert isinstance(caught.value.__cause__, RuntimeError)  # the original, for a debugger


def _line_of(text: str, marker: str) -> int:
    """The number of the line of `text` (as `_write` writes it) that holds `marker`."""
    lines = textwrap.dedent(text).lstrip().splitlines()
    return next(number for number, line in enumerate(lines, 1) if marker in line)


@pytest.mark.parametrize(
    ("function", "marker", "library"),
    [
        # raised inside a library the reward called: the reward's line, then the library's
        ("parses", "return json.loads(completion)", "decoder.py:"),
        # raised in a helper of the same file: the helper's line, the deepest in the file
        ("calls_a_helper", "raise KeyError(completion)", None),
    ],
)
def test_a_failing_reward_is_reported_at_the_users_line(
    tmp_path: Path, function: str, marker: str, library: str | None
) -> None:
    path, module = _user_scheme(tmp_path, function)
    with pytest.raises(RewardError) as caught:
        load_scheme_file(path).score("no JSON", "")
    message = str(caught.value)
    at = f"{module}.py:{_line_of(USER_REWARDS, marker)}"
    if library is None:
        assert f"{at}); a reward must give a value" in message
    else:
        assert f"{at}, raised in " in message
        assert library in message.split("raised in ")[-1]


# --- custom modules that fail on import ---------------------------------------------------

BROKEN_MODULES = [
    # (the module's text, the line that fails, what was raised)
    ("def f(c, a)\n    return 0.5\n", 1, "SyntaxError: expected ':'"),
    ("import os\n\nraise RuntimeError('boom at import')\n", 3, "RuntimeError: boom at import"),
    # raised in a library the module called: the module's own line
    ("import json\n\nCONFIG = json.loads('{')\n", 3, "JSONDecodeError: Expecting property"),
    ("import sys\nsys.exit(3)\n", 2, "SystemExit: 3"),
    ("from json import no_such_name\n", 1, "ImportError: cannot import name 'no_such_name'"),
]


@pytest.mark.parametrize("form", ["{module}.py:f", "{module}:f"])
@pytest.mark.parametrize(("text", "line", "raised"), BROKEN_MODULES)
def test_a_module_that_fails_on_import_names_its_file_and_line(
    tmp_path: Path, form: str, text: str, line: int, raised: str
) -> None:
    module = _module_name()
    (tmp_path / f"{module}.py").write_text(text, encoding="utf-8")
    spec = form.format(module=module)
    path = _write(tmp_path / "s.yaml", f'rewards:\n  - {{function: "{spec}"}}\n')
    with pytest.raises(SchemeError) as caught:
        load_scheme_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: reward #1: custom reward {spec!r}: importing ")
    assert f" raised {raised}" in message
    assert f"{module}.py:{line}" in message
    assert message.endswith("; fix the module")
    # no half-run module is left behind to be found by the next import
    assert module not in sys.modules
    assert not [m for m in sys.modules if m.startswith(f"rewardkit_user_{module}")]


@pytest.mark.parametrize(
    "command",
    [["score", "examples/completions.jsonl"], ["golden", "check", "--expected", "unused"]],
)
def test_cli_reports_a_module_that_fails_on_import(
    capsys: Any, tmp_path: Path, command: list[str]
) -> None:
    module = _module_name()
    (tmp_path / f"{module}.py").write_text("def f(c, a)\n    return 0.5\n", encoding="utf-8")
    path = _write(tmp_path / "s.yaml", f'rewards:\n  - {{function: "{module}.py:f"}}\n')
    code = main([*command, "--scheme", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    assert f"error: {path}: reward #1: custom reward '{module}.py:f': importing" in err
    assert f"{module}.py:1); fix the module" in err


def test_a_module_named_like_its_missing_dependency(tmp_path: Path) -> None:
    # `user_rewards_x_more` imports the missing `user_rewards_x`: that is a missing
    # dependency, not a missing module (a prefix of the name is not a parent package)
    dependency = _module_name()
    module = f"{dependency}_more"
    (tmp_path / f"{module}.py").write_text(f"import {dependency}\n", encoding="utf-8")
    path = _write(tmp_path / "s.yaml", f'rewards:\n  - {{function: "{module}:f"}}\n')
    with pytest.raises(SchemeError, match=f"its own import of '{dependency}' failed") as caught:
        load_scheme_file(path)
    assert f"{module}.py:1" in str(caught.value)


# --- every SchemeError ---------------------------------------------------------------------

SCHEME_ERRORS = [
    # the file itself
    ("s.yaml", "name: [unclosed\n", r"not valid YAML"),
    ("s.toml", "name = \n", r"not valid TOML"),
    (
        "s.yaml",
        "- reward: correctness\n",
        r"a scheme file holds a mapping with `name` and `rewards`",
    ),
    ("s.yaml", "", r"a scheme file holds a mapping"),
    # top-level keys
    (
        "s.yaml",
        "name: x\nrewardz: []\n",
        r"unknown key\(s\) rewardz; valid: name, rewards, default_variant",
    ),
    ("s.yaml", "name: x\n", r"`rewards` must be a non-empty list"),
    ("s.yaml", "rewards: []\n", r"`rewards` must be a non-empty list"),
    ("s.yaml", "rewards: {reward: correctness}\n", r"`rewards` must be a non-empty list"),
    # an entry that is not a mapping, or has unknown keys
    ("s.yaml", "rewards: [correctness]\n", r"reward #1: expected a mapping"),
    (
        "s.yaml",
        "rewards:\n  - {reward: digit}\n  - {reward: format, wieght: 2}\n",
        r"reward #2: unknown key\(s\) wieght; valid: function, max, name, reward, variant, weight",
    ),
    # unknown reward: the message lists the valid names
    (
        "s.yaml",
        "rewards: [{reward: digits}]\n",
        r"reward #1: unknown reward 'digits'; valid rewards: correctness, digit, format, mark",
    ),
    # bad variant: the message lists the valid variants
    (
        "s.yaml",
        "rewards: [{reward: format, variant: loose}]\n",
        r"reward 'format' has no variant 'loose'; valid variants: strict, lenient",
    ),
    (
        "s.yaml",
        "default_variant: loose\nrewards: [{reward: format}]\n",
        r"default_variant 'loose' is not a variant; use strict or lenient",
    ),
    # bad weight
    ("s.yaml", "rewards: [{reward: digit, weight: heavy}]\n", r"weight 'heavy' is not a finite"),
    ("s.yaml", "rewards: [{reward: digit, weight: true}]\n", r"weight True is not a finite"),
    ("s.yaml", "rewards: [{reward: digit, weight: .inf}]\n", r"weight inf is not a finite"),
    ("s.yaml", "rewards: [{reward: digit, weight: .nan}]\n", r"weight nan is not a finite"),
    ("s.yaml", "rewards: [{reward: digit, weight: null}]\n", r"weight None is not a finite"),
    ("s.toml", '[[rewards]]\nreward = "digit"\nweight = "2"\n', r"weight '2' is not a finite"),
    ("s.toml", '[[rewards]]\nreward = "digit"\nweight = inf\n', r"weight inf is not a finite"),
    (
        "s.yaml",
        f"rewards: [{{reward: digit, weight: {10**400}}}]\n",  # an int beyond a float
        r"weight 1000\.\.\.000 is not a finite number",
    ),
    # reward XOR function
    (
        "s.yaml",
        "rewards: [{reward: digit, function: 'm:f'}]\n",
        r"give either `reward` \(a built-in: correctness, digit, format, mark\)",
    ),
    ("s.yaml", "rewards: [{weight: 2}]\n", r"not both or neither"),
    # a built-in's max is the spec's
    ("s.yaml", "rewards: [{reward: digit, max: 1}]\n", r"max is fixed by the spec; remove `max`"),
    # duplicate names, and the reserved name `total`
    (
        "s.yaml",
        "rewards: [{reward: digit}, {reward: digit, variant: lenient}]\n",
        r"names the reward\(s\) digit twice; give each entry a distinct `name`",
    ),
    # names that would overwrite a column of the scores
    *[
        (
            "s.yaml",
            f"rewards: [{{reward: digit, name: {name}}}]\n",
            rf"reward name\(s\) {name} would overwrite a column of the scores"
            r" \(group, id, line, scheme, total, \*_reason\); rename them with `name`",
        )
        for name in ("total", "line", "id", "group", "scheme", "digit_reason")
    ],
    # custom functions that cannot be found or used
    ("s.yaml", "rewards: [{function: no_colon}]\n", r"must be written module:function"),
    ("s.yaml", "rewards: [{function: 'mod:'}]\n", r"must be written module:function"),
    ("s.yaml", "rewards: [{function: ':fn'}]\n", r"must be written module:function"),
    (
        "s.yaml",
        "rewards: [{function: 'no_such_module_xyz:fn'}]\n",
        r"cannot import module 'no_such_module_xyz': install it, or put it beside",
    ),
    (
        "s.yaml",
        "rewards: [{function: 'missing.py:fn'}]\n",
        r"file missing.py not found",
    ),
    (
        "s.yaml",
        "rewards: [{function: 'rewardkit.rewards:no_such_fn'}]\n",
        r"module rewardkit.rewards has no 'no_such_fn'",
    ),
    (
        "s.yaml",
        "rewards: [{function: 'rewardkit.rewards:OK'}]\n",
        r"'rewardkit.rewards:OK' is not callable",
    ),
    # a custom reward's max: a finite number, 0 or more
    *[
        (
            "s.yaml",
            f"rewards: [{{function: 'rewardkit.rewards:digit_strict', max: {text}}}]\n",
            rf"max {shown} is not a finite number",
        )
        for text, shown in [
            ("high", "'high'"),
            ("true", "True"),
            (".inf", "inf"),
            ("-.inf", "-inf"),
            (".nan", "nan"),
            (str(10**400), r"1000\.\.\.000"),
        ]
    ],
    (
        "s.toml",
        '[[rewards]]\nfunction = "rewardkit.rewards:digit_strict"\nmax = nan\n',
        r"max nan is not a finite number",
    ),
    (
        "s.yaml",
        "rewards: [{function: 'rewardkit.rewards:digit_strict', max: -0.5}]\n",
        r"max -0.5 is negative; `max` is the largest value the function returns, 0 or more",
    ),
    # a name, where given, is a non-empty string: YAML reads `name:` as null, `no` as False
    *[
        (
            "s.yaml",
            f"rewards: [{{{entry}, name: {text}}}]\n",
            rf"reward #1: name {shown} is not a name; write a non-empty string",
        )
        for entry in ("reward: digit", "function: 'rewardkit.rewards:digit_strict'")
        for text, shown in [("null", "None"), ("''", "''"), ("no", "False"), ("2024", "2024")]
    ],
    ("s.yaml", "rewards:\n  - reward: digit\n    name:\n", r"name None is not a name"),
    # names that would break a file name or a column: control characters, space at an end,
    # and in a scheme's name (it names golden files and run folders) a path separator
    (
        "s.yaml",
        'name: "a\\0b"\nrewards: [{reward: digit}]\n',
        r"s.yaml: name 'a\\x00b' holds the control character '\\x00'; use printable",
    ),
    (
        "s.yaml",
        'name: " pad "\nrewards: [{reward: digit}]\n',
        r"name ' pad ' starts or ends with whitespace; remove it",
    ),
    ("s.toml", 'name = "runs/a"\n[[rewards]]\nreward = "digit"\n', r"holds '/': it names the"),
    ("s.toml", 'name = ".."\n[[rewards]]\nreward = "digit"\n', r"holds '\.\.': it names the"),
    (
        "s.yaml",
        'rewards: [{reward: digit, name: "tab\\there"}]\n',
        r"reward #1: name 'tab\\there' holds the control character '\\t'",
    ),
    ("s.yaml", "rewards: [{reward: digit, name: ' d'}]\n", r"name ' d' starts or ends with"),
    ("s.yaml", "name:\nrewards: [{reward: digit}]\n", r"s.yaml: name None is not a name"),
    (
        "s.yaml",
        "rewards: [{function: 'rewardkit.rewards:digit_strict', variant: strict}]\n",
        r"`variant` is for built-in rewards; remove it",
    ),
]


@pytest.mark.parametrize(("filename", "text", "error"), SCHEME_ERRORS)
def test_scheme_errors_name_the_file_and_the_fix(
    tmp_path: Path, filename: str, text: str, error: str
) -> None:
    path = tmp_path / filename
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SchemeError, match=error) as raised:
        load_scheme_file(path)
    assert str(raised.value).startswith(str(path))


def test_a_penalty_may_declare_max_zero(tmp_path: Path) -> None:
    # a reward that is never positive declares 0 and adds at best 0 to the total
    path = _write(
        tmp_path / "s.yaml",
        """
        rewards:
          - {reward: correctness}
          - {name: penalty, function: "rewardkit.rewards:digit_strict", max: 0, weight: -1}
        """,
    )
    scheme = load_scheme_file(path)
    assert scheme.rewards[1].max == 0.0
    assert scheme.max_total == 2.0
    # A custom reward with a negative weight adds at best weight * its smallest value,
    # which no scheme declares: the largest total is unknown (it was taken to be 0).
    negative = _write(
        tmp_path / "n.yaml",
        """
        rewards:
          - {reward: correctness}
          - {name: neg, function: "rewardkit.rewards:digit_strict", max: 0, weight: -1}
          - {name: long, function: "rewardkit.schemes:resolve_function", max: 0, weight: -1}
        """,
    )
    assert load_scheme_file(negative).max_total is None


def test_missing_scheme_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(SchemeError, match="scheme file not found"):
        get_scheme(str(path))


def test_unreadable_scheme_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SchemeError, match="cannot read the scheme file"):
        load_scheme_file(path)


def test_custom_module_whose_own_import_is_missing(tmp_path: Path) -> None:
    # the module is importable; what is missing is one of ITS imports: say which
    module = _module_name()
    (tmp_path / f"{module}.py").write_text("import no_such_dependency_xyz\n", encoding="utf-8")
    monkeypatch_path = str(tmp_path)
    sys.path.insert(0, monkeypatch_path)  # undone by the autouse fixture
    path = _write(tmp_path / "s.yaml", f'rewards:\n  - {{function: "{module}:f"}}\n')
    with pytest.raises(SchemeError, match="no_such_dependency_xyz"):
        load_scheme_file(path)


def test_custom_module_beside_the_scheme_whose_own_import_is_missing(tmp_path: Path) -> None:
    module = _module_name()
    (tmp_path / f"{module}.py").write_text("import no_such_dependency_xyz\n", encoding="utf-8")
    path = _write(tmp_path / "s.yaml", f'rewards:\n  - {{function: "{module}:f"}}\n')
    with pytest.raises(SchemeError, match="no_such_dependency_xyz"):
        load_scheme_file(path)


# --- schemes built in code -----------------------------------------------------------------


def test_scheme_without_rewards() -> None:
    with pytest.raises(SchemeError, match="has no rewards; list at least one"):
        Scheme("empty", ())


def test_scheme_with_duplicate_names() -> None:
    digit = STRICT.rewards[1]
    with pytest.raises(SchemeError, match=r"names the reward\(s\) digit twice"):
        Scheme("twice", (digit, digit))


def test_scheme_total_is_the_weighted_sum() -> None:
    rewards = tuple(
        SchemeReward(r.name, r.fn, w, r.max, r.variant)
        for r, w in zip(LENIENT.rewards, (2.0, 0.0, -1.0, 4.0), strict=True)
    )
    scheme = Scheme("weighted", rewards)
    scores = scheme.score("<answer>123</answer>", "123")
    assert scheme.total(scores) == 2.0 * 2.0 + 0.0 * 0.5 - 1.0 * 0.25 + 4.0 * 0.25
    # a penalty (negative weight) adds at best 0 to the largest possible total
    assert scheme.max_total == 2.0 * 2.0 + 0.0 + 0.0 + 4.0 * 0.5


def test_a_reward_file_imports_a_module_beside_it(tmp_path: Path) -> None:
    """`import helper` works as it does when Python runs the file itself."""
    helper = _module_name()
    (tmp_path / "lib").mkdir()
    _write(tmp_path / "lib" / f"{helper}.py", "def half():\n    return 0.5\n")
    _write(
        tmp_path / "lib" / "rew.py", f"import {helper}\ndef r(c, a):\n    return {helper}.half()\n"
    )
    scheme = _write(tmp_path / "s.yaml", "rewards:\n  - {function: lib/rew.py:r, max: 1}\n")
    loaded = load_scheme_file(scheme)
    assert loaded.score("x", "1")[loaded.rewards[0].name].value == 0.5


def test_a_module_beside_the_scheme_is_not_silently_replaced(tmp_path: Path) -> None:
    # Two schemes in two folders, each with its own `rewards_<id>.py`: Python imports the
    # name once, so the second scheme scored with the first folder's code, without a word
    # (then, an error); each is now loaded from its own folder.
    module = _module_name()
    for folder, value in (("a", 1.0), ("b", 0.0)):
        (tmp_path / folder).mkdir()
        _write(tmp_path / folder / f"{module}.py", f"def fn(c, a):\n    return {value}\n")
        _write(tmp_path / folder / "s.yaml", f'rewards:\n  - {{function: "{module}:fn"}}\n')
    assert load_scheme_file(tmp_path / "a" / "s.yaml").score("x", "1")["fn"].value == 1.0
    assert load_scheme_file(tmp_path / "b" / "s.yaml").score("x", "1")["fn"].value == 0.0
    assert load_scheme_file(tmp_path / "a" / "s.yaml").score("x", "1")["fn"].value == 1.0


def test_an_importable_module_beside_another_of_its_name_is_an_error(tmp_path: Path) -> None:
    # Python's ordinary import (here PYTHONPATH) comes first, as documented: the file
    # beside the scheme is not used, and the error names both files.
    module = _module_name()
    for folder, value in (("path", 1.0), ("scheme", 0.0)):
        (tmp_path / folder).mkdir()
        _write(tmp_path / folder / f"{module}.py", f"def fn(c, a):\n    return {value}\n")
    sys.path.insert(0, str(tmp_path / "path"))
    scheme = _write(tmp_path / "scheme" / "s.yaml", f'rewards:\n  - {{function: "{module}:fn"}}\n')
    with pytest.raises(SchemeError) as caught:
        load_scheme_file(scheme)
    message = str(caught.value)
    assert f"the module {module!r} Python imports is {tmp_path / 'path' / module}.py" in message
    assert f"not the {tmp_path / 'scheme' / module}.py beside the scheme file" in message
    assert f"name the file instead ({module}.py:fn)" in message


def test_a_module_imported_before_from_elsewhere_is_an_error(tmp_path: Path) -> None:
    # imported from a folder that was on sys.path then, while the search finds another
    module = _module_name()
    for folder in ("old", "new"):
        (tmp_path / folder).mkdir()
        _write(tmp_path / folder / f"{module}.py", "def fn(c, a):\n    return 1.0\n")
    sys.path.insert(0, str(tmp_path / "old"))
    __import__(module)
    sys.path[0] = str(tmp_path / "new")
    scheme = _write(tmp_path / "s.yaml", f'rewards:\n  - {{function: "{module}:fn"}}\n')
    with pytest.raises(SchemeError) as caught:
        load_scheme_file(scheme)
    message = str(caught.value)
    assert f"imported the module {module!r} from {tmp_path / 'old' / module}.py" in message
    assert f"now finds {tmp_path / 'new' / module}.py" in message


def test_a_file_reward_does_not_change_how_a_later_module_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The reviewer's case: scheme b names other2/my_rewards.py by path, scheme a names
    # `my_rewards:brevity`, found in the working folder. Loading b put other2 on sys.path
    # for good, and a then scored with other2's function, silently.
    module = _module_name()
    (tmp_path / "proj" / "configs").mkdir(parents=True)
    (tmp_path / "other2").mkdir()
    _write(tmp_path / "proj" / f"{module}.py", 'def brevity(c, a):\n    return 0.1, "proj"\n')
    _write(tmp_path / "other2" / f"{module}.py", 'def brevity(c, a):\n    return 0.9, "other"\n')
    a = _write(
        tmp_path / "proj" / "configs" / "a.yaml",
        f'name: a\nrewards:\n  - {{function: "{module}:brevity", max: 1}}\n',
    )
    b = _write(
        tmp_path / "other2" / "b.toml",
        f'name = "b"\n[[rewards]]\nfunction = "{module}.py:brevity"\nmax = 1\n',
    )
    monkeypatch.chdir(tmp_path / "proj")
    path_before = list(sys.path)
    b_scheme, a_scheme = schemes_of([str(b), "configs/a.yaml"])
    assert sys.path == path_before  # loading a scheme leaves sys.path alone
    assert b_scheme.score("x", "1")["brevity"] == Reward(0.9, "other")
    assert a_scheme.score("x", "1")["brevity"] == Reward(0.1, "proj")
    assert load_scheme_file(a).score("x", "1")["brevity"] == Reward(0.1, "proj")
    # and so in scoring workers, forked or spawned, which get the schemes pickled
    assert pickle.loads(pickle.dumps(a_scheme)).score("x", "1")["brevity"].value == 0.1
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        scores = pool.apply(_score_pickled, (pickle.dumps(a_scheme),))
    assert scores == {"brevity": Reward(0.1, "proj")}


def test_a_package_beside_the_scheme_reaches_a_spawned_process(tmp_path: Path) -> None:
    # a package found beside the scheme is loaded under a name of its own: a spawned process
    # loads it again from its folder, relative imports included
    package = _module_name()
    (tmp_path / package).mkdir()
    _write(tmp_path / package / "__init__.py", "HALF = 0.5\n")
    _write(tmp_path / package / "r.py", "from . import HALF\ndef fn(c, a):\n    return HALF\n")
    scheme = load_scheme_file(
        _write(tmp_path / "s.yaml", f'rewards:\n  - {{function: "{package}.r:fn"}}\n')
    )
    assert scheme.score("x", "1") == {"fn": Reward(0.5, "ok")}
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        scores = pool.apply(_score_pickled, (pickle.dumps(scheme),))
    assert scores == {"fn": Reward(0.5, "ok")}


def test_a_reward_that_calls_sys_exit_is_named(tmp_path: Path) -> None:
    quits = Scheme("q", (SchemeReward("quits", lambda c, a: sys.exit(3)),))
    with pytest.raises(RewardError, match="reward 'quits' raised SystemExit: 3"):
        quits.score("x", "1")


def test_a_package_folder_beside_the_scheme_is_not_silently_replaced(tmp_path: Path) -> None:
    # a folder without __init__.py (a namespace package) was not checked
    package = _module_name()
    for folder, value in (("a", 1.0), ("b", 0.0)):
        (tmp_path / folder / package).mkdir(parents=True)
        _write(tmp_path / folder / package / "r.py", f"def fn(c, a):\n    return {value}\n")
        _write(tmp_path / folder / "s.yaml", f'rewards:\n  - {{function: "{package}.r:fn"}}\n')
    assert load_scheme_file(tmp_path / "a" / "s.yaml").score("x", "1")["fn"].value == 1.0
    assert load_scheme_file(tmp_path / "b" / "s.yaml").score("x", "1")["fn"].value == 0.0
    missing = _write(tmp_path / "a" / "m.yaml", f'rewards:\n  - {{function: "{package}.q:fn"}}\n')
    with pytest.raises(SchemeError, match=rf"{package} holds no module q"):
        load_scheme_file(missing)


def test_an_importable_modules_own_import_error_names_its_line(tmp_path: Path) -> None:
    # importable already (PYTHONPATH, installed, loaded before): its ImportError went out
    # bare, without the reward, the module or the line
    module = _module_name()
    _write(tmp_path / f"{module}.py", "from math import nope\ndef fn(c, a):\n    return 1.0\n")
    sys.path.insert(0, str(tmp_path))
    scheme = _write(tmp_path / "s.yaml", f'rewards:\n  - {{function: "{module}:fn"}}\n')
    with pytest.raises(SchemeError) as caught:
        load_scheme_file(scheme)
    assert f"custom reward '{module}:fn': importing {module} raised ImportError" in str(
        caught.value
    )
    assert f"{module}.py:1" in str(caught.value)


def test_a_duplicate_key_in_a_scheme_file_is_an_error(tmp_path: Path) -> None:
    # YAML's safe_load kept the last one: the first rewards list was dropped, silently.
    text = "rewards:\n  - {reward: correctness, weight: 2.0}\nrewards:\n  - {reward: format}\n"
    path = _write(tmp_path / "dup.yaml", text)
    with pytest.raises(SchemeError, match=r"duplicate key 'rewards' \(first on line 1\)"):
        load_scheme_file(path)
    same_line = _write(tmp_path / "w.yaml", "rewards:\n  - {reward: mark, weight: 2, weight: 5}\n")
    with pytest.raises(SchemeError, match="duplicate key 'weight'"):
        load_scheme_file(same_line)


def test_exponent_numbers_in_yaml_are_numbers(tmp_path: Path) -> None:
    # YAML 1.1 reads 1e-3 as text: "weight '1e-3' is not a finite number"; TOML took it.
    path = _write(tmp_path / "e.yaml", "rewards:\n  - {reward: correctness, weight: 1e-3}\n")
    assert load_scheme_file(path).rewards[0].weight == 0.001


# --- totals beyond the float range ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "error"),
    [
        # one reward's weight * max is inf
        (
            "rewards:\n  - {reward: correctness, weight: 1.0e+308}\n",
            r"reward 'correctness' weighs 1e\+308 and may give 2, and 1e\+308 \* 2 is beyond",
        ),
        # each is finite, their sum is not (a negative weight counts: the total may be -inf)
        (
            "rewards:\n  - {reward: correctness, weight: 8.0e+307}\n"
            "  - {reward: mark, weight: -1.0e+308}\n",
            r"its rewards' weight \* max add up beyond the float range",
        ),
        (
            "rewards:\n  - {reward: digit, weight: 1.0e+308}\n"
            "  - {function: 'rewardkit.rewards:digit_strict', max: 1, weight: 1.5e+308}\n",
            r"so a total would be inf; lower the weights",
        ),
    ],
)
def test_a_scheme_whose_total_may_overflow_is_refused(
    tmp_path: Path, text: str, error: str
) -> None:
    # weights of 1.0e+308 gave totals of inf: `score --json` and `golden update` ended in
    # "ValueError: Out of range float values are not JSON compliant", training crashed later
    path = _write(tmp_path / "w.yaml", text)
    with pytest.raises(SchemeError, match=error) as caught:
        load_scheme_file(path)
    assert str(caught.value).startswith(f"{path}: scheme 'w': ")


def _overflowing_schemes(tmp_path: Path) -> tuple[Path, Path]:
    """Two schemes that overflow only on the rows: a custom reward of 1e308 weighing 10,
    and two of them weighing 1 (each finite, the sum not)."""
    module = _module_name()
    _write(tmp_path / f"{module}.py", USER_REWARDS)
    one = _write(
        tmp_path / "one.yaml",
        f'rewards:\n  - {{function: "{module}:almost_max_float", weight: 10}}\n',
    )
    two = _write(
        tmp_path / "two.yaml",
        "rewards:\n"
        f'  - {{name: a, function: "{module}:almost_max_float"}}\n'
        f'  - {{name: b, function: "{module}:almost_max_float"}}\n'
        "  - {reward: correctness}\n",
    )
    return one, two


def test_a_weighted_value_or_total_beyond_the_float_range_is_a_reward_error(
    tmp_path: Path,
) -> None:
    one, two = _overflowing_schemes(tmp_path)
    with pytest.raises(
        RewardError,
        match=r"reward 'almost_max_float' returned 1e\+308, which times its weight 10 is beyond",
    ):
        load_scheme_file(one).score("x", "1")
    scheme = load_scheme_file(two)
    scores = scheme.score("x", "1")  # each value is fine
    with pytest.raises(
        RewardError,
        match=r"scheme 'two': the weighted total is inf: a 1e\+308 \* weight 1, b 1e\+308 \*"
        r" weight 1, correctness 0 \* weight 1 add up beyond the float range",
    ):
        scheme.total(scores)


@pytest.mark.parametrize("which", ["one", "two"])
def test_score_and_golden_refuse_a_total_of_inf(tmp_path: Path, capsys: Any, which: str) -> None:
    scheme = dict(zip(("one", "two"), _overflowing_schemes(tmp_path), strict=True))[which]
    data = tmp_path / "c.jsonl"
    data.write_text(
        '{"completion": "<answer>1</answer>", "answer": "1"}\n{"completion": "x", "answer": "2"}\n',
        encoding="utf-8",
    )
    assert main(["score", str(data), "--scheme", str(scheme), "--json"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "not JSON compliant" not in err
    assert f"error: {data}, line 1: " in err and "beyond the float range" in err
    # with --on-error skip every row is listed (code reward_error), none has a total of inf
    assert main(["score", str(data), "--scheme", str(scheme), "--on-error", "skip"]) == 2
    assert "no line could be scored (2 skipped" in capsys.readouterr().err
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"id": "c1", "completion": "x", "answer": "1"}\n', encoding="utf-8")
    argv = ["golden", "update", "--scheme", str(scheme), "--cases", str(cases)]
    assert main([*argv, "--expected", str(tmp_path / "expected")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"error: case 'c1', scheme '{which}': " in err and "beyond the float range" in err
    assert not (tmp_path / "expected" / f"{which}.jsonl").exists()


def test_only_the_rows_whose_total_overflows_are_skipped(tmp_path: Path) -> None:
    # the total of a row is checked, not the scheme as a whole: the other rows are scored
    module = _module_name()
    _write(
        tmp_path / f"{module}.py",
        "def big(c, a):\n    return 1e308 if c == 'big' else 1.0\n",
    )
    path = _write(
        tmp_path / "s.yaml",
        f'rewards:\n  - {{name: a, function: "{module}:big"}}\n'
        f'  - {{name: b, function: "{module}:big"}}\n',
    )
    data = tmp_path / "c.jsonl"
    rows = ["ok", "big", "ok"]
    data.write_text(
        "".join(f'{{"completion": "{c}", "answer": "1"}}\n' for c in rows), encoding="utf-8"
    )
    result = score_file(data, [str(path)], on_error="skip", workers=1)
    assert result.frame["line"].tolist() == [1, 3]
    assert result.frame["total"].tolist() == [2.0, 2.0]
    assert [(s.line, s.code) for s in result.skipped] == [(2, "reward_error")]


# --- reasons -------------------------------------------------------------------------------


def test_a_reason_with_a_lone_surrogate_is_kept_escaped(tmp_path: Path, capsys: Any) -> None:
    # a reason quoting a completion that began with a JSON "\ud800" escape: every `score`
    # ended in "UnicodeEncodeError: surrogates not allowed", `golden update` too
    path, _ = _user_scheme(tmp_path, "quotes")
    scheme = load_scheme_file(path)
    assert scheme.score("\ud800abcdef", "1")["quotes"] == Reward(0.5, "\\ud800abcd")
    assert scheme.score("café!!", "1")["quotes"] == Reward(0.5, "café!")  # the rest is kept
    data = tmp_path / "c.jsonl"
    data.write_text('{"completion": "\\ud800abcdef", "answer": "1"}\n', encoding="utf-8")
    out = tmp_path / "scores.csv"
    assert main(["score", str(data), "--scheme", str(path), "--out", str(out)]) == 0
    assert "\\ud800abcd" in out.read_text(encoding="utf-8")
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"id": "c1", "completion": "\\ud800abcdef", "answer": "1"}\n')
    argv = ["golden", "update", "--scheme", str(path), "--cases", str(cases)]
    assert main([*argv, "--expected", str(tmp_path / "expected")]) == 0
    record = json.loads((tmp_path / "expected" / "s.jsonl").read_text(encoding="utf-8"))
    assert record["quotes_reason"] == "\\ud800abcd"
    assert "Traceback" not in capsys.readouterr().err


def test_a_bad_name_is_refused_in_python_and_on_the_command_line(
    tmp_path: Path, capsys: Any
) -> None:
    # `golden update` ended in "ValueError: embedded null byte", or wrote " pad .jsonl"
    digit = STRICT.rewards[1]
    with pytest.raises(SchemeError, match=r"scheme name 'a\\x00b' holds the control character"):
        Scheme("a\0b", (digit,))
    with pytest.raises(SchemeError, match=r"reward name 'r\\n' holds the control character"):
        SchemeReward("r\n", digit.fn)
    # a name taken from the file's name says where to set one
    path = _write(tmp_path / " pad .yaml", "rewards: [{reward: digit}]\n")
    with pytest.raises(
        SchemeError, match=r"starts or ends with whitespace; remove it \(set `name:`"
    ):
        load_scheme_file(path)
    cases = tmp_path / "cases.jsonl"
    cases.write_text('{"id": "c1", "completion": "x", "answer": "1"}\n', encoding="utf-8")
    for text in ('name: "a\\0b"', 'name: " pad "'):
        scheme = _write(tmp_path / "s.yaml", f"{text}\nrewards: [{{reward: digit}}]\n")
        argv = ["golden", "update", "--scheme", str(scheme), "--cases", str(cases)]
        assert main([*argv, "--expected", str(tmp_path / "expected")]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {scheme}: name ") and "Traceback" not in err
    assert not (tmp_path / "expected").exists()


@pytest.mark.parametrize(
    ("completion", "maximum", "value"),
    [
        # above the max by rounding alone: read as the max, so "of max" and "all max" count it
        ("abc", 0.3, 0.3),
        # below the max by rounding: kept as it is (`max` is no clamp)
        ("a" * 10, 1.0, 0.9999999999999999),
    ],
)
def test_a_value_above_max_by_rounding_is_the_max(
    tmp_path: Path, completion: str, maximum: float, value: float
) -> None:
    # 0.1 + 0.1 + 0.1 with `max: 0.3` stopped: "returned 0.30000000000000004, above its
    # declared max 0.3"
    path, _ = _user_scheme(tmp_path, "tenths", f", max: {maximum}")
    assert load_scheme_file(path).score(completion, "1")["tenths"] == Reward(value, "ok")


def test_a_value_above_max_by_more_than_rounding_is_still_an_error(tmp_path: Path) -> None:
    path, _ = _user_scheme(tmp_path, "tenths", ", max: 0.29999")
    with pytest.raises(RewardError, match=r"returned 0.30000000000000004, above its declared"):
        load_scheme_file(path).score("abc", "1")


@pytest.mark.parametrize(("filename", "text"), [("s.toml", TOML_SCHEME), ("s.yaml", YAML_SCHEME)])
def test_a_scheme_file_may_start_with_a_bom(tmp_path: Path, filename: str, text: str) -> None:
    # TOML said "Invalid statement (at line 1, column 1)" where YAML took the file
    path = tmp_path / filename
    path.write_bytes(b"\xef\xbb\xbf" + textwrap.dedent(text).lstrip().encode("utf-8"))
    scheme = load_scheme_file(path)
    assert (scheme.name, scheme.reward_names) == ("my_scheme", ("correctness", "format", "mark"))


# --- rewards that cannot be called as fn(completion, answer) -------------------------------

WRONG_SIGNATURES = """
def one(completion):
    return 1.0

def three(completion, answer, gold):
    return 1.0

def keywords(*, completion, answer):
    return 1.0

def extra(completion, answer, scale=1.0, *rest):
    return scale
"""


@pytest.mark.parametrize(
    ("function", "problem"),
    [
        # a parameter too few or too many, or keyword-only: named with its file and line
        (
            "one",
            "one(completion) (at {file}:1) cannot be called as fn(completion, answer): too"
            " many positional arguments",
        ),
        (
            "three",
            "three(completion, answer, gold) (at {file}:4) cannot be called as fn("
            "completion, answer): missing a required argument: 'gold'",
        ),
        ("keywords", "keywords(*, completion, answer) (at {file}:7) cannot be called"),
    ],
)
def test_a_reward_with_the_wrong_parameters_is_refused_when_the_scheme_loads(
    tmp_path: Path, function: str, problem: str
) -> None:
    # it failed on the first row with "one() takes 1 positional argument but 2 were
    # given": no file, no line, and not what a reward takes
    file = _write(tmp_path / "signatures.py", WRONG_SIGNATURES)
    path = _write(tmp_path / "s.yaml", f'rewards:\n  - {{function: "signatures.py:{function}"}}\n')
    with pytest.raises(SchemeError) as caught:
        load_scheme_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: reward #1: custom reward 'signatures.py:{function}': ")
    assert problem.format(file=file) in message
    assert message.endswith(
        f"; a reward takes two arguments, the completion and the answer: def {function}"
        "(completion, answer)"
    )


def test_a_reward_with_defaults_or_star_args_loads(tmp_path: Path) -> None:
    _write(tmp_path / "signatures.py", WRONG_SIGNATURES)
    path = _write(tmp_path / "s.yaml", 'rewards:\n  - {function: "signatures.py:extra"}\n')
    assert load_scheme_file(path).score("x", "1") == {"extra": Reward(1.0, "ok")}


def test_a_reward_built_in_python_with_the_wrong_parameters_names_its_line() -> None:
    def brevity(completion: str) -> float:
        return 1.0

    scheme = Scheme("s", (SchemeReward("brevity", brevity),))  # type: ignore[arg-type]
    with pytest.raises(RewardError) as caught:
        scheme.score("x", "1")
    line = brevity.__code__.co_firstlineno
    assert str(caught.value) == (
        f"reward 'brevity': brevity(completion) (at {__file__}:{line}) cannot be"
        " called as fn(completion, answer): too many positional arguments; a reward takes two"
        " arguments, the completion and the answer: def brevity(completion, answer)"
    )
    # a TypeError the function itself raises is reported as before, at its own line
    raises = Scheme("r", (SchemeReward("r", lambda c, a: len(5)),))  # type: ignore[arg-type]
    with pytest.raises(RewardError, match=r"reward 'r' raised TypeError: object of type 'int'"):
        raises.score("x", "1")


def test_rewards_of_one_module_share_it_within_a_scheme(tmp_path: Path) -> None:
    # Loaded by location once per reward entry, the module ran twice and each reward had
    # its own state; and a package's second submodule unloaded the first, so the adapters'
    # cache did not see an edit of the first.
    _write(
        tmp_path / "rw.py",
        """
        CALLS = []
        def a(completion, answer):
            CALLS.append(1)
            return 1.0
        def b(completion, answer):
            return float(len(CALLS))
        """,
    )
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "one.py").write_text("def f(completion, answer):\n    return 1.0\n")
    (tmp_path / "pkg" / "two.py").write_text("def g(completion, answer):\n    return 0.5\n")
    path = _write(
        tmp_path / "s.yaml",
        """
        rewards:
          - {function: "rw:a", max: 1}
          - {function: "rw:b", max: 9}
          - {function: "pkg.one:f", max: 1}
          - {function: "pkg.two:g", max: 1}
        """,
    )
    scheme = load_scheme_file(path)
    scores = scheme.score("x", "1")  # a, then b, which sees a's call
    assert [scores["a"].value, scores["b"].value] == [1.0, 1.0]
    files = {Path(f).name for f in source_files(scheme)}
    assert {"rw.py", "one.py", "two.py"} <= files


def test_a_decorated_reward_is_called_as_its_decorator_says(tmp_path: Path) -> None:
    # inspect.signature followed __wrapped__ to the inner function's three parameters, and
    # the scheme was refused although the decorator supplies the third.
    _write(
        tmp_path / "deco.py",
        """
        import functools

        def limited(fn):
            @functools.wraps(fn)
            def wrapper(completion, answer):
                return fn(completion, answer, 10)
            return wrapper

        @limited
        def short(completion, answer, limit):
            return 1.0 if len(completion) <= limit else 0.0
        """,
    )
    path = _write(tmp_path / "s.yaml", 'rewards:\n  - {function: "deco.py:short", max: 1}\n')
    assert load_scheme_file(path).score("abc", "1")["short"].value == 1.0
