"""rewardkit.integrations.verl: verl's custom reward function contract, without verl.

verl loads ``reward.custom_reward_function.path`` as a file under a module name of its own
(``verl/utils/import_utils.py`` ``load_module``), wraps the function so the config's
``reward_kwargs`` are merged into every call (``verl/trainer/ppo/reward.py``
``get_custom_reward_fn``), calls it with keywords, takes ``result["score"]`` as the reward,
and collects every key of the dict into ``reward_extra_info`` lists that become numpy arrays
(``verl/workers/reward_manager/naive.py``, ``verl/trainer/ppo/ray_trainer.py``). The tests
below do the same steps.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import rewardkit.integrations.verl as verl_integration
from rewardkit.integrations.verl import compute_score
from rewardkit.schemes import LENIENT, STRICT, Scheme, get_scheme
from rewardkit.score import score_records

WELL_FORMED = "<think>\n8 * 9 = 72\n</think>\n<answer>\n72\n</answer>\n"
RESPONSES = [
    WELL_FORMED,
    "<answer>72</answer>",  # no think pair
    "<think>hm</think><answer>$72.00</answer>",  # right number, not the gold text
    "8 times 9 is 72.",  # no tags: lenient reads the last number
    "<answer> 7,2",  # unclosed
    "<answer>\n71\n</answer>\n",  # wrong
    "",  # empty
]
REWARDS = ["correctness", "digit", "format", "mark"]

# The extra_info verl hands over for a row of its GSM8K preprocessing
# (examples/data_preprocess/gsm8k.py), after the reward manager adds its own keys.
GSM8K_EXTRA_INFO = {
    "split": "train",
    "index": 0,
    "answer": "Natalia sold 48/2 = 24 clips in May. ... #### 72",
    "question": "Natalia sold clips to 48 of her friends ...",
    "num_turns": None,
    "rollout_reward_scores": {},
}


def rewardkit_score(scheme: Scheme, response: str, gold: str) -> dict[str, Any]:
    """What `rewardkit score` gives one row, as the dict compute_score should return."""
    frame = score_records([{"completion": response, "answer": gold}], [scheme])
    row = frame.iloc[0]
    out: dict[str, Any] = {"score": float(row["total"])}
    out |= {name: float(row[name]) for name in scheme.reward_names}
    out |= {name + "_reason": str(row[name + "_reason"]) for name in scheme.reward_names}
    return out


def load_like_verl() -> Callable[..., Any]:
    """Load the file as verl's load_module does: by path, under a module name of its own."""
    path = Path(verl_integration.__file__)
    spec = importlib.util.spec_from_file_location(f"custom_module_{hash(str(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function: Callable[..., Any] = module.compute_score
    return function


def with_reward_kwargs(raw_fn: Callable[..., Any], reward_kwargs: dict[str, Any]) -> Any:
    """verl's get_custom_reward_fn: the config's reward_kwargs win over call-time keywords."""

    def call_with_kwargs(extra: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        return raw_fn(*args, **{**kwargs, **extra})

    return partial(call_with_kwargs, reward_kwargs)


# --- values: the same as `rewardkit score` ----------------------------------------------------


@pytest.mark.parametrize("scheme", [STRICT, LENIENT], ids=["strict", "lenient"])
@pytest.mark.parametrize("gold", ["72", "#### 72", "Natalia sold ... #### 72"])
def test_dict_equals_rewardkit_score(scheme: Scheme, gold: str) -> None:
    for response in RESPONSES:
        got = compute_score("openai/gsm8k", response, gold, scheme=scheme.name)
        assert got == rewardkit_score(scheme, response, gold)


def test_gsm8k_gold_forms_score_alike() -> None:
    for response in RESPONSES:
        plain = compute_score("openai/gsm8k", response, "72")
        assert compute_score("openai/gsm8k", response, "#### 72") == plain
        assert compute_score("openai/gsm8k", response, 72) == plain  # a number, as parquet may hold


def test_well_formed_response_scores_the_maximum() -> None:
    for scheme in ["strict", "lenient"]:
        result = compute_score("openai/gsm8k", WELL_FORMED, "#### 72", scheme=scheme)
        assert result["score"] == 3.5
        assert [result[n + "_reason"] for n in REWARDS] == ["ok"] * 4


def test_data_source_is_not_used() -> None:
    a = compute_score("openai/gsm8k", RESPONSES[1], "72")
    assert compute_score("anything/else", RESPONSES[1], "72") == a
    assert compute_score(None, RESPONSES[1], "72") == a


def test_chat_message_list_scores_the_last_assistant_message() -> None:
    messages = [{"role": "assistant", "content": WELL_FORMED}]
    assert compute_score("openai/gsm8k", messages, "72") == compute_score(
        "openai/gsm8k", WELL_FORMED, "72"
    )


# --- choosing the scheme ----------------------------------------------------------------------


def test_default_scheme_is_lenient() -> None:
    response = "<answer>72</answer>"
    assert compute_score("openai/gsm8k", response, "72") == rewardkit_score(LENIENT, response, "72")


def test_extra_info_scheme_picks_the_scheme_and_wins_over_the_argument() -> None:
    response = "<answer>72</answer>"
    strict = rewardkit_score(STRICT, response, "72")
    assert compute_score("s", response, "72", extra_info={"scheme": "strict"}) == strict
    assert compute_score("s", response, "72", {"scheme": "strict"}, scheme="lenient") == strict
    assert compute_score("s", response, "72", {"scheme": "lenient"}, scheme="strict") == (
        rewardkit_score(LENIENT, response, "72")
    )


def test_extra_info_without_scheme_or_none_keeps_the_argument() -> None:
    response = "<answer>72</answer>"
    strict = rewardkit_score(STRICT, response, "72")
    assert compute_score("s", response, "72", GSM8K_EXTRA_INFO, scheme="strict") == strict
    assert compute_score("s", response, "72", None, scheme="strict") == strict
    # A parquet column set on some rows only comes back as None on the others.
    unset = {**GSM8K_EXTRA_INFO, "scheme": None}
    assert compute_score("s", response, "72", unset, scheme="strict") == strict


def test_scheme_file_and_scheme_object(tmp_path: Path) -> None:
    path = tmp_path / "weighted.yaml"
    path.write_text(
        "name: weighted\nrewards:\n"
        "  - {reward: correctness, variant: lenient, weight: 2.0}\n"
        "  - {reward: format, variant: strict, weight: 0.5}\n",
        encoding="utf-8",
    )
    scheme = get_scheme(str(path))
    for response in RESPONSES:
        want = rewardkit_score(scheme, response, "72")
        assert compute_score("s", response, "72", scheme=str(path)) == want
        assert compute_score("s", response, "72", scheme=path) == want
        assert compute_score("s", response, "72", scheme=scheme) == want
        assert compute_score("s", response, "72", {"scheme": str(path)}) == want
    assert set(want) == {"score", "correctness", "format", "correctness_reason", "format_reason"}


def test_unknown_scheme_raises() -> None:
    with pytest.raises(ValueError, match="unknown scheme 'relaxed'"):
        compute_score("s", "x", "1", {"scheme": "relaxed"})
    with pytest.raises(TypeError, match=r"extra_info\['scheme'\]"):
        compute_score("s", "x", "1", {"scheme": 3})


# --- what verl expects back -------------------------------------------------------------------


def test_return_types_are_what_verl_stores() -> None:
    for scheme in ["strict", "lenient"]:
        for response in RESPONSES:
            result = compute_score("openai/gsm8k", response, "72", scheme=scheme)
            assert isinstance(result, dict)
            assert next(iter(result)) == "score"
            assert list(result) == [
                "score",
                *REWARDS,
                *(n + "_reason" for n in REWARDS),
            ]  # the same keys on every row and under both schemes: verl needs that
            for name in ["score", *REWARDS]:
                assert type(result[name]) is float and math.isfinite(result[name])
            for name in REWARDS:
                assert type(result[name + "_reason"]) is str


def test_reasons_false_leaves_numbers_only() -> None:
    result = compute_score("openai/gsm8k", RESPONSES[2], "72", reasons=False)
    assert list(result) == ["score", *REWARDS]
    assert all(type(v) is float for v in result.values())


def test_a_batch_through_verls_reward_manager_steps() -> None:
    """Load the file as verl does, merge reward_kwargs, collect reward_extra_info."""
    raw_fn = load_like_verl()
    assert raw_fn is not compute_score  # a separate module object, as in verl
    reward_fn = with_reward_kwargs(raw_fn, {"scheme": "strict"})
    rewards: list[float] = []
    reward_extra_info: dict[str, list[Any]] = defaultdict(list)
    for response in RESPONSES:
        result = reward_fn(
            data_source="openai/gsm8k",
            solution_str=response,
            ground_truth="72",
            extra_info=dict(GSM8K_EXTRA_INFO),
            reward_router_address=None,  # the reward loop adds these with a reward model
            reward_model_tokenizer=None,
        )
        rewards.append(result["score"])
        for key, value in result.items():
            reward_extra_info[key].append(value)
    want = [rewardkit_score(STRICT, r, "72") for r in RESPONSES]
    assert rewards == [w["score"] for w in want]
    arrays = {k: np.array(v) for k, v in reward_extra_info.items()}  # ray_trainer.py
    assert all(len(a) == len(RESPONSES) for a in arrays.values())
    assert arrays["correctness"].dtype == np.float64
    assert list(arrays["format_reason"]) == [w["format_reason"] for w in want]


# --- errors -----------------------------------------------------------------------------------


def test_bad_ground_truth_or_response_raise() -> None:
    with pytest.raises(ValueError, match="'ground_truth' is null") as caught:
        compute_score("s", "x", None)
    assert "--answer-key" not in str(caught.value)  # no flag of `rewardkit score` to pass here
    with pytest.raises(ValueError, match="'solution_str' is a number"):
        compute_score("s", 42, "1")
    with pytest.raises(TypeError, match="extra_info must be a dict"):
        compute_score("s", "x", "1", extra_info="strict")
    with pytest.raises(ValueError, match=r"is an array .*; fix reward_model\.ground_truth"):
        compute_score("s", "x", ["72"])
    with pytest.raises(TypeError, match="reasons must be true or false"):
        compute_score("s", "x", "1", reasons="false")  # type: ignore[arg-type]


def test_numpy_and_float_ground_truths_read_as_numbers() -> None:
    assert compute_score("s", "<answer>72</answer>", np.int64(72))["correctness"] == 2.0
    assert compute_score("s", "<answer>0.00005</answer>", 5e-05)["correctness"] == 2.0
    with pytest.raises(ValueError, match="'ground_truth' is nan, not a number"):
        compute_score("s", "<answer>1</answer>", float("nan"))


def test_completion_prefix_restores_what_the_template_wrote() -> None:
    response = "8*9\n</think>\n<answer>\n72\n</answer>\n"
    assert compute_score("s", response, "72", scheme="strict")["format"] == 0.0
    scored = compute_score("s", response, "72", scheme="strict", completion_prefix="<think>\n")
    assert scored["score"] == 3.5


def test_a_reward_named_score_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clash.yaml"
    path.write_text("rewards:\n  - {reward: correctness, name: score}\n", encoding="utf-8")
    with pytest.raises(ValueError, match="reserves"):
        compute_score("s", "x", "1", scheme=str(path))


def test_importing_the_integration_does_not_import_verl_or_torch() -> None:
    code = (
        "import sys, rewardkit.integrations.verl\n"
        "print(sorted(m for m in ('verl', 'torch', 'trl') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_float32_ground_truth_reads_as_written() -> None:
    """Widened to float64, np.float32(0.1) read as 0.10000000149011612: a right answer lost."""
    assert compute_score("s", "<answer>0.1</answer>", np.float32(0.1))["correctness"] == 2.0


def test_a_scheme_file_edited_in_the_same_process_is_read_again(tmp_path: Path) -> None:
    # the scheme cache keyed by path alone kept serving the old weights (a notebook)
    import os

    path = tmp_path / "w.yaml"
    path.write_text("rewards:\n  - {reward: correctness, weight: 1.0}\n")
    assert compute_score("s", "<answer>7</answer>", "7", scheme=str(path))["score"] == 2.0
    path.write_text("rewards:\n  - {reward: correctness, weight: 3.0}\n")
    os.utime(path, ns=(1, 10**18))  # a new modification time, however fast the writes
    assert compute_score("s", "<answer>7</answer>", "7", scheme=str(path))["score"] == 6.0


def test_a_reward_file_edited_in_the_same_process_is_read_again(tmp_path: Path) -> None:
    # The cache was keyed on the scheme file alone: after the reward's .py was edited,
    # get_scheme(path) gave the new value and compute_score(..., scheme=path) the old one.
    import os

    reward = tmp_path / "edited.py"
    reward.write_text("def f(c, a):\n    return 0.25\n")
    path = tmp_path / "s.yaml"
    path.write_text("rewards:\n  - {function: 'edited.py:f'}\n")
    assert compute_score("s", "x", "7", scheme=str(path))["f"] == 0.25
    reward.write_text("def f(c, a):\n    return 0.5\n")
    os.utime(reward, ns=(1, 10**18))  # a new modification time, however fast the writes
    assert get_scheme(str(path)).score("x", "7")["f"].value == 0.5
    assert compute_score("s", "x", "7", scheme=str(path))["f"] == 0.5
    # a package beside the scheme: its submodule is one of the files
    (tmp_path / "edited_pkg").mkdir()
    (tmp_path / "edited_pkg" / "r.py").write_text("def f(c, a):\n    return 0.25\n")
    path.write_text("rewards:\n  - {function: 'edited_pkg.r:f'}\n")
    os.utime(path, ns=(1, 2 * 10**18))
    assert compute_score("s", "x", "7", scheme=str(path))["f"] == 0.25
    (tmp_path / "edited_pkg" / "r.py").write_text("def f(c, a):\n    return 0.75\n")
    os.utime(tmp_path / "edited_pkg" / "r.py", ns=(1, 10**18))
    assert compute_score("s", "x", "7", scheme=str(path))["f"] == 0.75
