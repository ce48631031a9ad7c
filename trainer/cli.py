"""`rewardkit train` and `rewardkit report`: argument parsing and wiring only.

`rewardkit.cli` adds these two sub-commands with `add_train_parser` / `add_report_parser`
and calls `run_train` / `run_report`. Nothing here imports torch at module level: the
`rewardkit` command must start (and `rewardkit score` must run) without the `train` extra,
and `rewardkit train` without it says how to install it.

Exit status: 0 on success, 2 on a bad config, data set or missing dependency, 130 when
interrupted (the run can be resumed from its last checkpoint).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import importlib.util
import itertools
import os
import re
import shlex
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

__all__ = ["add_report_parser", "add_train_parser", "run_report", "run_train"]

EXIT_OK, EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_TERMINATED = 0, 2, 130, 143
COMPARISON_FILE = "comparison.yaml"  # a --schemes folder's plan: its schemes and config


class Terminated(KeyboardInterrupt):
    """SIGTERM (timeout, docker stop, SLURM, systemd), handled as Ctrl-C is: the run stops
    where it is and says how to resume it. Without a handler Python died without a word."""


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


TRAIN_EXTRA_HINT = "pip install 'rewardkit[train]'"


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "train",
        help="train a model with GRPO under a reward scheme",
        description="Run GRPO. With no arguments: a tiny model built locally, trained on a"
        " synthetic arithmetic set on the CPU in about a minute. Writes one folder per run"
        " (config, steps/epochs/eval tables, samples.jsonl, summary.md, plots, model).",
    )
    parser.add_argument("config", nargs="?", help="YAML file of TrainConfig values")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        dest="overrides",
        help="override one config value, e.g. --set learning_rate=1e-3 (repeatable)",
    )
    parser.add_argument(
        "--schemes",
        metavar="A,B",
        help="run once per scheme with the same seed and write a comparison,"
        " e.g. --schemes strict,lenient",
    )
    parser.add_argument(
        "--output-dir", default="reports", metavar="DIR", help="where run folders go (reports/)"
    )
    parser.add_argument("--name", help="run folder name (default: time and scheme)")
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a stopped run (or --schemes comparison) from its last checkpoint (same"
        " data order); only epochs, micro_batch_size, gradient_checkpointing and"
        " sync_check_every may change, and for a single run scheme, dataset or model only to"
        " give a moved file its new place",
    )
    return parser


def add_report_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "report",
        help="show a run, or compare runs side by side",
        description="One run: its rewards at the start and end and its evaluations. Several:"
        " a side-by-side comparison (rewards, zero-spread share, pass@k, steps to reach a"
        " reward level) printed and written as comparison.csv and comparison.png.",
    )
    parser.add_argument(
        "runs",
        nargs="+",
        metavar="RUN_DIR",
        help="run folders, or the folder of a --schemes comparison (its runs are compared)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="the folder comparison.csv/png go in (default: the folder holding the runs, or"
        " the current directory when they are in different folders; for one run they are"
        " written only when --out is given)",
    )
    return parser


# The oldest transformers the trainer runs on: 4.45-4.53 fail mid-run (no `logits_to_keep`
# in 4.45, no `cache_utils.DynamicLayer` before 4.54). Kept equal to pyproject's train extra.
MIN_TRANSFORMERS = (4, 54)


def _missing_train_extra() -> str | None:
    """What the train extra lacks here, as the error's words, or None."""
    for module in ("torch", "transformers"):
        if importlib.util.find_spec(module) is None:
            return f"{module}, which is not installed"
    version = _version("transformers")
    if version is not None and version < MIN_TRANSFORMERS:
        need, have = ".".join(map(str, MIN_TRANSFORMERS)), ".".join(map(str, version))
        return f"transformers>={need}, and this environment has {have}"
    return None


def _version(distribution: str) -> tuple[int, ...] | None:
    """The leading numbers of `distribution`'s installed version (None when unknown).

    >>> _version("no-such-distribution") is None
    True
    """
    try:
        text = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    numbers = re.match(r"\d+(?:\.\d+)*", text)
    return tuple(int(n) for n in numbers.group().split(".")) if numbers else None


def run_train(args: argparse.Namespace) -> int:
    with _sigterm_as_interrupt():
        return _run_train(args)


def _run_train(args: argparse.Namespace) -> int:
    out, err = Console(), Console(stderr=True)
    missing = _missing_train_extra()
    if missing is not None:
        err.print(
            f"[red]error:[/] `rewardkit train` needs {escape(missing)};"
            f" install the train extra: {escape(TRAIN_EXTRA_HINT)}",
            highlight=False,
            soft_wrap=True,
        )
        return EXIT_BAD_INPUT
    import torch
    import yaml

    from rewardkit.score import InputError
    from trainer.config import ConfigError, load_config
    from trainer.console import Display
    from trainer.data import DataError
    from trainer.engine import EngineError
    from trainer.lock import FolderBusy, holds_files
    from trainer.loop import CONFIG_FILE, load_scheme, moved_files, train
    from trainer.runfiles import atomic_write_bytes

    root: Path | None = None  # the run in progress, for the messages below
    comparing: Path | None = None  # the --schemes folder, once its plan is written
    try:
        if args.resume:
            root = Path(args.resume)
            given = [
                flag
                for flag, value in (
                    ("CONFIG", args.config),
                    ("--schemes", args.schemes),
                    ("--name", args.name),
                    ("--output-dir", args.output_dir != "reports"),
                )
                if value
            ]
            if given:
                raise ConfigError(
                    f"--resume continues the run in its own folder with its own config.yaml;"
                    f" drop {', '.join(given)}"
                )
            if not root.is_dir():
                what = "a file, not a folder" if root.exists() else "no such folder"
                raise ConfigError(
                    f"{root}: {what}; --resume takes the folder a `rewardkit train`"
                    " run wrote, e.g. reports/<run>"
                )
            if (root / COMPARISON_FILE).is_file() and not (root / CONFIG_FILE).is_file():
                comparing = root
                return _resume_comparison(out, root, args.overrides)
            if not (root / CONFIG_FILE).is_file():
                raise ConfigError(
                    f"{root}: not a run folder (no {CONFIG_FILE}); --resume takes the folder a"
                    " `rewardkit train` run wrote, e.g. reports/<run> (or the folder of a"
                    " --schemes comparison)"
                )
            given_keys = {pair.partition("=")[0].strip() for pair in args.overrides}
            if gone := [key for key in moved_files(root) if key not in given_keys]:
                kind = "folder" if gone[0] == "model" else "file"
                raise ConfigError(
                    f"{root / CONFIG_FILE}: the run's {gone[0]} {kind} is gone from where the"
                    " run found it; if it moved, give its new place:"
                    f" `{_resume(root)} --set {gone[0]}=NEW_PATH` (the checkpoint checks that"
                    " it is the same)"
                )
            config = load_config(root / CONFIG_FILE, args.overrides).with_absolute_paths()
            train(config, root, resume=True, display=Display(out))
            return EXIT_OK
        if args.name is not None:
            _check_name(args.name)
        config = load_config(args.config, args.overrides).with_absolute_paths()
        stamp = time.strftime("%Y%m%d-%H%M%S")
        if not args.schemes:
            if args.name:
                root = Path(args.output_dir) / args.name
                train(config, root, display=Display(out))
                return EXIT_OK
            name = f"{stamp}-{scheme_folder(config.scheme)}"
            with _fresh(Path(args.output_dir), name, lambda f: f / CONFIG_FILE) as root:
                train(config, root, display=Display(out))
            return EXIT_OK
        # Every scheme and run folder is checked before the first run starts.
        configs = [
            config.replace(scheme=s.strip()).with_absolute_paths()
            for s in args.schemes.split(",")
            if s.strip()
        ]
        if not configs:
            raise ConfigError(
                f"--schemes {args.schemes!r} names no scheme; list one or more, e.g."
                " --schemes strict,lenient"
            )
        names = [scheme_folder(each.scheme) for each in configs]
        if len(set(names)) < len(names):
            raise ConfigError(
                f"--schemes {args.schemes}: each run's folder is named after its scheme, and"
                f" these give {', '.join(names)}; list each scheme once (rename a scheme file"
                " whose name another one shares)"
            )
        if args.name:
            parent = Path(args.output_dir) / args.name
            for name in names:
                folder = parent / name
                if folder.exists() and (not folder.is_dir() or holds_files(folder)):
                    again = (
                        f", or continue that comparison with `{_resume(parent)}`"
                        if (parent / COMPARISON_FILE).is_file()
                        else ""
                    )
                    raise FileExistsError(
                        f"{folder} already holds a run; pick another --name{again}"
                    )
        for each in configs:
            load_scheme(each)  # a custom reward that fails stops here, not after a run
        if args.name:
            parent.mkdir(parents=True, exist_ok=True)
            reserved: contextlib.AbstractContextManager[Path] = contextlib.nullcontext(parent)
        else:  # a folder of its own, even for a comparison started in the same second
            first = names[0]
            reserved = _fresh(
                Path(args.output_dir), f"{stamp}-compare", lambda f: f / first / CONFIG_FILE
            )
        with reserved as parent:
            # each run's config is the first one's with its own scheme
            plan = {"schemes": [each.scheme for each in configs], "config": configs[0].to_dict()}
            atomic_write_bytes(parent / COMPARISON_FILE, yaml.safe_dump(plan).encode())
            comparing = parent
            roots = []
            for each in configs:
                root = parent / scheme_folder(each.scheme)
                train(each, root, display=Display(out))
                roots.append(root)
        return _compare(out, [str(r) for r in roots], parent)
    except (
        ConfigError,
        DataError,
        EngineError,
        FileExistsError,
        FileNotFoundError,
        FolderBusy,
    ) as error:
        if isinstance(error, OSError) and error.strerror is not None:
            raise  # the system refused a path: rewardkit.cli.main says which and why
        err.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        return EXIT_BAD_INPUT
    except InputError as error:  # a reward of the scheme failed on a completion
        err.print(
            f"[red]error:[/] {escape(str(error))}\nthe run stopped there; fix the reward, then"
            f" continue the run with `{escape(_resume(root))}` (from its last checkpoint, or"
            " from the start if it had none)",
            highlight=False,
            soft_wrap=True,
        )
        return EXIT_BAD_INPUT
    except torch.cuda.OutOfMemoryError as error:
        first = (str(error).strip().splitlines() or [""])[0]
        err.print(
            f"[red]error:[/] out of GPU memory ({escape(first)}). One forward pass holds"
            " micro_batch_size sequences, and their logits alone take micro_batch_size x"
            " (prompt + max_new_tokens) x vocabulary x 4 bytes, a few times over. Fix: lower"
            " micro_batch_size (the update depends on it only through rounding), set"
            " gradient_checkpointing=true, or lower max_new_tokens; then continue with"
            f" `{escape(_resume(root))} --set micro_batch_size=N` (both keys may change on"
            " a resume)",
            highlight=False,
            soft_wrap=True,
        )
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as stop:
        what, code = (
            ("terminated", EXIT_TERMINATED)
            if isinstance(stop, Terminated)
            else ("interrupted", EXIT_INTERRUPTED)
        )
        if comparing is not None and comparing.is_dir():  # runs done, this one, those to come
            err.print(
                f"{what}; continue the comparison with `{escape(_resume(comparing))}` (each"
                " run from its last checkpoint, then the runs not begun, then the comparison)",
                highlight=False,
                soft_wrap=True,
            )
            return code
        if root is None or not (root / CONFIG_FILE).is_file():
            err.print(f"{what} before the run folder was written; nothing to resume")
            return code
        err.print(
            f"{what}; continue from the last checkpoint with `{escape(_resume(root))}`",
            highlight=False,
            soft_wrap=True,
        )
        return code


def fresh_folder(output_dir: Path, name: str) -> Path:
    """A folder made here for a run named by the clock: `name`, else `name`-2, -3, ...

    Made at once, so that runs started in the same second (the name's resolution) get
    folders of their own instead of meeting in one.

    >>> import tempfile
    >>> out = Path(tempfile.mkdtemp())
    >>> [fresh_folder(out, "20261202-120000-strict").name for _ in range(3)]
    ['20261202-120000-strict', '20261202-120000-strict-2', '20261202-120000-strict-3']
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    for count in itertools.count(1):
        folder = output_dir / (name if count == 1 else f"{name}-{count}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise AssertionError("unreachable")


@contextlib.contextmanager
def _fresh(output_dir: Path, name: str, begun: Callable[[Path], Path]) -> Iterator[Path]:
    """`fresh_folder` for a run (or comparison) about to start, removed again if it stops
    before it begins (before the file `begun` names is written: a bad data file, a model
    that cannot load, Ctrl-C in setup), and `output_dir` with it when made here and left
    empty, as a run refused in setup left nothing behind before."""
    made = not output_dir.exists()
    folder = fresh_folder(output_dir, name)
    try:
        yield folder
    except BaseException:
        if not begun(folder).is_file():
            shutil.rmtree(folder, ignore_errors=True)
            if made:
                with contextlib.suppress(OSError):  # only while empty
                    output_dir.rmdir()
        raise


def scheme_folder(scheme: str) -> str:
    """The folder of a scheme's run in a comparison: the scheme's name or file name stem.

    >>> scheme_folder("strict"), scheme_folder("examples/my_scheme.yaml")
    ('strict', 'my_scheme')
    """
    return Path(scheme).stem


def _check_name(name: str) -> None:
    """A run's name is one folder inside --output-dir: `--name ../escaped` wrote beside it.

    >>> _check_name("run 2")
    >>> _check_name("../escaped")
    Traceback (most recent call last):
    ...
    trainer.config.ConfigError: --name '../escaped': a run's name is one folder inside \
--output-dir, so it cannot hold a path separator or be '.' or '..'; put the folders in \
--output-dir (--output-dir DIR --name NAME)
    """
    from trainer.config import ConfigError

    separators = [s for s in ("/", os.sep, os.altsep) if s]
    if not name.strip() or name in (".", "..") or any(s in name for s in separators):
        raise ConfigError(
            f"--name {name!r}: a run's name is one folder inside --output-dir, so it cannot"
            " hold a path separator or be '.' or '..'; put the folders in --output-dir"
            " (--output-dir DIR --name NAME)"
        )


def _resume_comparison(out: Console, parent: Path, overrides: list[str]) -> int:
    """Continue a `--schemes` comparison: each run that began from its checkpoint (a
    finished one redoes only its report), each run not begun from the start, then the
    comparison. `overrides` go into the plan first, so that the runs begun later get them
    too: the runs compared are always runs of one config."""
    import yaml

    from trainer.config import ConfigError, from_mapping, load_config, parse_overrides
    from trainer.console import Display
    from trainer.loop import CONFIG_FILE, RESUME_MAY_CHANGE, train
    from trainer.runfiles import atomic_write_bytes

    path = parent / COMPARISON_FILE
    try:
        plan = yaml.safe_load(path.read_text(encoding="utf-8"))
        schemes, base = [str(s) for s in plan["schemes"]], from_mapping(plan["config"])
    except (yaml.YAMLError, OSError, KeyError, TypeError, ValueError, ConfigError) as error:
        raise ConfigError(
            f"{path}: not the plan a --schemes run writes ({error}); run the comparison again"
            " under a new --name"
        ) from None
    keys = {pair.partition("=")[0].strip() for pair in overrides}
    if refused := sorted(keys - set(RESUME_MAY_CHANGE)):
        raise ConfigError(
            f"--resume continues the comparison with its own config; only"
            f" {', '.join(RESUME_MAY_CHANGE)} may change, and this changes"
            f" {', '.join(refused)} (drop those --set values)"
        )
    before = path.read_bytes()
    if overrides:
        base = base.replace(**parse_overrides(overrides))
        plan["config"] = base.to_dict()
        atomic_write_bytes(path, yaml.safe_dump(plan).encode())
    roots = []
    for index, scheme in enumerate(schemes):
        root = parent / scheme_folder(scheme)
        roots.append(root)
        try:
            if (root / CONFIG_FILE).is_file():
                config = load_config(root / CONFIG_FILE, overrides).with_absolute_paths()
                train(config, root, resume=True, display=Display(out))
            else:
                config = base.replace(scheme=scheme).with_absolute_paths()
                train(config, root, display=Display(out))
        except ConfigError:
            # Refused before it trained (epochs below what the run reached, say): while no
            # run has trained with the new values, the plan goes back as it was, so that
            # the runs not begun yet are not started with values the comparison refused.
            if index == 0 and overrides:
                atomic_write_bytes(path, before)
            raise
    return _compare(out, [str(r) for r in roots], parent)


def _resume(root: Path | None) -> str:
    """The command that continues the run at `root`, quoted for a shell: a folder named
    ``run 2`` was printed as ``--resume with space/run 2``, two arguments when pasted.

    >>> _resume(Path("with space/run 2")), _resume(None)
    ("rewardkit train --resume 'with space/run 2'", 'rewardkit train --resume RUN_DIR')
    """
    return f"rewardkit train --resume {shlex.quote(str(root)) if root is not None else 'RUN_DIR'}"


def run_report(args: argparse.Namespace) -> int:
    out, err = Console(), Console(stderr=True)
    from trainer.report import ReportError

    try:
        folder = _out_folder(args.out) if args.out else None  # refused before any output
        args.runs = _runs_of(out, args.runs)
        if len(args.runs) == 1:
            from trainer.console import render_run
            from trainer.report import load_run

            render_run(out, load_run(args.runs[0]))
            if folder is None:
                return EXIT_OK
            # The one-row comparison table, where it was asked for.
        if folder is not None:
            return _compare(out, args.runs, folder)
        parent, why = _default_out(args.runs)
        return _compare(out, args.runs, parent, why)
    except ReportError as error:
        err.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        return EXIT_BAD_INPUT


def _runs_of(out: Console, paths: list[str]) -> list[str]:
    """`paths` with each ``--schemes`` comparison folder replaced by its runs, in the order
    of its plan (``comparison.yaml``); a run not begun yet is left out, and said."""
    import yaml

    from trainer.loop import CONFIG_FILE
    from trainer.report import ReportError

    runs: list[str] = []
    for path in paths:
        folder = Path(path)
        if not (folder / COMPARISON_FILE).is_file() or (folder / CONFIG_FILE).is_file():
            runs.append(path)
            continue
        try:
            plan = yaml.safe_load((folder / COMPARISON_FILE).read_text(encoding="utf-8"))
            planned = [folder / scheme_folder(str(scheme)) for scheme in plan["schemes"]]
        except (yaml.YAMLError, OSError, UnicodeDecodeError, KeyError, TypeError):
            planned = sorted(p for p in folder.iterdir() if (p / CONFIG_FILE).is_file())
        begun = [p for p in planned if (p / CONFIG_FILE).is_file()]
        if not begun:
            raise ReportError(
                f"{folder}: a --schemes comparison none of whose runs has begun; continue it"
                f" with `{_resume(folder)}`"
            )
        if missing := [p.name for p in planned if p not in begun]:
            out.print(
                f"{folder}: the comparison's {', '.join(missing)} run has not begun (continue"
                f" the comparison with `{_resume(folder)}`); reporting the others",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        runs += [str(p) for p in begun]
    return runs


def _compare(out: Console, runs: list[str], parent: Path, why: str = "") -> int:
    from trainer.console import render_comparison
    from trainer.report import config_differences, incomplete, load_run, write_comparison

    replaced = (parent / "comparison.csv").is_file()
    loaded = [load_run(r) for r in runs]
    frame, written = write_comparison(loaded, parent)
    render_comparison(out, frame)
    for run in loaded:
        if (far := incomplete(run)) is not None:
            out.print(
                f"[yellow]warning:[/] {escape(str(run.root))} is incomplete ({far}): its last"
                " steps and evaluation are not the end of its training",
                highlight=False,
                soft_wrap=True,
            )
    if differences := config_differences(loaded):
        listed = "; ".join(f"{key}: {', '.join(values)}" for key, values in differences.items())
        out.print(
            "[yellow]warning:[/] the runs' configs differ in more than the scheme"
            f" ({escape(listed)}, in the order of the runs), so the comparison is not like"
            " for like; the table's `config` rows and comparison.csv list them",
            highlight=False,
            soft_wrap=True,
        )
    said = "wrote " + ", ".join(str(p) for p in written)
    if replaced:
        said += f" (replacing the {parent / 'comparison.csv'} that was there)"
    out.print(said + (f"; {why}" if why else ""), markup=False, highlight=False, soft_wrap=True)
    return EXIT_OK


# What names a file, not the folder --out is: `--out cmp.csv` made the folder cmp.csv/.
FILE_SUFFIXES = (".csv", ".png", ".parquet", ".json", ".jsonl", ".md", ".txt", ".yaml", ".yml")


def _out_folder(out: str) -> Path:
    """The folder ``--out`` names, refused where it names a file (by its suffix).

    >>> print(_out_folder("reports/cmp"))
    reports/cmp
    """
    from trainer.report import ReportError

    path = Path(out)
    if path.suffix.lower() in FILE_SUFFIXES and not path.is_dir():
        raise ReportError(
            f"--out {out}: --out is the folder that comparison.csv and comparison.png are"
            f" written in, and this names a {path.suffix} file; give a folder, e.g. --out"
            f" {path.with_suffix('')}"
        )
    return path


def _default_out(runs: list[str]) -> tuple[Path, str]:
    """Where a comparison goes without ``--out``, and why when that is not plain: the runs'
    folder when they share one (a ``--schemes`` comparison, or runs side by side under
    reports/), else the current directory, said so. Their common ancestor could be ``/``
    or a folder far above both."""
    parents = {Path(r).resolve().parent for r in runs}
    parent = parents.pop()
    if not parents and parent != Path(parent.anchor):
        return parent, ""
    here = Path.cwd()
    return here, (
        f"the runs are not in one folder, so the comparison went to the current directory"
        f" ({here}); --out DIR puts it elsewhere"
    )
