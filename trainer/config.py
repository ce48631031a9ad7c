"""One frozen, validated `TrainConfig`: every knob of a run, and nothing read by string keys.

A run is configured by the defaults below, then a YAML file, then ``--set key=value``
overrides, in that order. Values from YAML and from ``--set`` are coerced to the field's
type (``--set learning_rate=1e-3``, ``--set pass_k=1,4,8``, ``--set 'stop=["</answer>"]'``);
a value that cannot be coerced, an out-of-range value and an unknown key each raise
`ConfigError` saying what is wrong, why, and how to fix it. The resolved config is dumped
into the run folder as ``config.yaml`` and is all a resume needs.

The defaults run the embedded example: a tiny model built locally, trained on the synthetic
arithmetic set on a CPU in a few minutes. The learning rate and lengths suit that model; for
a real model (``model: Qwen/Qwen2.5-0.5B-Instruct``) use a learning rate near 1e-6 and
``max_new_tokens`` of a few hundred (see ``examples/train_gsm8k.yaml``).

>>> TrainConfig().num_generations
8
>>> TrainConfig(clip_eps=1.5)
Traceback (most recent call last):
...
trainer.config.ConfigError: clip_eps=1.5 is out of range: the ratio is clipped to \
[1 - clip_eps, 1 + clip_eps], so clip_eps must lie strictly between 0 and 1; try 0.2
"""

from __future__ import annotations

import dataclasses
import math
import re
import shlex
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rewardkit import yamlfile

__all__ = [
    "COMPUTE_ONLY",
    "ENGINES",
    "PRECISIONS",
    "TINY_MODEL",
    "ConfigError",
    "TrainConfig",
    "load_config",
    "parse_overrides",
]

ENGINES = ("auto", "torch", "vllm")
PRECISIONS = ("auto", "float32", "bfloat16")
TINY_MODEL = "tiny"  # `model: tiny` builds the embedded tiny model (`trainer.tiny`)
_CUDA_INDEX = re.compile(r"cuda:(?:0|[1-9][0-9]*)")  # what torch.device reads: not cuda:01
MAX_SEED = 2**32 - 1  # numpy's limit, and so vLLM's
# Keys that change memory, speed or checking but not what a run learns (micro-batches and
# checkpointing only round differently: tested): a resume may change them, and runs that
# differ in them compare like for like.
COMPUTE_ONLY = ("micro_batch_size", "gradient_checkpointing", "sync_check_every")
DATASETS = ("synthetic", "gsm8k")  # or the path of a local .jsonl / .parquet / folder

DEFAULT_SYSTEM_PROMPT = "Think in <think> </think> then give the number in <answer> </answer>."


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message says what, why and the fix."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything a GRPO run needs. Validated on construction; see the module docstring."""

    # what to train, on what
    model: str = TINY_MODEL  # "tiny", a Hugging Face id, or a local folder
    dataset: str = "synthetic"  # "synthetic", "gsm8k", or a local .jsonl/.parquet file/folder
    train_samples: int | None = 256  # problems used for training (None: all)
    test_samples: int | None = 64  # problems evaluated each epoch (None: all)
    on_error: str = "raise"  # a bad data row: raise stops the run; skip trains on the good ones
    scheme: str = "lenient"  # strict, lenient, or a scheme file
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # GRPO
    epochs: int = 6
    prompts_per_step: int = 16
    num_generations: int = 8  # the group size
    policy_updates: int = 4  # optimizer steps on each batch of completions
    micro_batch_size: int = 128  # sequences per forward pass (gradients are accumulated)
    gradient_checkpointing: bool = False  # recompute activations in backward: less memory
    max_new_tokens: int = 24
    temperature: float = 0.9  # training samples
    eval_temperature: float = 0.8  # pass@k samples
    stop: tuple[str, ...] = ("</answer>",)  # kept in the completion text
    beta: float = 0.05  # KL coefficient; 0 skips the reference model
    clip_eps: float = 0.2
    # optimizer
    learning_rate: float = 5e-3
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    # evaluation
    pass_k: tuple[int, ...] = (1, 4, 8)
    # machinery
    engine: str = "auto"  # vllm, torch, or auto (vllm when it imports)
    sync_check_every: int = 10  # vllm: check the weight push every this many steps (1: all)
    device: str = "auto"  # cpu, cuda, or auto
    precision: str = "auto"  # float32, bfloat16 (autocast, float32 weights), or auto
    cpu_threads: int | None = 1  # torch threads on a CPU; 1 is fastest for the tiny model
    seed: int = 0
    save_every: int = 25  # checkpoint every this many steps, and at every epoch's end
    wandb: bool = False  # log to Weights & Biases (needs `pip install wandb`)
    wandb_project: str = "rewardkit"

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value, kind = getattr(self, field.name), _field_type(field.name)
            if kind in (float, float | None) and type(value) is int:
                object.__setattr__(self, field.name, float(value))  # beta=0 means 0.0
            _check_type(field.name, getattr(self, field.name), kind)
        _validate(self)

    @property
    def batch_size(self) -> int:
        """Completions per step: prompts times the group size."""
        return self.prompts_per_step * self.num_generations

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-ready values (tuples become lists)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with `changes` coerced and validated like file values. An error names the
        key and the value, as the caller passed them (``--schemes`` passes each scheme)."""
        return from_mapping({**self.to_dict(), **changes})

    def with_absolute_paths(self) -> TrainConfig:
        """This config with the local files and folders it names (dataset, a scheme file, a
        model folder) made absolute, resolved against the working directory as they were
        read. A run records its config so: ``--resume`` from another folder finds them, and
        config.yaml says which files the run used.

        >>> TrainConfig().with_absolute_paths() == TrainConfig()  # nothing local to resolve
        True
        """
        from rewardkit.schemes import SCHEMES

        changes = {}
        if self.dataset not in DATASETS:
            changes["dataset"] = str(Path(self.dataset).resolve())
        if self.scheme not in SCHEMES and Path(self.scheme).exists():
            changes["scheme"] = str(Path(self.scheme).resolve())
        if self.model != TINY_MODEL and Path(self.model).expanduser().is_dir():
            changes["model"] = str(Path(self.model).expanduser().resolve())
        return self.replace(**changes) if changes else self


def _validate(c: TrainConfig) -> None:
    """Ranges and cross-field rules: each failure says why it matters and what to set."""

    def need(ok: bool, message: str) -> None:
        if not ok:
            raise ConfigError(message)

    for field in dataclasses.fields(c):
        value = getattr(c, field.name)
        # NaN fails every comparison below, so it would be reported as out of range (beta=nan
        # "cannot be negative"); infinity passes `>= 0`. Only max_grad_norm has a use for it.
        if isinstance(value, float) and not math.isfinite(value):
            need(
                field.name == "max_grad_norm" and value == math.inf,
                f"{field.name}={value} is not a finite number; use a number such as"
                f" {field.default}, the default",
            )
    for name in ("epochs", "prompts_per_step", "policy_updates", "micro_batch_size"):
        need(getattr(c, name) >= 1, f"{name}={getattr(c, name)} must be at least 1")
    need(
        c.num_generations >= 2,
        f"num_generations={c.num_generations}: GRPO normalises rewards within a group of"
        " completions of one prompt, so a group needs at least 2; try 8",
    )
    need(c.max_new_tokens >= 1, f"max_new_tokens={c.max_new_tokens} must be at least 1")
    for name in ("train_samples", "test_samples"):
        value = getattr(c, name)
        need(value is None or value >= 1, f"{name}={value} must be at least 1 (or null: all)")
    need(
        c.train_samples is None or c.train_samples >= c.prompts_per_step,
        f"train_samples={c.train_samples} is smaller than prompts_per_step="
        f"{c.prompts_per_step}: an epoch would have no full step; raise train_samples or"
        " lower prompts_per_step",
    )
    need(
        0 < c.clip_eps < 1,
        f"clip_eps={c.clip_eps} is out of range: the ratio is clipped to"
        " [1 - clip_eps, 1 + clip_eps], so clip_eps must lie strictly between 0 and 1; try 0.2",
    )
    need(c.beta >= 0, f"beta={c.beta}: the KL coefficient cannot be negative; 0 turns KL off")
    need(
        c.temperature > 0,
        f"temperature={c.temperature}: training needs sampled, diverse completions (at 0 every"
        " completion of a prompt is the same and every advantage is 0); try 0.9",
    )
    need(c.eval_temperature >= 0, f"eval_temperature={c.eval_temperature} cannot be negative")
    need(
        c.learning_rate > 0 and math.isfinite(c.learning_rate),
        f"learning_rate={c.learning_rate} must be a positive number",
    )
    need(c.weight_decay >= 0, f"weight_decay={c.weight_decay} cannot be negative")
    need(
        c.max_grad_norm > 0,
        f"max_grad_norm={c.max_grad_norm} must be positive (.inf turns clipping off)",
    )
    need(
        bool(c.pass_k) and all(k >= 1 for k in c.pass_k),
        f"pass_k={list(c.pass_k)}: give positive k values such as [1, 4, 8]",
    )
    need(
        list(c.pass_k) == sorted(set(c.pass_k)),
        f"pass_k={list(c.pass_k)}: list each k once, in increasing order",
    )
    need(
        bool(c.stop) and all(c.stop),
        f"stop={list(c.stop)}: give at least one non-empty stop string, e.g. ['</answer>']",
    )
    need(
        c.engine in ENGINES,
        f"engine={c.engine!r} is not one of {', '.join(ENGINES)}; auto uses vllm when it is"
        " installed, else torch",
    )
    need(
        c.device in ("auto", "cpu", "cuda") or _CUDA_INDEX.fullmatch(c.device) is not None,
        f"device={c.device!r}: use auto, cpu, cuda or cuda:N, N the GPU's index (0, 1, ...)",
    )
    need(
        c.precision in PRECISIONS,
        f"precision={c.precision!r} is not one of {', '.join(PRECISIONS)}: bfloat16 runs the"
        " forward passes in bfloat16 with float32 weights, auto does that on a CUDA GPU that"
        " supports it and float32 elsewhere (float16 would need loss scaling, which this"
        " trainer does not do)",
    )
    need(
        c.cpu_threads is None or c.cpu_threads >= 1,
        f"cpu_threads={c.cpu_threads}: use a number >= 1, or null for torch's default (all cores)",
    )
    need(c.save_every >= 0, f"save_every={c.save_every}: use 0 to save only at epoch ends")
    need(
        c.sync_check_every >= 1,
        f"sync_check_every={c.sync_check_every}: use 1 to check the vLLM weight push every"
        " step, or a larger number to check every N-th",
    )
    # torch.manual_seed overflows past 2**64 and numpy's seed (vLLM seeds it) past 2**32
    need(
        0 <= c.seed <= MAX_SEED,
        f"seed={c.seed} is out of range: torch, numpy and vLLM take seeds from 0 to"
        f" {MAX_SEED} (2**32 - 1); use a number in that range, e.g. 0",
    )
    need(
        c.dataset in DATASETS or Path(c.dataset).exists(),
        f"dataset={c.dataset!r} is neither {' nor '.join(DATASETS)} nor an existing file or"
        " folder; give a .jsonl/.parquet file with question and answer fields",
    )
    need(
        c.on_error in ("raise", "skip"),
        f"on_error={c.on_error!r}: use raise (a bad data row stops the run, naming the row) or"
        " skip (train on the good rows; the bad ones are listed in the run's"
        " skipped_rows.jsonl)",
    )
    need(bool(c.model), "model is empty: use 'tiny', a Hugging Face id, or a local folder")
    from rewardkit.schemes import SchemeError, get_scheme

    try:
        get_scheme(c.scheme)
    except SchemeError as error:
        raise ConfigError(f"scheme: {error}") from None


# --- types and coercion --------------------------------------------------------------------


def _field_type(name: str) -> Any:
    return typing.get_type_hints(TrainConfig)[name]


def _describe(kind: Any) -> str:
    if kind is int:
        return "a whole number"
    if kind is float:
        return "a number"
    if kind is bool:
        return "true or false"
    if kind is str:
        return "a string"
    if _is_optional(kind):
        return _describe(_inner(kind)) + " or null"
    if typing.get_origin(kind) is tuple:
        return "a list of " + _describe(typing.get_args(kind)[0]).removeprefix("a ") + "s"
    return str(kind)


def _is_optional(kind: Any) -> bool:
    return isinstance(kind, types.UnionType) and type(None) in typing.get_args(kind)


def _inner(kind: Any) -> Any:
    return next(a for a in typing.get_args(kind) if a is not type(None))


def _check_type(name: str, value: Any, kind: Any) -> None:
    """Programmer errors (TrainConfig(epochs="3")) fail as loudly as bad file values."""
    if _matches(value, kind):
        return
    raise ConfigError(
        f"{name}={value!r} ({type(value).__name__}) should be {_describe(kind)};"
        f" build configs with load_config() or TrainConfig.replace() to coerce text values"
    )


def _matches(value: Any, kind: Any) -> bool:
    if _is_optional(kind):
        return value is None or _matches(value, _inner(kind))
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        return isinstance(value, tuple) and all(_matches(v, item) for v in value)
    if kind is float:
        return isinstance(value, float)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _coerce(name: str, value: Any, kind: Any) -> Any:
    """`value` as read from YAML or ``--set``, turned into the field's type, or ConfigError."""
    wrong = ConfigError(f"{name}={value!r} should be {_describe(kind)}")
    if _is_optional(kind):
        if value is None or (isinstance(value, str) and value.lower() in {"null", "none", ""}):
            return None
        return _coerce(name, value, _inner(kind))
    if typing.get_origin(kind) is tuple:
        item = typing.get_args(kind)[0]
        if isinstance(value, str) and item is not str:
            value = [part for part in value.split(",") if part.strip()]
        elif isinstance(value, (str, int, float)):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise wrong
        try:
            return tuple(_coerce(name, v, item) for v in value)
        except ConfigError:
            raise wrong from None
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "yes", "on", "1"}:
            return True
        if isinstance(value, str) and value.lower() in {"false", "no", "off", "0"}:
            return False
        raise wrong
    if kind is int:
        if isinstance(value, bool):
            raise wrong
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        try:
            return int(str(value).strip().replace("_", ""))
        except ValueError:
            raise wrong from None
    if kind is float:
        if isinstance(value, bool):
            raise wrong
        try:
            return float(value)  # also "1e-3", which YAML 1.1 reads as a string
        except (TypeError, ValueError):
            raise wrong from None
    if kind is str:
        # YAML reads `model:` with nothing after it, `~` and `null` as None, `true`/`no` as
        # booleans and 123 or 1e-3 as numbers: str() made them the text "None", "True" and
        # "0.001", which then named a model, a scheme or the system prompt.
        if value is None:
            none = ', or "" for no system prompt' if name == "system_prompt" else ""
            raise ConfigError(
                f"{name} is null (YAML reads `null`, `~` and nothing after the colon so), not"
                f" a string; write the text{none}"
            )
        if isinstance(value, (bool, int, float)):
            what = "true or false" if isinstance(value, bool) else "a number"
            raise ConfigError(
                f"{name}={value!r}: YAML reads the value as {what}, not a string; quote it"
                " to mean the text"
            )
        if not isinstance(value, str):
            raise wrong
        return value
    raise TypeError(f"no coercion for {name}: {kind}")  # pragma: no cover - a new field type


def _valid_keys() -> str:
    return ", ".join(f.name for f in dataclasses.fields(TrainConfig))


def from_mapping(
    values: Mapping[str, Any], source: str = "", origins: Mapping[str, str] | None = None
) -> TrainConfig:
    """A `TrainConfig` from plain values (a YAML mapping): coerce, then validate.

    An error starts with where the values came from: `source` ("run.yaml with --set") for
    an unknown key or a rule about the config, or, for a value of the wrong type, the key's
    own place in `origins` ("run.yaml, line 3", "--set"). With neither (`TrainConfig.replace`)
    the message names the key and the value alone.
    """
    origins = origins or {}
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(str(key) for key in set(values) - names)  # YAML keys may be numbers
    if unknown:
        raise ConfigError(
            _at(source, f"unknown key(s) {', '.join(unknown)}; valid keys: {_valid_keys()}")
        )
    coerced = {}
    for key, value in values.items():
        origin = origins.get(key, source)
        try:
            coerced[key] = _coerce(key, value, _field_type(key))
        except ConfigError as error:
            raise ConfigError(_at(origin, f"{error}, e.g. {_example(key, origin)}")) from None
    try:
        return TrainConfig(**coerced)
    except ConfigError as error:
        raise ConfigError(_at(source, str(error))) from None


def _at(where: str, message: str) -> str:
    return f"{where}: {message}" if where else message


def _example(name: str, origin: str) -> str:
    """The key's default, written where the wrong value was: ``--set pass_k=1,4,8`` on the
    command line, ``pass_k: [1, 4, 8]`` in a file.

    >>> for origin in ("--set", "run.yaml, line 3", ""):
    ...     print(_example("pass_k", origin), _example("stop", origin))
    `--set pass_k=1,4,8` (the default) `--set 'stop=["</answer>"]'` (the default)
    `pass_k: [1, 4, 8]` (the default) `stop: ["</answer>"]` (the default)
    `pass_k=[1, 4, 8]` (the default) `stop=["</answer>"]` (the default)
    """
    import json
    import shlex

    default = next(f.default for f in dataclasses.fields(TrainConfig) if f.name == name)
    if isinstance(default, bool):
        text = str(default).lower()
    elif (
        isinstance(default, tuple)
        and origin == "--set"
        and not any(isinstance(item, str) for item in default)
    ):
        text = ",".join(map(str, default))  # what --set pass_k=1,4,8 reads
    elif isinstance(default, (tuple, str)):
        text = json.dumps(list(default) if isinstance(default, tuple) else default)
    else:
        text = "null" if default is None else repr(default)
    if origin == "--set":
        return f"`--set {shlex.quote(f'{name}={text}')}` (the default)"
    return f"`{name}{': ' if origin else '='}{text}` (the default)"


def parse_overrides(pairs: Sequence[str]) -> dict[str, Any]:
    """``["epochs=3", "pass_k=[1,4]"]`` -> values, to be coerced like values from a file.

    Spaces around the key and the value are dropped. Then a string field takes the text
    as it is (``system_prompt=Answer: <answer>``); any other value is read as YAML first,
    so lists, ``null`` and quoted escapes work.

    >>> parse_overrides(["epochs=3", "stop=['</answer>']", "scheme = strict"])
    {'epochs': 3, 'stop': ['</answer>'], 'scheme': 'strict'}
    """
    import yaml

    hints = typing.get_type_hints(TrainConfig)
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        # `--set 'scheme = strict'` asked for the scheme " strict": spaces around the `=`
        # are layout, for a text key as for any other
        key, text = key.strip(), text.strip()
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: write key=value, e.g. --set learning_rate=1e-3")
        if hints.get(key) is str or not text:
            values[key] = text
            continue
        try:
            values[key], _ = yamlfile.load(text)
        except yaml.YAMLError:
            values[key] = text  # not YAML: keep the text and let the coercion judge it
    return values


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """Defaults, then the YAML file at `path`, then ``key=value`` `overrides`."""
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    source = ""
    if path is not None:
        source = str(path)
        data, lines = _read_yaml(Path(path))
        values.update(data)
        origins.update({key: f"{path}, line {line}" for key, line in lines.items()})
    extra = parse_overrides(overrides)
    if extra:
        source = f"{source} with --set" if source else "--set"
    values.update(extra)
    origins.update({key: "--set" for key in extra})
    return from_mapping(values, source, origins)


def _read_yaml(path: Path) -> tuple[dict[Any, Any], dict[str, int]]:
    """The mapping in the config file at `path`, and the line of each top-level key."""
    import yaml

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as error:  # a folder, no permission
        raise ConfigError(
            f"{path}: cannot read the config file ({error.strerror or error}); give the path"
            " of a YAML file"
        ) from None
    data_file = (
        f"a data file? Train on it with `rewardkit train --set dataset={shlex.quote(str(path))}`"
    )
    hint = f"\n{data_file}" if path.suffix.lower() in _DATA_SUFFIXES else ""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        utf16 = raw.startswith((b"\xff\xfe", b"\xfe\xff"))
        raise ConfigError(
            f"{path}, line {line}: not UTF-8 text (byte 0x{raw[error.start]:02x}"
            f"{', a UTF-16 byte-order mark' if utf16 and error.start == 0 else ''}); save the"
            f" config file as UTF-8{hint}"
        ) from None
    try:
        data, lines = yamlfile.load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}{hint}") from None
    if data is None:  # an empty file, or comments only
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file holds a mapping of key: value lines{hint}")
    if "question" in data and "answer" in data:  # a one-line JSON data file reads as YAML
        raise ConfigError(f"{path}: its keys are question and answer, not config keys: {data_file}")
    return data, lines


_DATA_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv")


def dump_config(config: TrainConfig) -> str:
    """The YAML text written to the run folder; `load_config` reads it back unchanged."""
    return yamlfile.dump(config.to_dict())
