"""YAML as rewardkit's files (scheme files, training configs) read it.

PyYAML's ``safe_load`` with two of YAML 1.1's traps closed:

- **Duplicate keys** are an error naming both lines; ``safe_load`` keeps the last one, so
  ``epochs: 2`` followed by ``epochs: 3`` trained 3 epochs and a second ``rewards:`` list
  silently replaced the first. (Keys that a merge, ``<<: *base``, brings in may still be
  overridden: that is what a merge is for.)
- **Numbers in exponent notation** (``1e-3``, ``5E+2``, ``1.5e3``) are numbers, as in
  YAML 1.2, JSON and TOML; ``safe_load`` reads them as text unless they have a dot and a
  signed exponent (``1.0e-3``).

>>> load("lr: 1e-3\\nepochs: 2\\n")
({'lr': 0.001, 'epochs': 2}, {'lr': 1, 'epochs': 2})
>>> load("epochs: 2\\nepochs: 3\\n")
Traceback (most recent call last):
...
yaml.constructor.ConstructorError: duplicate key 'epochs' (first on line 1)
  in "<unicode string>", line 2, column 1:
    epochs: 3
    ^
"""

from __future__ import annotations

import re
from typing import Any

import yaml

__all__ = ["dump", "load"]

_MERGE = "tag:yaml.org,2002:merge"
# A float with an exponent, as YAML 1.2 writes it: 1e-3, 5E+2, 1.5e3, .5e1 (YAML 1.1 wants
# a dot and a signed exponent, 1.0e+3).
_EXPONENT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if key_node.tag == _MERGE:
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = key in first
                except TypeError:  # an unhashable key: the base class says so
                    continue
                if seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r} (first on line {first[key]})",
                        key_node.start_mark,
                    )  # fmt: skip
                first[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT, list("-+.0123456789"))


class _Dumper(yaml.SafeDumper):
    """``yaml.SafeDumper`` that quotes a text `_Loader` would read as a number (``'1e3'``)."""


_Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT, list("-+.0123456789"))


def dump(data: Any) -> str:
    """`data` as YAML text that `load` reads back unchanged, keys in their order.

    >>> dump({"wandb_project": "1e3", "lr": 0.001})
    "wandb_project: '1e3'\\nlr: 0.001\\n"
    >>> load(dump({"wandb_project": "1e3"}))[0]
    {'wandb_project': '1e3'}
    """
    return str(yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True))


def load(text: str) -> tuple[Any, dict[str, int]]:
    """The document in `text`, and the line (1-based) of each key of a top-level mapping.

    Raises ``yaml.YAMLError`` (its message holds the line) for text that is not YAML, for
    more than one document and for a duplicate key.
    """
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        data = None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, _ in node.value:
            if isinstance(key, yaml.ScalarNode):
                lines.setdefault(str(key.value), key.start_mark.line + 1)
    return data, lines
