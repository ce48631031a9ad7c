"""The `rewardkit` command: argument parsing and wiring only.

Exit status: 0 on success, 1 when ``golden check`` finds changes, 2 on bad usage or input,
130 when interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rewardkit import __version__

if TYPE_CHECKING:  # rich is imported in `main`, where a Ctrl-C is an exit, not a traceback
    from rich.console import Console

EXIT_OK, EXIT_CHANGED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_BROKEN_PIPE = 1  # what rich exits with when the reader of its output goes away
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
_PROGRESS_MIN_BYTES = 16 * 1024 * 1024
# rewardkit.readers.FORMATS with "auto" first; not imported here, to keep the parser light.
_FORMATS = ("auto", "jsonl", "lm-eval", "trl", "verl", "chat")


def _ks(text: str) -> list[int]:
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--k takes numbers like 1,4,8, not {text!r}") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError("--k values must be positive integers")
    return ks


def _escapes(text: str) -> str:
    r"""A command-line text with ``\n``, ``\t`` and ``\\`` read as a newline, a tab and
    a backslash (a shell passes ``'<think>\n'`` as backslash and n).

    >>> _escapes(r"<think>\n"), _escapes(r"a\\nb")
    ('<think>\n', 'a\\nb')
    """
    return re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t"}.get(m[1], "\\"), text)


def _at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum`."""

    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum}, got {value}")
        return value

    return whole


_count, _positive = _at_least(0), _at_least(1)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rewardkit",
        description="Spec-exact rewards for GRPO on math word problems, explained.",
    )
    parser.add_argument("--version", action="version", version=f"rewardkit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    score = commands.add_parser(
        "score",
        help="score a file of completions and explain what the rewards see",
        description="Score every line under each scheme (strict and lenient when none is"
        " named) and print tables: reward statistics, strict against lenient, why rewards"
        " are zero, groups with no GRPO signal, pass@k.",
    )
    score.add_argument(
        "file", help="completions: rewardkit JSONL or a --format below; - for standard input"
    )
    score.add_argument(
        "--format", choices=_FORMATS, default="auto",
        help="auto (default: from the extension and first record), jsonl, lm-eval"
        " (samples_*.jsonl), trl (completions parquet/CSV), verl (generation dumps), chat",
    )  # fmt: skip
    score.add_argument(
        "--cross-check", choices=["math-verify"], default=None,
        help="compare lenient correctness with Math-Verify's verdict per row"
        " (needs `pip install math-verify`)",
    )  # fmt: skip
    score.add_argument(
        "--scheme",
        action="append",
        metavar="NAME|FILE",
        help="strict, lenient, or a .yaml/.toml scheme file; repeat for several (default: both)",
    )
    score.add_argument(
        "--out", metavar="FILE", help="write per-row scores: .jsonl, .csv or .parquet"
    )
    score.add_argument("--json", action="store_true", help="print the summary as JSON")
    score.add_argument(
        "--completion-key", default=None, metavar="KEY",
        help="field holding the completion (default: the format's own: completion, lm-eval"
        " resps, verl output, chat messages)",
    )  # fmt: skip
    score.add_argument(
        "--answer-key", default=None, metavar="KEY",
        help="field holding the gold answer (default: the format's own: answer, lm-eval"
        " target, verl gts)",
    )  # fmt: skip
    score.add_argument(
        "--id-key",
        default=None,
        metavar="KEY",
        help="field naming each row (default: id; lm-eval: doc_id)",
    )
    score.add_argument(
        "--group-key", default=None, metavar="KEY",
        help="field that groups completions of one prompt (default: prompt_id, else prompt)",
    )  # fmt: skip
    score.add_argument(
        "--workers",
        type=_positive,
        default=None,
        metavar="N",
        help="processes (default: all cores, or one for a file under 4 MiB scored with"
        " built-in rewards only)",
    )
    score.add_argument(
        "--on-error", choices=["raise", "skip"], default="raise",
        help="raise: stop at the first bad line (exit 2); skip: score every good line and"
        " report the skipped ones",
    )  # fmt: skip
    score.add_argument(
        "--max-line-bytes", type=_positive, default=None, metavar="N",
        help="longest line read (default: 8 MiB); a longer one is a bad line",
    )  # fmt: skip
    score.add_argument(
        "--completion-prefix", type=_escapes, default="", metavar="TEXT",
        help="put TEXT before every completion: the start of the reply the chat template"
        " wrote into the prompt, as given to the TRL or verl rewards in training;"
        " \\n is a newline (e.g. '<think>\\n')",
    )  # fmt: skip
    score.add_argument(
        "--k", type=_ks, default=None, metavar="K,K,...",
        help="pass@k values (default: 1, powers of two, and the largest group's size)",
    )  # fmt: skip
    score.add_argument(
        "--examples", type=_count, default=10, metavar="N",
        help="rows shown where the schemes' totals differ (default 10)",
    )  # fmt: skip

    golden = commands.add_parser(
        "golden",
        help="check or record golden reward values",
        description="check: exit 1 and print a diff when any reward value changed;"
        " update: rewrite the expected files and print what changed.",
    )
    golden.add_argument("action", choices=["check", "update"])
    golden.add_argument(
        "--scheme", action="append", metavar="NAME|FILE",
        help="schemes to check (default: strict and lenient)",
    )  # fmt: skip
    golden.add_argument(
        "--cases", metavar="FILE", help="cases JSONL (default: rewardkit's golden/cases.jsonl)"
    )
    golden.add_argument(
        "--expected",
        metavar="DIR",
        help="expected values folder (default: rewardkit's golden/expected)",
    )

    commands.add_parser("rewards", help="list the built-in rewards, schemes and reason codes")

    # The trainer's sub-commands; trainer.cli imports no torch until a run starts. When
    # the `trainer` Python would import is not rewardkit's, they only say so, and the
    # other commands work as ever.
    problem = trainer_problem()
    if problem is None:
        from trainer.cli import add_report_parser, add_train_parser

        add_train_parser(commands)
        add_report_parser(commands)
    else:
        for name in ("train", "report"):
            # every argument, -h too, is taken as it comes: the command only says why not
            stub = commands.add_parser(
                name,
                help="(unavailable here; run it to see why)",
                add_help=False,
                prefix_chars="\0",
            )
            stub.add_argument("rest", nargs="*", help=argparse.SUPPRESS)
            stub.set_defaults(unavailable=problem)
    return parser


# In trainer/__init__.py: tells rewardkit's package from another distribution's `trainer`
# installed over it (one on PyPI is), without running the other package's code.
_TRAINER_MARK = "The GRPO trainer of rewardkit"


def trainer_problem() -> str | None:
    """Why ``import trainer`` would not give rewardkit's trainer, or None when it would.

    The trainer is the top-level package `trainer`, a common name: a ``trainer.py`` or
    ``trainer/`` in the working folder comes first for ``python -m rewardkit``, and another
    distribution's `trainer` package installed in the same environment replaces its files.
    Nothing of the other module is run to find out.
    """
    import importlib.util

    ours = Path(__file__).resolve().parent.parent / "trainer" / "__init__.py"
    try:
        spec = importlib.util.find_spec("trainer")
    except (ImportError, ValueError):
        spec = None
    origin = Path(spec.origin).resolve() if spec is not None and spec.origin else None
    if spec is not None and origin is None and spec.submodule_search_locations:
        folder = next(iter(spec.submodule_search_locations))  # a folder without __init__.py
        return (
            f"the module `trainer` Python finds first is the folder {folder} (a namespace"
            f" package), not rewardkit's trainer ({ours.parent}); rename yours, or run"
            " rewardkit from another folder"
        )
    if origin is None or not origin.is_file():
        return (
            "rewardkit's trainer package is missing from this installation; reinstall"
            " rewardkit (pip install --force-reinstall 'rewardkit[train]')"
        )
    if origin != ours:
        return (
            f"the module `trainer` Python finds first is {origin}, not rewardkit's trainer"
            f" ({ours}); rename yours, or run rewardkit from another folder"
        )
    try:
        marked = _TRAINER_MARK in origin.read_text(encoding="utf-8", errors="replace")
    except OSError:
        marked = False
    if not marked:
        return (
            f"{origin} is not rewardkit's trainer: another installed package named `trainer`"
            " wrote its files over it (see `pip show -f trainer`); rewardkit's trainer cannot"
            " share an environment with it: use a virtual environment of its own"
        )
    return None


def _error(err: Console, error: object) -> None:
    """An error line on stderr: red prefix, the message verbatim (no markup read in it)."""
    from rich.markup import escape

    err.print("[red]error:[/]", escape(str(error)), highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        from rich.console import Console
    except KeyboardInterrupt:  # Ctrl-C in the first tenth of a second
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    out = Console(soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    try:
        if args.command in {"train", "report"}:
            if (problem := getattr(args, "unavailable", None)) is not None:  # a stub's
                _error(err, f"`rewardkit {args.command}` is unavailable: {problem}")
                return EXIT_BAD_INPUT
            from trainer.cli import run_report, run_train

            return run_train(args) if args.command == "train" else run_report(args)
        handlers = {"score": _score, "golden": _golden, "rewards": _rewards}
        return handlers[args.command](args, out, err)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as rich does
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:  # Ctrl-C before a command's own handler (`train` has one)
        err.print("interrupted", highlight=False)
        return EXIT_INTERRUPTED
    except OSError as error:  # a file or folder the command cannot write or read
        _error(err, _os_error(error))
        return EXIT_BAD_INPUT


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's last flush at exit does not fail
    on the closed pipe again and print "Exception ignored" (what Python's docs advise)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def _os_error(error: OSError) -> str:
    """An OS error as a person reads it: the path, what the system said, and what to check.

    >>> _os_error(PermissionError(13, "Permission denied", "/srv/out.csv"))
    '/srv/out.csv: Permission denied (check that the folder exists and can be written)'
    """
    if error.filename is None or error.strerror is None:
        return str(error)
    return f"{error.filename}: {error.strerror} (check that the folder exists and can be written)"


def _schemes(names: Sequence[str] | None) -> tuple[Any, ...]:
    """The schemes named on the command line; two of one name would share every column."""
    from rewardkit.schemes import schemes_of

    return schemes_of(names or ["strict", "lenient"])


def _out_problem(out: str, source: str) -> str | None:
    """Why `--out` cannot be written, found before any scoring; None when it can be.

    >>> _out_problem("scores.txt", "in.jsonl")
    '--out scores.txt: use a .jsonl, .csv or .parquet file name'
    >>> _out_problem("in.jsonl", "in.jsonl")  # doctest: +ELLIPSIS
    '--out in.jsonl is the input file; ...'
    """
    path = Path(out)
    if path.suffix.lower() not in {".jsonl", ".csv", ".parquet"}:
        return f"--out {out}: use a .jsonl, .csv or .parquet file name"
    if _same_file(out, source):
        return (
            f"--out {out} is the input file; the scores would replace the completions:"
            " write them to another file"
        )
    if path.is_dir():
        return f"--out {out} is a folder: name a file, e.g. {path / 'scores.parquet'}"
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            return f"--out {out}: {parent} is a file, not a folder; choose another path"
    return None


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one file (also through links), without needing either to exist.

    >>> _same_file("x.jsonl", "./x.jsonl"), _same_file("x.jsonl", "y.jsonl")
    (True, False)
    """
    try:
        return os.path.samefile(a, b)
    except OSError:
        return Path(a).resolve() == Path(b).resolve()


def _score(args: argparse.Namespace, out: Console, err: Console) -> int:
    from rich.markup import escape

    from rewardkit.readers import (
        detect_format,
        json_document,
        read_rows,
        readable_file,
        score_format,
        skipping_helps,
    )
    from rewardkit.report import summarize
    from rewardkit.schemes import SchemeError
    from rewardkit.score import DEFAULT_MAX_LINE_BYTES, InputError, Keys, score_file

    problem = _out_problem(args.out, args.file) if args.out else None
    if problem:
        _error(err, problem)
        return EXIT_BAD_INPUT
    try:
        schemes = _schemes(args.scheme)
    except SchemeError as error:
        _error(err, error)
        return EXIT_BAD_INPUT
    keys = Keys(args.completion_key, args.answer_key, args.id_key, args.group_key)
    if args.cross_check:
        from rewardkit.crosscheck import CrossCheckUnavailable, require_math_verify

        try:
            require_math_verify()
        except CrossCheckUnavailable as error:
            _error(err, error)
            return EXIT_BAD_INPUT
    max_line_bytes = args.max_line_bytes or DEFAULT_MAX_LINE_BYTES
    fmt = args.format
    try:
        # A custom reward's print() goes to stderr: stdout holds the output (--json).
        with contextlib.redirect_stdout(sys.stderr):
            # A pipe (/dev/stdin, <(zcat f.gz)) comes as a temporary copy: it is read twice.
            path = readable_file(args.file)
            if fmt == "auto":
                fmt, why = detect_format(path, keys, max_line_bytes=max_line_bytes)
                err.print(f"read {args.file} as {fmt} ({why})", highlight=False, markup=False)
            # score_file reads JSON lines only; the readers also read a JSON array of rows.
            if fmt == "jsonl" and json_document(path, max_line_bytes) is None:
                result = _with_progress(
                    err,
                    path,
                    lambda progress: score_file(
                        path,
                        schemes,
                        keys,
                        workers=args.workers,
                        on_error=args.on_error,
                        max_line_bytes=max_line_bytes,
                        progress=progress,
                        completion_prefix=args.completion_prefix,
                    ),
                )
            else:  # the reader yields normalised records: completion, answer, id, prompt_id
                if args.workers is not None and args.workers > 1:
                    err.print(
                        f"[yellow]warning:[/] --workers {args.workers} is ignored: only"
                        f" rewardkit's JSON lines are scored in parallel, {fmt} in one process",
                        highlight=False,
                    )
                result = score_format(
                    path,
                    fmt,
                    schemes,
                    keys,
                    on_error=args.on_error,
                    max_line_bytes=max_line_bytes,
                    completion_prefix=args.completion_prefix,
                )
        result.path = args.file
    except InputError as error:
        # Named as the user named it, not by the temporary copy of a pipe.
        named = InputError(args.file, error.line, error.code, error.message)
        _error(err, named)
        if args.on_error == "raise" and skipping_helps(named):
            err.print("(pass --on-error skip to score every good line and list the bad ones)")
        return EXIT_BAD_INPUT
    frame = result.frame
    if args.id_key is not None and ("id" not in frame.columns or frame["id"].isna().all()):
        err.print(
            f"[yellow]warning:[/] no row has a field {escape(repr(args.id_key))} (--id-key):"
            " rows are shown by line number; check the field's name"
        )
    summary = summarize(frame, schemes, args.k, examples=args.examples)
    checked = None
    if args.cross_check:
        from rewardkit.crosscheck import cross_check

        readable = read_rows(path, fmt, keys, on_error=args.on_error, max_line_bytes=max_line_bytes)
        prefix = args.completion_prefix
        good = (
            (line, {**row, "completion": prefix + row["completion"]} if prefix else row)
            for line, row in readable
            if not isinstance(row, InputError)
        )
        checked = cross_check(good, workers=args.workers)
    if args.out:
        _write_scores(result.frame, Path(args.out))
    if args.json:
        document = summary.to_dict()
        document["input"] = {
            "file": result.path,
            "lines_read": result.lines_read,
            "rows_scored": result.rows_scored,
            "blank_lines": result.blank_lines,
            "skipped": [vars(s) for s in result.skipped],
            "warnings": result.warnings,
            "format": fmt,
        }
        if checked is not None:
            document["cross_check"] = checked.to_dict()
        print(json.dumps(document, indent=2, allow_nan=False))
    else:
        from rewardkit.console import render_input, render_summary

        render_input(out, result)
        render_summary(out, summary, [s.name for s in schemes])
        if checked is not None:
            from rewardkit.crosscheck import render_cross_check

            render_cross_check(out, checked)
    if args.out:
        err.print(
            f"wrote {len(result.frame):,} rows to {args.out}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if result.skipped:
        err.print(
            f"[yellow]{len(result.skipped):,} line(s) skipped[/]; first: line"
            f" {result.skipped[0].line} ({result.skipped[0].code})"
        )
    return EXIT_OK


def _with_progress(err: Console, path: str, run: Any) -> Any:
    """Run `run(progress_callback)` with a progress bar on stderr for big files on a terminal."""
    try:
        big = os.path.getsize(path) >= _PROGRESS_MIN_BYTES
    except OSError:
        big = False
    if not (big and err.is_terminal):
        return run(None)
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task("scoring", total=os.path.getsize(path))
        return run(lambda done, total: bar.update(task, completed=done, total=total))


def _write_scores(frame: Any, path: Path) -> None:
    """Write per-row scores atomically: a kill never leaves a half-written file.

    A failure names `path` (not the temporary file beside it) and leaves nothing behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_json(tmp, orient="records", lines=True, force_ascii=False)
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror, str(path)) from error


def _golden(args: argparse.Namespace, out: Console, err: Console) -> int:
    from rewardkit import golden
    from rewardkit.schemes import SchemeError

    cases = Path(args.cases) if args.cases else golden.DEFAULT_CASES
    expected = Path(args.expected) if args.expected else golden.DEFAULT_EXPECTED
    specs = args.scheme or ["strict", "lenient"]
    own = [spec for spec in specs if spec not in ("strict", "lenient")]
    # (a cases file that is not there gets golden's own "not found")
    own_cases = cases.is_file() and cases.resolve() != golden.DEFAULT_CASES.resolve()
    # rewardkit's folder holds the built-in schemes' values of rewardkit's cases: an update
    # of other cases or schemes there would overwrite them.
    if (own or own_cases) and not args.expected:
        mine = f"{own[0]} is a scheme" if own else f"{cases} holds cases"
        _error(
            err,
            f"{mine} of your own: its expected values belong in a folder of"
            f" yours, not in rewardkit's ({expected}); pass --expected DIR (and --cases FILE"
            " for cases of your own; rewardkit's are used otherwise)",
        )
        return EXIT_BAD_INPUT
    if args.action == "update" and golden.INSTALLED and not args.expected:
        _error(
            err,
            "rewardkit's expected values are part of the installed package and change only"
            " with its code; record values of your own with --expected DIR",
        )
        return EXIT_BAD_INPUT
    try:
        if args.action == "check":
            return golden.run_check(cases, specs, expected, out)
        return golden.run_update(cases, specs, expected, out)
    except (golden.GoldenError, SchemeError) as error:
        _error(err, error)
        return EXIT_BAD_INPUT


def _rewards(args: argparse.Namespace, out: Console, err: Console) -> int:
    from rich.table import Table

    from rewardkit.rewards import REASONS, REWARDS
    from rewardkit.schemes import SCHEMES

    table = Table(title="Built-in rewards")
    table.add_column("reward")
    table.add_column("max", justify="right")
    table.add_column("variants")
    table.add_column("what it rewards")
    for definition in REWARDS.values():
        table.add_row(
            definition.name,
            f"{definition.max:g}",
            ", ".join(definition.variants),
            definition.description,
        )
    out.print(table)
    out.print("Schemes: " + ", ".join(SCHEMES) + " (or a .yaml/.toml scheme file)")
    reasons = Table(title="Reason codes")
    reasons.add_column("code")
    reasons.add_column("meaning")
    for code, meaning in REASONS.items():
        reasons.add_row(code, meaning)
    out.print(reasons)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
