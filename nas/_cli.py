"""What every nas command shares: user mistakes end in one line on stderr and exit code 2."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from nas._errors import NasError

USER_ERROR = 2


def run(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    """Call a command's ``main``; turn NasError into ``error: ...`` + exit 2 and Ctrl-C into exit 130."""
    try:
        return main(argv) or 0
    except NasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
