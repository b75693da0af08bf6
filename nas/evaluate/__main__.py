"""python -m nas.evaluate CONFIG --evaluator NAME: score one network (training shows a progress bar).

python -m nas.evaluate fit-predictor --study runs/NAME (or --csv FILE --space SPACE): fit an accuracy
predictor on scored configs, for --evaluator predictor --predictor FILE.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from nas import _cli
from nas._errors import NasError, check_seed
from nas.config import ArchConfig
from nas.evaluate import EVALUATORS, get_evaluator
from nas.space import SearchSpace


def _parser() -> argparse.ArgumentParser:
    parser = _cli.parser("nas.evaluate", __doc__)
    parser.add_argument("config", help="config YAML")
    parser.add_argument("--evaluator", default="flops", help=f"one of {', '.join(EVALUATORS)}")
    parser.add_argument("--data", help="dataset: 'digits' or a folder (default: digits)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights, batches and training")
    _cli.add_evaluator_flags(parser)
    return parser


def _fit_parser() -> argparse.ArgumentParser:
    parser = _cli.parser("nas.evaluate fit-predictor", __doc__)
    parser.add_argument("--study", type=Path, help="a finished search's folder (default: none, use --csv)")
    parser.add_argument("--csv", type=Path, help="a CSV of 'config' (YAML path) and 'score' columns (default: none)")
    parser.add_argument("--space", help="the configs' space, with --csv (default: none)")
    parser.add_argument("--unit", default="score", help="what the CSV's scores are, e.g. 'held-out top-1'")
    parser.add_argument("--holdout", type=float, default=0.2, help="share kept out of the fit to measure it")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split")
    parser.add_argument("--out", type=Path, help="predictor file (default: STUDY/predictor.npz, or next to the CSV)")
    return parser


def _fit(argv: Sequence[str]) -> int:
    args = _fit_parser().parse_args(argv)
    from nas.evaluate._fitted import fit_predictor

    if (args.study is None) == (args.csv is None):
        raise NasError("fit-predictor: give --study FOLDER or --csv FILE (with --space)")
    if not 0 < args.holdout < 1:
        raise NasError(f"--holdout {args.holdout}: use a share between 0 and 1, e.g. 0.2")
    if args.study is not None:
        from nas.search import scored_configs

        _cli.quiet_optuna()
        configs, scores, space, unit = scored_configs(args.study)
        out = args.out or args.study / "predictor.npz"
    else:
        configs, scores = _read_csv(args.csv)
        if args.space is None:
            raise NasError("--csv needs --space: the space the configs come from")
        space, unit = SearchSpace.load(args.space), args.unit
        out = args.out or args.csv.with_suffix(".predictor.npz")
    fitted = fit_predictor(configs, scores, space=space, unit=unit, holdout=args.holdout, seed=args.seed)
    fitted.save(out)
    m = fitted.metrics
    print(
        f"predictor {out}: ridge on {len(fitted.vocabulary)} features, fitted on {m['n_train']:.0f} configs;"
        f" on {m['n_holdout']:.0f} held out: Kendall tau {m['kendall_tau']:.3f}, Spearman {m['spearman']:.3f},"
        f" mean error {m['mae']:.4g} ({unit})"
    )
    return 0


def _read_csv(path: Path) -> tuple[list[ArchConfig], list[float]]:
    try:
        with path.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise NasError(f"{path}: cannot read it ({exc.strerror})") from None
    configs, scores = [], []
    for line, row in enumerate(rows, 2):
        try:
            score = float(row["score"])
            configs.append(ArchConfig.load(path.parent / row["config"]))
        except (KeyError, TypeError, ValueError):
            raise NasError(f"{path}: line {line}: needs a 'config' path and a numeric 'score'") from None
        scores.append(score)
    return configs, scores


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["fit-predictor"]:
        return _fit(argv[1:])
    args = _parser().parse_args(argv)
    check_seed(args.seed)
    config = ArchConfig.load(args.config)
    options = _cli.evaluator_options(args, progress=True)
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
