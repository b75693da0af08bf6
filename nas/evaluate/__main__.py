"""python -m nas.evaluate CONFIG --evaluator NAME: score one network (training shows a progress bar)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

from nas import _cli
from nas.config import ArchConfig
from nas.evaluate import EVALUATORS, get_evaluator, options_for


def _parser() -> argparse.ArgumentParser:
    parser = _cli.parser("nas.evaluate", __doc__)
    parser.add_argument("config", help="config YAML")
    parser.add_argument("--evaluator", default="flops", help=f"one of {', '.join(EVALUATORS)}")
    parser.add_argument("--data", default="digits", help="dataset: 'digits' or a folder (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=300, help="training steps of the train evaluator")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, batches and training")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = ArchConfig.load(args.config)
    options = options_for(args.evaluator, data=args.data, seed=args.seed, steps=args.steps, progress=True)
    evaluator = get_evaluator(args.evaluator, **options)
    score = evaluator.score(config)
    print(
        f"{args.evaluator}: {score.value:.6g} {evaluator.unit} ({score.kind}, {score.fidelity}, {score.seconds:.2f} s)"
    )
    print(json.dumps(score.details, default=str))
    return 0


def entry() -> None:
    """Console script."""
    raise SystemExit(_cli.run(main))


if __name__ == "__main__":
    entry()
