"""A search worker process (started by run_search with workers > 1): reads its work, pickled by the
parent process, from standard input, and runs trials on the shared study."""

from __future__ import annotations

import logging
import pickle
import sys

import optuna

from nas._errors import NasError
from nas.search._run import _Work


def main(index: int, verbosity: int) -> int:
    optuna.logging.set_verbosity(verbosity)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    work: _Work = pickle.loads(sys.stdin.buffer.read())  # written by our parent process, not by a user
    try:
        work.run(work.open(work.seed + index), None)
    except NasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(int(sys.argv[1]), int(sys.argv[2])))
