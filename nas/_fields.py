"""Schema checks for YAML documents: every error names the file, the field path and the fix."""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from nas._errors import SpecError

T = TypeVar("T")


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _listing(values: Collection[Any]) -> str:
    return ", ".join(_show(v) for v in values)


@dataclass(frozen=True)
class Field:
    """One value of a parsed YAML document, with where it came from."""

    source: str
    path: str
    value: Any

    def error(self, message: str) -> SpecError:
        return SpecError(self.source, self.path, message)

    def _child(self, key: str | int) -> Field:
        if isinstance(key, int):
            return Field(self.source, f"{self.path}[{key}]", self.value[key])
        return Field(self.source, f"{self.path}.{key}" if self.path else key, self.value[key])

    def _got(self) -> str:
        return f"got {_show(self.value)} ({type(self.value).__name__})"

    def mapping(
        self, required: Sequence[str], optional: Sequence[str] = (), *, extra: bool = False
    ) -> dict[str, Field]:
        """The keys of a mapping, refusing missing keys and (unless ``extra``) unknown ones."""
        if not isinstance(self.value, dict):
            raise self.error(f"expected a mapping with keys {', '.join(required)}; {self._got()}")
        allowed = [*required, *optional]
        if extra:
            allowed += [key for key in self.value if key not in allowed]
        for key in self.value:
            if key not in allowed:
                raise self.error(f"unknown key {_show(key)}; allowed keys: {', '.join(allowed)}")
        for key in required:
            if key not in self.value:
                raise self.error(f"missing key {_show(key)}; add it (required keys: {', '.join(required)})")
        return {key: self._child(key) for key in allowed if key in self.value}

    def items(self) -> list[Field]:
        """The entries of a non-empty list."""
        if not isinstance(self.value, list):
            raise self.error(f"expected a list; {self._got()}")
        if not self.value:
            raise self.error("the list is empty; give at least one entry")
        return [self._child(i) for i in range(len(self.value))]

    def integer(
        self, *, minimum: int = 1, maximum: int | None = None, why: str = "", allowed: Collection[int] | None = None
    ) -> int:
        """``maximum`` keeps sizes a machine can hold (``why`` says what the limit protects)."""
        value = self.value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected an integer; {self._got()}")
        if allowed is not None and value not in allowed:
            raise self.error(f"{value} is not allowed; use one of {_listing(allowed)}")
        if value < minimum:
            raise self.error(f"{value} is too small; use an integer >= {minimum}")
        if maximum is not None and value > maximum:
            raise self.error(f"{value} is too large; use an integer <= {maximum}{f' ({why})' if why else ''}")
        return value

    def number(self, *, minimum: float, below: float | None = None, positive: bool = False) -> float:
        value = self.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(f"expected a number; {self._got()}")
        if not math.isfinite(value):
            bound = f" >= {minimum}" if math.isfinite(minimum) else ""
            raise self.error(f"{value} is not a finite number; give a finite number{bound}")
        if value < minimum or (positive and value <= 0) or (below is not None and value >= below):
            upper = f" and < {below}" if below is not None else ""
            lower = f"> {minimum}" if positive else f">= {minimum}"
            raise self.error(f"{value} is out of range; use a number {lower}{upper}")
        return float(value)

    def boolean(self) -> bool:
        if not isinstance(self.value, bool):
            raise self.error(f"expected true or false; {self._got()}")
        return self.value

    def text(self, *, allowed: Collection[str] | None = None) -> str:
        if not isinstance(self.value, str):
            raise self.error(f"expected a string; {self._got()}")
        if allowed is not None and self.value not in allowed:
            raise self.error(f"{_show(self.value)} is not allowed; use one of {_listing(allowed)}")
        return self.value

    def choices(self, read: Callable[[Field], T]) -> tuple[T, ...]:
        """A single value or a non-empty list of distinct values, each checked by ``read``."""
        if not isinstance(self.value, list):
            return (read(self),)
        values = tuple(read(item) for item in self.items())
        for i, value in enumerate(values):
            if value in values[:i]:
                raise self._child(i).error(f"{_show(value)} is listed twice; list each choice once")
        return values
