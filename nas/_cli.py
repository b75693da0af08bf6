"""What every nas command shares: user mistakes end in one line on stderr and exit code 2; library
log records are shown as plain lines on stderr."""

from __future__ import annotations

import argparse
import errno
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from nas._errors import ArgumentError, NasError
from nas._files import file_in_the_way

USER_ERROR = 2
EVALUATOR_NAMES = "params, flops, synflow, naswot, grad_norm, zen, train, ofa-predictor, predictor, supernet"


def bind_dash_value(argv: Sequence[str], flag: str) -> list[str]:
    """``FLAG -5ms`` as ``FLAG=-5ms``, so a negative value reaches the command's own check (argparse would
    take -5ms for an option and print its usage instead)."""
    argv = list(argv)
    for i, item in enumerate(argv[:-1]):
        if item == flag and argv[i + 1].startswith("-"):
            return [*argv[:i], f"{flag}={argv[i + 1]}", *argv[i + 2 :]]
    return argv


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written, and every option's default in its help: what a run does without the flag.
    A help text that already speaks of its default (or a flag without a value) is left as it is."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if (
            "default" in text.lower()
            or action.required
            or action.default in (None, argparse.SUPPRESS)
            or action.nargs == 0  # store_true and friends: absent means off
        ):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """argparse's usage errors as one line, like every other refusal (its subcommands' parsers too)."""

    def error(self, message: str) -> NoReturn:
        print(f"error: {self.prog}: {message}; see {self.prog} --help", file=sys.stderr)
        raise SystemExit(USER_ERROR)


_EVALUATOR_FLAGS = ("predictor", "supernet", "calibration_batches", "images")  # add_evaluator_flags', --steps aside
_STRICT = ("data", *_EVALUATOR_FLAGS)  # refused by an evaluator that ignores them: the user meant them to matter


def add_evaluator_flags(parser_: argparse.ArgumentParser) -> None:
    """The flags that configure an evaluator beyond ``--data`` and ``--seed``, alike in every command."""
    parser_.add_argument("--steps", type=int, default=300, help="training steps of the train evaluator")
    parser_.add_argument(
        "--predictor",
        help="predictor file of --evaluator ofa-predictor (OFA's acc_predictor.pth or its .npz) or of --evaluator"
        " predictor (python -m nas.evaluate fit-predictor writes it); default: none",
    )
    parser_.add_argument(
        "--supernet",
        help="supernet file of --evaluator supernet (python -m nas.supernet train writes it; default: none)",
    )
    parser_.add_argument(
        "--calibration-batches",
        type=int,
        help="--evaluator supernet: training batches its BN statistics are recalibrated on per config (default: 32)",
    )
    parser_.add_argument(
        "--images", type=int, help="--evaluator supernet: validation images each config is scored on (default: 2000)"
    )


def add_warm_start_flag(parser_: argparse.ArgumentParser) -> None:
    """``--warm-start``, alike wherever a search runs (nas.search, nas.pipeline)."""
    parser_.add_argument(
        "--warm-start",
        action="append",
        default=[],
        metavar="FOLDER",
        help="begin the search with the scored trials of an earlier search (same space and evaluator settings;"
        " any target or budget), priced on this table and not evaluated again; repeat for several (default: none)",
    )


def evaluator_options(args: argparse.Namespace, *, data: Any = None, uses_data: bool = False, **extra: Any) -> dict:
    """The options a command's flags give its evaluator: ``--data`` (``data`` when the command loaded it,
    the evaluator's ``data_default`` when not given), ``--seed`` and the flags of ``add_evaluator_flags``.
    A ``--data``, ``--predictor``, ``--supernet``, ``--calibration-batches`` or ``--images`` the chosen
    evaluator ignores is refused (``--data`` not when the command itself ``uses_data``)."""
    from nas.evaluate import EVALUATORS, options_for

    given = [name for name in _STRICT if getattr(args, name) is not None]
    strict = [name for name in given if not (uses_data and name == "data")]
    default = getattr(EVALUATORS.get(args.evaluator), "data_default", "digits")
    return options_for(
        args.evaluator, strict=strict, data=data if data is not None else args.data or default, seed=args.seed,
        steps=args.steps, **{name: getattr(args, name) for name in _EVALUATOR_FLAGS}, **extra,
    )  # fmt: skip


def parser(prog: str, doc: str | None) -> argparse.ArgumentParser:
    """A command's parser; its subcommands take ``formatter_class=HelpFormatter`` too."""
    return _Parser(prog=f"python -m {prog}", description=doc, formatter_class=HelpFormatter)


def budget_parser(prog: str, doc: str | None, *, budget_help: str) -> argparse.ArgumentParser:
    """The parser of a command that works to a latency budget on a target table (search, NetAdapt, pipeline)."""
    parser_ = parser(prog, doc)
    parser_.add_argument(
        "--target",
        required=True,
        help="latency table: a target name (your tables, then the shipped ones) or a table file",
    )
    parser_.add_argument("--budget", required=True, help=f"{budget_help}: 60ms, 0.06s or 60 (ms)")
    return parser_


def show_logs(level: int = logging.INFO) -> None:
    """Library records of the ``nas`` loggers as plain lines on stderr: what a command's user sees."""
    logger = logging.getLogger("nas")
    if not any(getattr(h, "nas_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        handler.nas_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    if logging.lastResort is not None:  # other libraries' unconfigured loggers (SQLAlchemy's pool, on Ctrl-C)
        logging.lastResort.addFilter(_not_interrupted)


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines and experimental-feature warnings are noise under a progress bar."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    logging.getLogger("optuna.study._optimize").addFilter(_not_interrupted)


def _not_interrupted(record: logging.LogRecord) -> bool:
    """Drop a library's log of a Ctrl-C with its traceback (Optuna's 'trial failed with parameters ...',
    SQLAlchemy's 'Exception during reset' when the interrupt lands in its pool), or of an error raised while
    one unwound: the command says it in one line."""
    return not (record.exc_info and record.exc_info[1] and _raised_by_an_interrupt(record.exc_info[1]))


def _raised_by_an_interrupt(exc: BaseException) -> bool:
    """Whether ``exc`` is a Ctrl-C or was raised while one unwound: a library's clean-up can fail on it and
    hide it (Optuna 5.1's trial loop raises UnboundLocalError when the Ctrl-C lands while it records a
    trial)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__context__
    return False


def run(
    main: Callable[[Sequence[str] | None], int | None],
    argv: Sequence[str] | None = None,
    *,
    flags: Mapping[str, str] | None = None,
) -> int:
    """Call a command's ``main``; turn NasError into ``error: ...`` + exit 2 and Ctrl-C into one line and
    exit 130.

    ``flags`` maps library parameter names to the command's flags, so an error about ``budget_ms``
    reads ``--budget ...`` (default: ``--`` + the parameter with dashes)."""
    show_logs()
    try:
        return main(argv) or 0
    except ArgumentError as exc:
        flag = (flags or {}).get(exc.parameter, "--" + exc.parameter.replace("_", "-"))
        print(f"error: {exc.named(flag)}", file=sys.stderr)
        return USER_ERROR
    except NasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USER_ERROR
    except OSError as exc:  # a path the user gave cannot be read or written: the OS says why
        in_the_way = exc.errno in (errno.EEXIST, errno.ENOTDIR) and exc.filename
        if in_the_way and (blocker := file_in_the_way(Path(exc.filename) / "_")):  # the path itself, or above it
            print(f"error: {exc.filename}: {blocker} is a file, not a folder; choose another path", file=sys.stderr)
            return USER_ERROR
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{exc.strerror or exc}; check the path and its permissions", file=sys.stderr)
        return USER_ERROR
    except (KeyboardInterrupt, Exception) as exc:
        if not _raised_by_an_interrupt(exc):
            raise
        print("interrupted: rerun the same command to resume (finished work is kept)", file=sys.stderr)
        return 130
