"""Rewardkit's rewards as a verl custom reward function.

verl loads a reward function from a file named in its config. Point it at this file and at
`compute_score`; the path can be printed with
``python -c "import rewardkit.integrations.verl as m; print(m.__file__)"``::

    python -m verl.trainer.main_ppo \\
        ... \\
        reward.custom_reward_function.path=/path/to/site-packages/rewardkit/integrations/verl.py \\
        reward.custom_reward_function.name=compute_score \\
        +reward.custom_reward_function.reward_kwargs.scheme=strict

verl 0.7.1 to 0.9.1 read these keys under ``reward.`` and also accept
``pkg://rewardkit.integrations.verl`` as the path. The old top-level
``custom_reward_function.*`` keys are still accepted by their configs, but 0.9.x's
``main_ppo`` ignores them and trains on verl's own GSM8K reward; releases from before the
reward loop know only those (drop the ``reward.`` prefix there). The scheme is
``lenient`` unless ``reward_kwargs.scheme`` names another (a built-in name or the path of a
scheme file), and a row whose ``extra_info`` holds a ``"scheme"`` is scored under that one.

What verl expects, as read in verl's source (``verl/utils/reward_score/__init__.py``
``default_compute_score``; ``verl/trainer/ppo/reward.py`` ``get_custom_reward_fn``;
``verl/workers/reward_manager/naive.py`` and
``verl/experimental/reward_loop/reward_manager/naive.py``):

- the function is called with keywords ``data_source``, ``solution_str`` (the decoded
  response, special tokens skipped), ``ground_truth`` (``reward_model.ground_truth`` of the
  row) and ``extra_info`` (the row's ``extra_info`` dict, to which verl adds ``num_turns``
  and more), plus the ``reward_kwargs`` of the config and, with a reward-model router,
  ``reward_router_address`` and ``reward_model_tokenizer``: extra keywords are accepted and
  ignored;
- it returns a float, or a dict whose ``"score"`` is the reward; verl stores every key of
  the dict as ``reward_extra_info``, one list per key, so every row of a batch must return
  the same keys (the built-in schemes do; custom schemes with other reward names do not mix
  in one run);
- string values are allowed there: verl's ``process_validation_metrics``
  (``verl/trainer/ppo/metric_utils.py``) skips them when it averages the validation
  metrics, and the generation dumps write them out. So the reason codes travel with the
  values; pass ``reward_kwargs.reasons=false`` to leave them out for a fork that casts
  every extra value to float.

``data_source`` is not used: every row is scored as a GSM8K-style math answer. To mix data
sources, dispatch in a function of your own and call `compute_score` for the math rows.
As in TRL, ``<think>``, ``</think>``, ``<answer>`` and ``</answer>`` must not be *special*
tokens of the tokenizer, or decoding deletes them and the format rewards read 0.

verl loads this file under a module name of its own (not ``rewardkit.integrations.verl``),
so it uses absolute imports only.

>>> result = compute_score("openai/gsm8k", "<answer>72</answer>", "72")
>>> result["score"], result["correctness"], result["format"], result["format_reason"]
(3.0, 2.0, 0.25, 'no_think_pair')
>>> compute_score("openai/gsm8k", "<answer>72</answer>", "#### 72",
...               extra_info={"scheme": "strict"})["score"]
2.5
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from rewardkit.integrations._common import as_scheme, read_row
from rewardkit.schemes import Scheme, SchemeLike

__all__ = ["compute_score"]


def compute_score(
    data_source: Any,
    solution_str: Any,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    scheme: SchemeLike = "lenient",
    reasons: bool = True,
    completion_prefix: str = "",
    **kwargs: Any,
) -> dict[str, float | str]:
    """Score one verl response: ``{"score": total, "<reward>": value, "<reward>_reason": code}``.

    ``extra_info["scheme"]``, when present and not None, overrides `scheme` for that row
    (parquet gives the rows that do not set it None). With ``reasons=False`` the dict holds
    numbers only. `completion_prefix` goes before the response: the part of the reply the
    chat template writes into the prompt (``"<think>\\n"`` for thinking templates).

    >>> compute_score("openai/gsm8k", "The answer is 7", "7", reasons=False)
    {'score': 2.0, 'correctness': 2.0, 'digit': 0.0, 'format': 0.0, 'mark': 0.0}
    """
    if extra_info is not None and not isinstance(extra_info, Mapping):
        raise TypeError(f"extra_info must be a dict or None, not {type(extra_info).__name__}")
    if not isinstance(reasons, bool):  # "false" from a quoted YAML value would read as true
        raise TypeError(f"reasons must be true or false, not {reasons!r}")
    if not isinstance(completion_prefix, str):
        raise TypeError(f"completion_prefix must be a string, not {completion_prefix!r}")
    if extra_info is not None and extra_info.get("scheme") is not None:
        chosen = extra_info["scheme"]
        if not isinstance(chosen, (str, os.PathLike, Scheme)):
            raise TypeError(
                f"extra_info['scheme'] must be a scheme name or a scheme file's path, not"
                f" {chosen!r}"
            )
        scheme = chosen
    resolved = as_scheme(scheme)
    try:
        text, gold = read_row(
            solution_str,
            ground_truth,
            "solution_str",
            "ground_truth",
            fix="fix reward_model.ground_truth in the data",
            prefix=completion_prefix,
        )
    except ValueError as error:
        raise ValueError(f"rewardkit compute_score: {error}") from None
    scores = resolved.score(text, gold)
    result: dict[str, float | str] = {"score": resolved.total(scores)}
    for name, reward in scores.items():
        if name == "score":
            raise ValueError(
                f"scheme {resolved.name!r} has a reward called 'score', which verl reserves"
                " for the total; rename the reward in the scheme file"
            )
        result[name] = reward.value
    if reasons:
        for name, reward in scores.items():
            key = name + "_reason"
            if key in result:
                raise ValueError(
                    f"scheme {resolved.name!r} has a reward called {key!r}, which clashes with"
                    f" the reason of {name!r}; rename it in the scheme file"
                )
            result[key] = reward.reason
    return result
