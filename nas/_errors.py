"""User-facing errors: the CLIs print these as one line and exit 2, without a traceback."""

from __future__ import annotations


class NasError(Exception):
    """A mistake in the user's input (file, flag or value) that the message tells how to fix."""


class SpecError(NasError, ValueError):
    """A YAML file whose content breaks the schema; the message names the file and the field path."""

    def __init__(self, source: str, path: str, message: str) -> None:
        self.source = source
        self.path = path
        where = f"{source}: {path}" if path else source
        super().__init__(f"{where}: {message}")


class OutsideSpaceError(NasError):
    """A config an evaluator cannot score because it is not of the space the evaluator knows (a predictor
    of one space); a search leaves such reference networks out of its comparison."""


class ArgumentError(NasError):
    """A bad value of a library parameter. The message names the parameter (``budget_ms 0 ms: ...``);
    a CLI shows the flag the value came from instead (``--budget 0 ms: ...``)."""

    def __init__(self, parameter: str, shown: str, problem: str) -> None:
        self.parameter, self.shown, self.problem = parameter, shown, problem
        super().__init__(self.named(parameter))

    def named(self, name: str) -> str:
        return f"{name} {self.shown}: {self.problem}"


def check_seed(seed: int) -> None:
    """Seeds feed numpy and torch, which take 0 to 2**32 - 1."""
    if not 0 <= seed < 2**32:
        raise ArgumentError("seed", str(seed), "use an integer from 0 to 2**32 - 1")
