"""rewardkit.integrations.trl: TRL's reward-function contract, and a real GRPOTrainer run.

The unit tests call the reward functions as TRL 1.16's ``GRPOTrainer._calculate_rewards``
does (keywords only: ``prompts``, ``completions``, ``completion_ids``, every data set column
but the prompt, and ``trainer_state``/``log_extra``/``log_metric``). The trainer tests run
the real trainer on a tiny model built here and check that what TRL logged for each reward
is what `rewardkit.score.score_records` gives for the completions TRL generated.
"""

from __future__ import annotations

import importlib.util
import os
import pickle
import subprocess
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rewardkit.integrations.trl import RewardFunction, reward_funcs, reward_weights
from rewardkit.readers import score_format
from rewardkit.schemes import LENIENT, STRICT, Scheme, get_scheme
from rewardkit.score import score_records

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent

WELL_FORMED = "<think>\n6 * 4 = 24\n</think>\n<answer>\n24\n</answer>\n"
COMPLETIONS = [
    WELL_FORMED,
    "<answer>24</answer>",  # no think pair
    "<think>hm</think><answer>$24.00</answer>",  # right number, not the gold text
    "The answer is 24.",  # no tags: lenient reads the last number
    "<answer> 2,4",  # unclosed
    "<answer>\n25\n</answer>\n",  # wrong
    "",  # empty
]
ANSWERS = ["#### 24"] * 6 + ["24"]


def trl_kwargs(completions: list[Any], answers: list[Any], **columns: Any) -> dict[str, Any]:
    """The keywords TRL 1.16 passes to a reward function (grpo_trainer.py, _calculate_rewards)."""
    return {
        "prompts": ["Q?"] * len(completions),
        "completions": completions,
        "completion_ids": [[1, 2]] * len(completions),
        "answer": answers,
        **columns,
        "trainer_state": object(),
        "log_extra": lambda column, values: None,
        "log_metric": lambda name, value: None,
    }


def chat(content: str) -> list[dict[str, str]]:
    """A completion in TRL's conversational form."""
    return [{"role": "assistant", "content": content}]


def expected(scheme: Scheme, completions: list[Any], answers: list[Any]) -> dict[str, list[Any]]:
    """Per reward: the values `rewardkit score` gives the same rows, plus the totals."""
    frame = score_records(
        [{"completion": c, "answer": a} for c, a in zip(completions, answers, strict=True)],
        [scheme],
    )
    columns = [*scheme.reward_names, "total"]
    out: dict[str, list[Any]] = {name: frame[name].tolist() for name in columns}
    for name in scheme.reward_names:
        out[name + "_reason"] = [str(r) for r in frame[name + "_reason"]]
    return out


WEIGHTED_SCHEME = """\
name: weighted
rewards:
  - {reward: correctness, variant: lenient, weight: 2.0}
  - {reward: format, variant: strict, weight: 0.5}
  - {reward: mark, variant: lenient, weight: 0.25}
"""


@pytest.fixture
def weighted_scheme(tmp_path: Path) -> Path:
    path = tmp_path / "weighted.yaml"
    path.write_text(WEIGHTED_SCHEME, encoding="utf-8")
    return path


# --- names and weights -----------------------------------------------------------------------


def test_one_function_per_reward_named_as_trl_logs_it() -> None:
    for scheme in ["strict", "lenient", STRICT]:
        funcs = reward_funcs(scheme)
        assert [f.__name__ for f in funcs] == ["correctness", "digit", "format", "mark"]
        assert reward_weights(scheme) == [1.0, 1.0, 1.0, 1.0]


def test_trl_takes_the_name_from_dunder_name() -> None:
    trl_utils = pytest.importorskip("trl.trainer.utils", reason="trl is not installed")
    names = [trl_utils.get_callable_name(f) for f in reward_funcs("strict")]
    assert names == ["correctness", "digit", "format", "mark"]


def test_scheme_file_gives_its_names_and_weights(weighted_scheme: Path) -> None:
    for spec in [weighted_scheme, str(weighted_scheme)]:
        assert [f.__name__ for f in reward_funcs(spec)] == ["correctness", "format", "mark"]
        assert reward_weights(spec) == [2.0, 0.5, 0.25]


def test_unknown_scheme_raises_the_scheme_error() -> None:
    with pytest.raises(ValueError, match="unknown scheme 'relaxed'"):
        reward_funcs("relaxed")


# --- values: the same as `rewardkit score` ----------------------------------------------------


@pytest.mark.parametrize("scheme", [STRICT, LENIENT], ids=["strict", "lenient"])
def test_values_equal_score_records_for_plain_completions(scheme: Scheme) -> None:
    want = expected(scheme, COMPLETIONS, ANSWERS)
    for func in reward_funcs(scheme):
        assert func(**trl_kwargs(COMPLETIONS, ANSWERS)) == want[func.__name__]


@pytest.mark.parametrize("scheme", [STRICT, LENIENT], ids=["strict", "lenient"])
def test_values_equal_score_records_for_conversational_completions(scheme: Scheme) -> None:
    conversational = [chat(c) for c in COMPLETIONS]
    want = expected(scheme, COMPLETIONS, ANSWERS)
    assert want == expected(scheme, conversational, ANSWERS)  # score_records reads them alike
    for func in reward_funcs(scheme):
        assert func(**trl_kwargs(conversational, ANSWERS)) == want[func.__name__]


def test_weighted_sum_of_the_functions_is_the_scheme_total(weighted_scheme: Path) -> None:
    scheme = get_scheme(str(weighted_scheme))
    columns = [f(**trl_kwargs(COMPLETIONS, ANSWERS)) for f in reward_funcs(scheme)]
    weights = reward_weights(scheme)
    rows = zip(*columns, strict=True)
    totals = [sum(w * v for w, v in zip(weights, row, strict=True)) for row in rows]
    assert totals == expected(scheme, COMPLETIONS, ANSWERS)["total"]


def test_conversational_scores_the_last_assistant_message() -> None:
    messages = [
        {"role": "assistant", "content": "<answer>1</answer>"},
        {"role": "user", "content": "again"},
        {"role": "assistant", "content": "<answer>24</answer>"},
    ]
    correctness = reward_funcs("strict")[0]
    assert correctness(**trl_kwargs([messages], ["24"])) == [2.0]


def test_numeric_answers_are_read_as_rewardkit_score_reads_them() -> None:
    correctness = reward_funcs("lenient")[0]
    completions = ["<answer>24</answer>", "<answer>2.5</answer>"]
    assert correctness(**trl_kwargs(completions, [24, 2.5])) == [2.0, 2.0]


def test_custom_reward_in_a_scheme_file_is_coerced_like_the_cli(tmp_path: Path) -> None:
    (tmp_path / "brevity.py").write_text(
        "def brevity(completion, answer):\n    return (1 if len(completion) < 10 else 0, 'len')\n",
        encoding="utf-8",
    )
    path = tmp_path / "custom.yaml"
    path.write_text(
        "name: custom\nrewards:\n"
        "  - {reward: correctness, variant: strict}\n"
        "  - {name: brevity, function: brevity.py:brevity, max: 1.0, weight: 0.5}\n",
        encoding="utf-8",
    )
    scheme = get_scheme(str(path))
    funcs = reward_funcs(scheme)
    assert [f.__name__ for f in funcs] == ["correctness", "brevity"]
    brevity = funcs[1](**trl_kwargs(COMPLETIONS, ANSWERS))
    assert brevity == expected(scheme, COMPLETIONS, ANSWERS)["brevity"]
    assert all(type(v) is float for v in brevity)


# --- what TRL passes besides ----------------------------------------------------------------


def test_reasons_go_to_trl_log_extra() -> None:
    logged: dict[str, list[str]] = {}
    kwargs = trl_kwargs(COMPLETIONS, ANSWERS)
    kwargs["log_extra"] = lambda column, values: logged.__setitem__(column, values)
    for func in reward_funcs("strict"):
        func(**kwargs)
    want = expected(STRICT, COMPLETIONS, ANSWERS)
    reasons = {n + "_reason": want[n + "_reason"] for n in STRICT.reward_names}
    assert logged == reasons
    # asked to, the first function logs the golds once, so TRL's table can be scored again
    logged.clear()
    for func in reward_funcs("strict", log_answer=True):
        func(**kwargs)
    assert logged == {**reasons, "answer": ANSWERS}


def test_works_without_trl_extras_and_with_positional_arguments() -> None:
    correctness = reward_funcs("strict")[0]
    assert correctness(["Q"], ["<answer>24</answer>"], None, answer=["24"]) == [2.0]


def test_answer_key_names_the_column() -> None:
    correctness = reward_funcs("strict", answer_key="solution")[0]
    kwargs = trl_kwargs(["<answer>24</answer>"], ["wrong"], solution=["#### 24"])
    assert correctness(**kwargs) == [2.0]


def test_missing_answer_column_names_the_key_and_the_columns_trl_passed() -> None:
    kwargs = trl_kwargs(["<answer>24</answer>"], ["24"], question=["Q"], solution=["24"])
    del kwargs["answer"]
    with pytest.raises(ValueError) as caught:
        reward_funcs("strict")[0](**kwargs)
    message = str(caught.value)
    assert "column 'answer'" in message
    assert "the columns it passed: question, solution" in message
    assert "trainer_state" not in message and "log_extra" not in message
    assert "answer_key=" in message


def test_missing_answer_column_with_no_columns_at_all() -> None:
    with pytest.raises(ValueError, match="none besides the prompt"):
        reward_funcs("strict")[0](prompts=["Q"], completions=["x"])


def test_one_answer_per_completion() -> None:
    with pytest.raises(ValueError, match="2 answers in 'answer' for 1 completions"):
        reward_funcs("strict")[0](prompts=["Q"], completions=["x"], answer=["1", "2"])
    with pytest.raises(TypeError, match="must be a list"):
        reward_funcs("strict")[0](prompts=["Q"], completions=["x"], answer="1")


def test_a_completion_that_is_not_text_names_its_index() -> None:
    kwargs = trl_kwargs(["fine", [{"role": "user", "content": "no reply"}]], ["1", "1"])
    with pytest.raises(ValueError, match=r"completion 1: .*no assistant message"):
        reward_funcs("strict")[0](**kwargs)
    kwargs = trl_kwargs(["fine", 3], ["1", "1"])
    with pytest.raises(ValueError, match="completion 1: 'completions' is a number") as caught:
        reward_funcs("strict")[0](**kwargs)
    assert "--completion-key" not in str(caught.value)  # no flag of `rewardkit score` here
    with pytest.raises(ValueError, match="completion 0: 'answer' is null"):
        reward_funcs("strict")[0](**trl_kwargs(["x"], [None]))


def test_bad_answer_key_is_refused_early() -> None:
    with pytest.raises(TypeError, match="answer_key"):
        reward_funcs("strict", answer_key="")


def test_functions_pickle_for_trl_async_workers() -> None:
    for func in reward_funcs("lenient"):
        clone = pickle.loads(pickle.dumps(func))
        assert isinstance(clone, RewardFunction)
        assert clone.__name__ == func.__name__
        assert clone(**trl_kwargs(COMPLETIONS, ANSWERS)) == func(**trl_kwargs(COMPLETIONS, ANSWERS))


def test_importing_the_integration_imports_neither_trl_nor_torch() -> None:
    code = (
        "import sys, rewardkit.integrations.trl\n"
        "print(sorted(m for m in ('trl', 'torch', 'transformers') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- a real GRPOTrainer run ------------------------------------------------------------------

TAGS = ["<think>", "</think>", "<answer>", "</answer>"]
EXAMPLE = ROOT / "examples" / "trl_grpo.py"
CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant: {% endif %}"
)


def build_tiny_model(folder: Path, chat_template: str | None = None) -> Path:
    """The example's tiny model (a random 2-layer Llama, character-level tokenizer), saved.

    Taken from `examples/trl_grpo.py`, which the docs point users to, so the test trains the
    model the example trains.
    """
    pytest.importorskip("torch", reason="torch is not installed")
    return Path(example_module().build_tiny_model(folder, chat_template))


def example_module() -> Any:
    """`examples/trl_grpo.py`, imported."""
    spec = importlib.util.spec_from_file_location("trl_grpo_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    return example


def test_tiny_tokenizer_keeps_the_tags_through_decoding(tmp_path: Path) -> None:
    pytest.importorskip("transformers", reason="transformers is not installed")
    from transformers import AutoTokenizer

    folder = build_tiny_model(tmp_path / "model")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert all(len(tokenizer(tag)["input_ids"]) == 1 for tag in TAGS)
    ids = tokenizer(WELL_FORMED)["input_ids"]
    assert len(ids) == len(WELL_FORMED) - sum(len(tag) - 1 for tag in TAGS)
    assert tokenizer.decode([*ids, tokenizer.eos_token_id], skip_special_tokens=True) == WELL_FORMED


class Recorder:
    """Wraps a reward function to keep what TRL passed to it and what it returned."""

    def __init__(self, func: Callable[..., list[float]], calls: dict[str, list[Any]]) -> None:
        self.func = func
        self.calls = calls
        self.__name__ = func.__name__

    def __call__(self, **kwargs: Any) -> list[float]:
        values = self.func(**kwargs)
        self.calls[self.__name__].append(
            (list(kwargs["completions"]), list(kwargs["answer"]), list(values))
        )
        return values


def run_grpo(
    model: Path, scheme: Any, rows: list[dict[str, Any]], steps: int, output: Path
) -> tuple[Any, dict[str, list[Any]]]:
    pytest.importorskip("trl", reason="trl is not installed (pip install -e '.[dev]')")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    calls: dict[str, list[Any]] = defaultdict(list)
    config = GRPOConfig(
        output_dir=str(output),
        max_steps=steps,
        per_device_train_batch_size=8,  # 2 prompts x 4 completions per step
        num_generations=4,
        max_completion_length=24,
        learning_rate=1e-3,
        logging_steps=1,  # one log entry, one generation, one reward call per step
        log_completions=True,  # completions/completions_<step>.parquet, read back below
        reward_weights=reward_weights(scheme),
        bf16=False,
        # the name the installed transformers has (5.23 renamed it), as the example does
        **{example_module().checkpointing_key(GRPOConfig): False},
        use_cpu=True,
        report_to="none",
        save_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    trainer = GRPOTrainer(
        model=str(model),
        reward_funcs=[Recorder(f, calls) for f in reward_funcs(scheme, log_answer=True)],
        args=config,
        train_dataset=Dataset.from_list(rows),
    )
    trainer.train()
    return trainer, calls


def assert_logged_rewards_are_rewardkit_scores(
    trainer: Any, calls: dict[str, list[Any]], scheme: Scheme, steps: int
) -> None:
    logs = [entry for entry in trainer.state.log_history if "reward" in entry]
    assert [entry["step"] for entry in logs] == list(range(1, steps + 1))
    nonzero = 0.0
    for step, entry in enumerate(logs):
        # Every reward function saw the same completions in a step.
        completions, answers, _ = calls[scheme.reward_names[0]][step]
        assert len(completions) == 8
        want = expected(scheme, completions, answers)
        for name in scheme.reward_names:
            seen, seen_answers, returned = calls[name][step]
            assert (seen, seen_answers) == (completions, answers)
            assert returned == want[name]
            # TRL averages in float32; these values are multiples of 1/8, so exact.
            assert entry[f"rewards/{name}/mean"] == pytest.approx(
                sum(want[name]) / len(want[name]), abs=1e-6
            )
            nonzero += sum(want[name])
        assert entry["reward"] == pytest.approx(sum(want["total"]) / 8, abs=1e-6)
    assert nonzero > 0, "the run never earned a reward: the check above proved nothing"
    # TRL keeps the last step's completions and our reasons for its completions table.
    completions, answers, _ = calls[scheme.reward_names[0]][-1]
    assert list(trainer._logs["completion"]) == completions
    want = expected(scheme, completions, answers)
    for name in scheme.reward_names:
        assert list(trainer._logs["extra"][name + "_reason"]) == want[name + "_reason"]
    # The table TRL wrote holds the golds reward_funcs logged: `rewardkit score` reads it
    # back and gives the rewards TRL logged, row for row.
    table = Path(trainer.args.output_dir) / "completions" / f"completions_{steps:05d}.parquet"
    rescored = score_format(table, "trl", [scheme]).frame
    logged = pd.read_parquet(table)
    for name in scheme.reward_names:
        assert rescored[name].tolist() == pytest.approx(logged[name].tolist(), abs=1e-6)


ROWS = [
    {"prompt": "Q: 3+4=? A:", "answer": "#### 7"},
    {"prompt": "Q: 9-5=? A:", "answer": "4"},
    {"prompt": "Q: 2*3=? A:", "answer": "#### 6"},
    {"prompt": "Q: 1+1=? A:", "answer": "2"},
]


def test_grpo_trainer_logs_the_rewardkit_scores(tmp_path: Path, weighted_scheme: Path) -> None:
    model = build_tiny_model(tmp_path / "model")
    scheme = get_scheme(str(weighted_scheme))  # weights != 1: TRL's `reward` is the total
    trainer, calls = run_grpo(model, scheme, ROWS, 3, tmp_path / "run")
    assert all(isinstance(c, str) for c in calls["correctness"][0][0])
    assert_logged_rewards_are_rewardkit_scores(trainer, calls, scheme, 3)


def test_grpo_trainer_conversational_prompts(tmp_path: Path) -> None:
    model = build_tiny_model(tmp_path / "model", chat_template=CHAT_TEMPLATE)
    rows = [
        {"prompt": [{"role": "user", "content": row["prompt"]}], "answer": row["answer"]}
        for row in ROWS
    ]
    trainer, calls = run_grpo(model, LENIENT, rows, 2, tmp_path / "run")
    completions = calls["correctness"][0][0]
    assert all(isinstance(c, list) and c[-1]["role"] == "assistant" for c in completions)
    # The trainer's completions table holds the message lists themselves.
    assert_logged_rewards_are_rewardkit_scores(trainer, calls, LENIENT, 2)


def test_example_script_runs(tmp_path: Path) -> None:
    pytest.importorskip("trl", reason="trl is not installed (pip install -e '.[dev]')")
    script = EXAMPLE
    out = subprocess.run(
        [sys.executable, str(script), "--steps", "2", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    table = out.stdout.splitlines()[-3:]
    assert table[0].split() == ["step", "correctness", "digit", "format", "mark", "reward"]
    assert [line.split()[0] for line in table[1:]] == ["1", "2"]


def test_completion_prefix_restores_what_the_template_wrote() -> None:
    reply = "8*9\n</think>\n<answer>\n72\n</answer>\n"
    funcs = reward_funcs("strict", completion_prefix="<think>\n")
    assert [f(prompts=["Q"], completions=[reply], answer=["72"])[0] for f in funcs] == [
        2.0,
        0.5,
        0.5,
        0.5,
    ]
    assert "completion_prefix='<think>\\n'" in repr(funcs[0])
    with pytest.raises(TypeError, match="completion_prefix must be a str"):
        reward_funcs("strict", completion_prefix=None)  # type: ignore[arg-type]


def test_a_bad_answer_names_the_fix_that_works_in_trl() -> None:
    import numpy as np

    correctness = reward_funcs("lenient")[0]
    assert correctness(
        prompts=["Q"], completions=["<answer>72</answer>"], answer=[np.int64(72)]
    ) == [2.0]
    with pytest.raises(
        ValueError, match=r"not a string or number; fix the data set.*answer_key=NAME"
    ):
        correctness(prompts=["Q"], completions=["x"], answer=[["72"]])


def test_a_custom_reward_that_raises_names_the_completion() -> None:
    from rewardkit.schemes import RewardError, Scheme, SchemeReward

    def picky(completion: str, answer: str) -> float:
        if "7" in completion:
            raise KeyError(completion)
        return 1.0

    funcs = reward_funcs(Scheme("picky", (SchemeReward("picky", picky),)))
    with pytest.raises(RewardError, match=r"^completion 1: reward 'picky' raised KeyError"):
        funcs[0](**trl_kwargs(["<answer>5</answer>", "<answer>7</answer>"], ["5", "7"]))


def test_a_reward_file_edited_in_the_same_process_is_read_again(tmp_path: Path) -> None:
    # reward_funcs(path) kept the scheme of the first call, keyed on the scheme file alone:
    # after the reward's .py was edited, it disagreed with get_scheme(path)
    reward = tmp_path / "edited.py"
    reward.write_text("def f(c, a):\n    return 0.25\n")
    path = tmp_path / "s.yaml"
    path.write_text("rewards:\n  - {function: 'edited.py:f'}\n")

    def value() -> float:
        return reward_funcs(str(path))[0](prompts=["q"], completions=["x"], answer=["7"])[0]

    assert value() == 0.25
    reward.write_text("def f(c, a):\n    return 0.5\n")
    os.utime(reward, ns=(1, 10**18))  # a new modification time, however fast the writes
    assert get_scheme(str(path)).score("x", "7")["f"].value == 0.5
    assert value() == 0.5
