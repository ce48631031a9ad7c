"""Custom rewards for ``examples/my_scheme.yaml``: how to add a reward of your own.

A custom reward is a plain function ``(completion, answer) -> result``. `completion` is the
model's text (for a chat-message list, the last assistant message's content) and `answer`
is the reference answer exactly as the data set gives it (``"...\\n#### 42"`` or ``"42"``).
The result may be a float, a ``(float, reason)`` pair, or a `rewardkit.rewards.Reward`; a
reason is a short, stable snake_case code (``ok`` for full credit) that ``rewardkit score``
counts in its "why is this reward below its maximum" tables.

Keep it pure: the same inputs must give the same result, in any order and in any worker
process. Let real bugs raise; do not wrap the body in ``try/except Exception: return 0.0``.

Check the examples with ``python -m doctest -v examples/my_rewards.py``.
"""

from __future__ import annotations

__all__ = ["MAX_CHARS", "brevity"]

MAX_CHARS = 400


def brevity(completion: str, answer: str) -> tuple[float, str]:
    """0.5 when the completion is shorter than 400 characters, else 0.0 (``too_long``).

    Why: GRPO rewards whatever raises the group's mean, and a model that rambles on before
    its answer tends to ramble more as training goes on. A small, capped bonus for short
    completions pushes back without outweighing correctness (weighted 2.0 in
    ``my_scheme.yaml``). The scheme file declares ``max: 0.5`` so rewardkit knows this
    reward's ceiling: the scheme's maximum total is 2 * 2.0 + 0.5 + 0.5 = 5.0. rewardkit
    does not clip a custom reward to its declared max, so the function keeps to it itself.

    Length is counted in characters (code points), not tokens; `answer` is not used.

    >>> brevity("14 * 3 = 42\\n<answer>42</answer>", "#### 42")
    (0.5, 'ok')
    >>> brevity("x" * 399, "42"), brevity("x" * 400, "42")
    ((0.5, 'ok'), (0.0, 'too_long'))

    Inside the scheme, next to the built-in rewards:

    >>> from pathlib import Path
    >>> from rewardkit.schemes import get_scheme
    >>> scheme = get_scheme(str(Path(__file__).with_name("my_scheme.yaml")))
    >>> scores = scheme.score("14 * 3 = 42\\n<answer>42</answer>", "#### 42")
    >>> for name, reward in scores.items():
    ...     print(name, reward.value, reward.reason)
    correctness 2.0 ok
    format 0.0 no_think_tag
    brevity 0.5 ok
    >>> scheme.total(scores), scheme.max_total
    (4.5, 5.0)
    """
    if len(completion) < MAX_CHARS:
        return 0.5, "ok"
    return 0.0, "too_long"
