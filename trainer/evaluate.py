"""Evaluation on the test split: greedy pass@1 and sampled pass@k (spec section 6).

- ``pass@1 (greedy)``: one completion per problem at temperature 0, the share correct;
- ``pass@k`` for each k: n = max(k) samples per problem at the eval temperature, and the
  unbiased estimator of Chen et al. (2021) through `rewardkit.report.pass_at_k_table`,
  the code `rewardkit score` uses.

"Correct" is the scheme's own ``correctness`` reward above 0, so a strict run is measured
by the strict rule. When pass@k is not above greedy pass@1 the samples of a problem do not
differ (temperature too low, or a collapsed policy): the result carries a warning.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rewardkit.report import pass_at_k_table
from rewardkit.schemes import Scheme
from rewardkit.score import score_records
from trainer.config import TrainConfig
from trainer.data import Problem
from trainer.engine import Engine, Generation
from trainer.prompt import reply_start

__all__ = ["EvalResult", "evaluate"]


@dataclass
class EvalResult:
    """Metric rows (metric, k, value) and the greedy completions as sample records."""

    rows: list[dict[str, Any]]
    samples: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    def value(self, metric: str) -> float | None:
        return next((r["value"] for r in self.rows if r["metric"] == metric), None)


def evaluate(
    engine: Engine,
    problems: Sequence[Problem],
    prompts: Sequence[str],
    scheme: Scheme,
    config: TrainConfig,
    seed: int,
) -> EvalResult:
    """Greedy and sampled completions of every problem, scored and summarised."""
    greedy = engine.generate(list(prompts), 1, 0.0, config.max_new_tokens, config.stop, seed)
    records = _records(problems, prompts, greedy, "greedy")
    frame = score_records(records, [scheme], source="the greedy evaluation completions")
    rows: list[dict[str, Any]] = []
    has_correctness = "correctness" in scheme.reward_names
    if has_correctness:
        rows.append(_row("pass@1 (greedy)", 1, float((frame["correctness"] > 0).mean())))
    for name in [*scheme.reward_names, "total"]:
        rows.append(_row(f"greedy {name}", None, float(frame[name].mean())))
    samples = _with_rewards(records, frame, scheme)
    warnings: list[str] = []
    if not has_correctness:
        warnings.append(f"scheme {scheme.name} has no correctness reward: no pass@k")
        return EvalResult(rows, samples, warnings)
    n = max(config.pass_k)
    sampled = engine.generate(
        list(prompts), n, config.eval_temperature, config.max_new_tokens, config.stop, seed + 1
    )
    sampled_records = _records(problems, prompts, sampled, "sample")
    sampled_frame = score_records(
        sampled_records, [scheme], source="the sampled evaluation completions"
    )
    samples += _with_rewards(sampled_records, sampled_frame, scheme)
    table = pass_at_k_table(sampled_frame, [scheme], config.pass_k)
    for k, value in zip(table["k"], table["pass_at_k"], strict=True):
        rows.append(_row(f"pass@{int(k)}", int(k), float(value)))
    greedy_pass = rows[0]["value"]
    top = rows[-1]
    if n > 1 and 0 < greedy_pass < 1 and top["value"] <= greedy_pass + 1e-12:
        warnings.append(
            f"{top['metric']} ({top['value']:.3f}) is not above pass@1 (greedy)"
            f" ({greedy_pass:.3f}): the {n} samples of a problem hardly differ; raise"
            f" eval_temperature (now {config.eval_temperature}) for pass@k to mean anything"
        )
    return EvalResult(rows, samples, warnings)


def _row(metric: str, k: int | None, value: float) -> dict[str, Any]:
    return {"metric": metric, "k": k, "value": value}


def _records(
    problems: Sequence[Problem],
    prompts: Sequence[str],
    groups: list[list[Generation]],
    kind: str,
) -> list[dict[str, Any]]:
    """What `rewardkit score` reads; `prompt_id` keeps greedy and sampled apart, so the
    sampled groups of one evaluation give its pass@k when re-scored."""
    return [
        {
            "completion": reply_start(prompt) + generation.text,  # the whole reply
            "answer": problem.answer,
            "prompt_id": f"eval/{kind}/{problem.id}",
            "prompt": prompt,
            "id": f"eval/{kind}/{problem.id}/{index}",
            "kind": kind,
        }
        for problem, prompt, group in zip(problems, prompts, groups, strict=True)
        for index, generation in enumerate(group)
    ]


def _with_rewards(
    records: list[dict[str, Any]], frame: Any, scheme: Scheme
) -> list[dict[str, Any]]:
    names = [*scheme.reward_names, "total"]
    values = {n: frame[n].tolist() for n in names}
    return [{**r, "rewards": {n: values[n][i] for n in names}} for i, r in enumerate(records)]


PERFECT = "<think>\n2 + 3 = 5\n</think>\n<answer>\n5\n</answer>\n"  # spec section 4's layout


def stop_cost(scheme: Scheme, stop: Sequence[str]) -> str | None:
    """Why a perfect completion, cut at the first stop string, would lose reward; or None.

    Completions keep their stop string but end there, so ``stop=["</answer>"]`` never
    produces the newline the strict format wants after ``</answer>``.

    >>> from rewardkit.schemes import LENIENT, STRICT
    >>> stop_cost(LENIENT, ["</answer>"]) is None
    True
    >>> print(stop_cost(STRICT, ["</answer>"]))  # doctest: +ELLIPSIS
    completions stop at '</answer>', so even a perfect completion scores 2.875 instead of 3.5 \
under strict (format: missing_newline_after_answer_close; mark: ...)...
    """
    ends = [PERFECT.find(s) + len(s) for s in stop if s in PERFECT]
    if not ends:
        return None
    cut = PERFECT[: min(ends)]
    full, kept = scheme.score(PERFECT, "5"), scheme.score(cut, "5")
    lost = [n for n in scheme.reward_names if kept[n].value < full[n].value]
    if not lost:
        return None
    which = "; ".join(f"{n}: {kept[n].reason}" for n in lost)
    first = next(s for s in stop if s in PERFECT and PERFECT.find(s) + len(s) == min(ends))
    return (
        f"completions stop at {first!r}, so even a perfect completion scores"
        f" {scheme.total(kept):g} instead of {scheme.total(full):g} under {scheme.name}"
        f" ({which}); to make it reachable, stop after the newline: stop=[{first + chr(10)!r}]"
    )
