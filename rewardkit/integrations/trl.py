"""Rewardkit's rewards as reward functions for TRL's ``GRPOTrainer``.

``reward_funcs(scheme)`` gives one reward function per reward of the scheme and
``reward_weights(scheme)`` their weights, in the same order::

    from trl import GRPOConfig, GRPOTrainer
    from rewardkit.integrations.trl import reward_funcs, reward_weights

    args = GRPOConfig(output_dir="out", reward_weights=reward_weights("strict"))
    trainer = GRPOTrainer(model=..., args=args, train_dataset=gsm8k,
                          reward_funcs=reward_funcs("strict"))

Why one function per reward rather than one for the total: TRL logs the mean and standard
deviation of every reward function under its name (``rewards/correctness/mean``,
``rewards/format/mean``, ...), so a run shows which reward moved. With the scheme's weights,
TRL's weighted sum (logged as ``reward``, and what its default ``sum_then_normalize``
advantage is computed from) is the scheme's ``total``, as ``rewardkit score`` reports it.

The contract this module follows, as TRL 1.16 implements it in ``trl/trainer/grpo_trainer.py``
(``_calculate_rewards``) and ``trl/trainer/utils.py`` (``get_callable_name``):

- every reward function is called with keywords only:
  ``f(prompts=..., completions=..., completion_ids=..., **reward_kwargs)``, where
  ``reward_kwargs`` holds every data set column except ``prompt``, ``completion`` and
  ``completion_ids`` (one value per completion, so the gold answers arrive as
  ``answer=[...]``), plus TRL's own ``trainer_state``, ``log_extra``, ``log_metric`` and,
  with environments, ``environments``;
- a completion is a string, or for conversational prompts a list of chat messages; the last
  assistant message's content is scored, by the same rule `rewardkit.score` applies;
- the logged name is the function's ``__name__`` (a callable object's, if it has one);
- the functions are instances of a module-level class, not closures, because TRL's async
  GRPO trainer pickles reward functions into a spawned rollout process.

Each call also hands the reason codes to TRL's ``log_extra`` (as the ``<reward>_reason``
column of TRL's completions table), so a zero in a TRL run is explained as in
``rewardkit score``.

This module imports neither ``trl`` nor ``torch``.

>>> funcs = reward_funcs("lenient")
>>> [f.__name__ for f in funcs]
['correctness', 'digit', 'format', 'mark']
>>> reward_weights("lenient")
[1.0, 1.0, 1.0, 1.0]
>>> correctness = funcs[0]
>>> correctness(prompts=["Q1", "Q2"],
...             completions=["<answer>72</answer>", "I think 71."],
...             answer=["... #### 72", "#### 72"])
[2.0, 0.0]
>>> reply = "<think>\\n8*9\\n</think>\\n<answer>\\n72\\n</answer>\\n"
>>> chat = [{"role": "assistant", "content": reply}]
>>> [f(prompts=[[]], completions=[chat], answer=["72"])[0] for f in funcs]
[2.0, 0.5, 0.5, 0.5]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rewardkit.integrations._common import as_scheme, read_row
from rewardkit.schemes import RewardError, Scheme, SchemeLike, SchemeReward, call_reward

__all__ = ["RewardFunction", "SchemeLike", "as_scheme", "reward_funcs", "reward_weights"]

# Keyword arguments TRL adds to the data set's columns; not columns, so not listed as such.
_TRL_KWARGS = frozenset({"trainer_state", "log_extra", "log_metric", "environments"})


class RewardFunction:
    """One reward of a scheme, callable as TRL calls a reward function.

    ``__name__`` is the reward's name, which TRL uses for its metrics. Instances pickle
    whenever the scheme's reward functions do: the built-in ones and a scheme file's always
    do (a ``file.py:function`` pickles as the file's path and is imported again there).
    """

    def __init__(
        self,
        scheme: Scheme,
        reward: SchemeReward,
        answer_key: str = "answer",
        completion_prefix: str = "",
        log_answer: bool = False,
    ) -> None:
        if not isinstance(answer_key, str) or not answer_key:
            raise TypeError(f"answer_key must name a column (a non-empty str), not {answer_key!r}")
        if not isinstance(completion_prefix, str):
            raise TypeError(f"completion_prefix must be a str, not {completion_prefix!r}")
        self.scheme = scheme
        self.reward = reward
        self.answer_key = answer_key
        self.completion_prefix = completion_prefix
        self.log_answer = log_answer
        self.__name__ = reward.name

    def __repr__(self) -> str:
        prefix = f", completion_prefix={self.completion_prefix!r}" if self.completion_prefix else ""
        return (
            f"RewardFunction({self.reward.name!r}, scheme={self.scheme.name!r},"
            f" answer_key={self.answer_key!r}{prefix})"
        )

    def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        """One value per completion; the reasons go to TRL's ``log_extra`` when it is given."""
        answers = self._answers(kwargs, len(completions))
        values: list[float] = []
        reasons: list[str] = []
        golds: list[str] = []
        for index, (completion, answer) in enumerate(zip(completions, answers, strict=True)):
            try:
                text, gold = read_row(
                    completion,
                    answer,
                    "completions",
                    self.answer_key,
                    fix="fix the data set, or name the answer column with"
                    " reward_funcs(..., answer_key=NAME)",
                    prefix=self.completion_prefix,
                )
            except ValueError as error:
                raise ValueError(
                    f"rewardkit reward {self.__name__!r}, completion {index}: {error}"
                ) from None
            try:
                result = call_reward(self.reward, text, gold)
            except RewardError as error:
                raise RewardError(f"completion {index}: {error}") from error
            values.append(result.value)
            reasons.append(result.reason)
            golds.append(gold)
        log_extra = kwargs.get("log_extra")
        if callable(log_extra):
            log_extra(f"{self.__name__}_reason", reasons)
            if self.log_answer:  # so that `rewardkit score` can read TRL's table back
                log_extra(self.answer_key, golds)
        return values

    def _answers(self, kwargs: dict[str, Any], count: int) -> Sequence[Any]:
        if self.answer_key not in kwargs:
            columns = sorted(k for k in kwargs if k not in _TRL_KWARGS)
            listed = ", ".join(columns) if columns else "none besides the prompt"
            raise ValueError(
                f"rewardkit reward {self.__name__!r} reads the gold answers from the data set"
                f" column {self.answer_key!r}, but TRL passed no such column (the columns it"
                f" passed: {listed}); add the column to the training data set, or name the"
                " column that holds the answers with reward_funcs(..., answer_key=NAME)"
            )
        answers = kwargs[self.answer_key]
        if isinstance(answers, (str, bytes)) or not isinstance(answers, Sequence):
            raise TypeError(
                f"rewardkit reward {self.__name__!r}: {self.answer_key!r} must be a list with one"
                f" answer per completion, not {type(answers).__name__}"
            )
        if len(answers) != count:
            raise ValueError(
                f"rewardkit reward {self.__name__!r}: {len(answers)} answers in"
                f" {self.answer_key!r} for {count} completions; pass one answer per completion"
            )
        return answers


def reward_funcs(
    scheme: SchemeLike = "lenient",
    answer_key: str = "answer",
    completion_prefix: str = "",
    log_answer: bool = False,
) -> list[RewardFunction]:
    """One TRL reward function per reward of `scheme`, in the scheme's order.

    `answer_key` names the data set column that holds the gold answers (``"#### 72"`` or
    ``"72"``). Pass `reward_weights` of the same scheme to ``GRPOConfig(reward_weights=...)``
    so that TRL's weighted sum is the scheme's total. `completion_prefix` is the start of
    the reply that the chat template writes into the prompt, so the model never generates
    it: the thinking templates of DeepSeek-R1-Distill and Qwen3 end the prompt with
    ``"<think>\\n"``, and without the prefix every completion misses its ``<think>``.

    >>> [f.__name__ for f in reward_funcs("strict", answer_key="solution")]
    ['correctness', 'digit', 'format', 'mark']
    >>> fmt = reward_funcs("strict", completion_prefix="<think>\\n")[2]
    >>> fmt(prompts=["Q"], completions=["8*9\\n</think>\\n<answer>\\n72\\n</answer>\\n"],
    ...     answer=["72"])
    [0.5]

    With `log_answer`, the first function also logs the gold answers to TRL's completions
    table (as the column `answer_key`), which TRL does not log of itself, so that
    ``rewardkit score`` can score the table again. Turn it on in one `reward_funcs` call
    only, and log no column of that name yourself: TRL joins what every logger gives a
    column, and on several GPUs two loggers would give rows each other's golds.
    """
    if not isinstance(log_answer, bool):
        raise TypeError(f"log_answer must be True or False, not {log_answer!r}")
    resolved = as_scheme(scheme)
    return [
        RewardFunction(
            resolved, reward, answer_key, completion_prefix, log_answer=log_answer and index == 0
        )
        for index, reward in enumerate(resolved.rewards)
    ]


def reward_weights(scheme: SchemeLike = "lenient") -> list[float]:
    """The weights of `scheme`'s rewards, in the order `reward_funcs` returns them.

    >>> reward_weights("strict")
    [1.0, 1.0, 1.0, 1.0]
    """
    return [reward.weight for reward in as_scheme(scheme).rewards]
