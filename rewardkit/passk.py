"""The unbiased pass@k estimator of Chen et al. (2021), "Evaluating Large Language Models
Trained on Code", section 2.1 (spec section 6).

With `n` samples of which `c` are correct, ``pass@k = 1 - C(n-c, k) / C(n, k)``. The ratio
of binomials is computed as the product ``prod_{i=n-c+1}^{n} (1 - k/i)``, never with
factorials, so it neither overflows nor loses precision for large `n`.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["mean_pass_at_k", "pass_at_k"]


def pass_at_k(n: int, c: int, k: int) -> float:
    """The probability that at least one of `k` samples drawn from `n` (`c` correct) passes.

    >>> round(pass_at_k(5, 1, 1), 10)
    0.2
    >>> round(pass_at_k(5, 1, 2), 10)
    0.4
    >>> pass_at_k(4, 3, 2)  # fewer than k wrong samples: every draw of 2 has a correct one
    1.0
    >>> pass_at_k(3, 1, 4)
    Traceback (most recent call last):
    ...
    ValueError: pass@4 needs at least 4 samples per problem, got n=3
    """
    if k < 1:
        raise ValueError(f"pass@k needs k >= 1, got k={k}")
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got c={c}, n={n}")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples per problem, got n={n}")
    if n - c < k:
        return 1.0
    failure = 1.0
    for i in range(n - c + 1, n + 1):
        failure *= 1.0 - k / i
    return 1.0 - failure


def mean_pass_at_k(groups: Iterable[tuple[int, int]], k: int) -> float:
    """The mean of `pass_at_k` over ``(n, c)`` pairs, one per problem.

    >>> mean_pass_at_k([(4, 0), (4, 4)], 2)
    0.5
    """
    values = [pass_at_k(n, c, k) for n, c in groups]
    if not values:
        raise ValueError("pass@k of no problems is undefined")
    return sum(values) / len(values)
