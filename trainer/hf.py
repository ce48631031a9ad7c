"""Names that differ between the transformers versions the train extra allows.

transformers 5.2x renamed the forward's ``past_key_values`` to ``cache`` and gradient
checkpointing to activation checkpointing; the old names still work there, with a
FutureWarning per call (209 lines in a default run under 5.24), and are to go in 5.40.
The trainer asks the model which names it has instead of pinning one version.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

__all__ = ["checkpointing_on", "is_checkpointing", "with_cache"]


def with_cache(model: Any, cache: Any) -> dict[str, Any]:
    """The keyword argument that hands the KV `cache` to `model`'s forward.

    >>> class New:
    ...     def forward(self, input_ids=None, cache=None): ...
    >>> class Old:
    ...     def forward(self, input_ids=None, past_key_values=None): ...
    >>> list(with_cache(New(), None)), list(with_cache(Old(), None))
    (['cache'], ['past_key_values'])
    """
    cls: Any = type(model)
    return {_cache_keyword(cls): cache}


@functools.cache
def _cache_keyword(cls: Any) -> str:
    try:
        parameters = inspect.signature(cls.forward).parameters
    except (AttributeError, TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in parameters else "past_key_values"


def is_checkpointing(model: Any) -> bool:
    """Whether `model` recomputes its activations in the backward pass."""
    new = hasattr(type(model), "is_activation_checkpointing")  # asks the class: no warning
    name = "is_activation_checkpointing" if new else "is_gradient_checkpointing"
    return bool(getattr(model, name, False))


def checkpointing_on(model: Any, **kwargs: Any) -> None:
    """Turn activation (gradient) checkpointing on, with `kwargs` for torch's checkpoint."""
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
