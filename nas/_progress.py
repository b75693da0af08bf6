"""Progress bars with ETA: tqdm where installed, else a plain line printer (device side has no tqdm)."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")
_SILENT: ContextVar[bool] = ContextVar("nas_progress_silent", default=False)


@contextlib.contextmanager
def silenced() -> Iterator[None]:
    """No bars inside: for work done many times over inside a caller that shows its own bar."""
    token = _SILENT.set(True)
    try:
        yield
    finally:
        _SILENT.reset(token)


def progress(items: Iterable[T], *, total: int, desc: str) -> Iterator[T]:
    """Iterate with a progress bar and ETA on stderr (none inside ``silenced()``)."""
    if _SILENT.get():
        yield from items
        return
    try:
        from tqdm import tqdm
    except ImportError:
        tqdm = None
    if tqdm is None or not sys.stderr.isatty():  # a log file gets a line every few seconds, not \r frames
        yield from _plain(items, total=total, desc=desc)
    else:
        yield from tqdm(items, total=total, desc=desc, dynamic_ncols=True, file=sys.stderr)


def _plain(items: Iterable[T], *, total: int, desc: str) -> Iterator[T]:
    start, last = time.monotonic(), 0.0
    for done, item in enumerate(items, 1):
        yield item
        now = time.monotonic()
        if now - last >= 10 or done == total:
            eta = (now - start) / done * (total - done)
            print(f"{desc}: {done}/{total} ({100 * done / max(total, 1):.0f}%), ETA {eta:.0f} s", file=sys.stderr)
            last = now
