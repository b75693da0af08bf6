"""python -m nas.supernet train --space SPACE --data fashion-mnist --out runs/sn: train one weight-sharing
supernet for a space (sandwich rule, in-place distillation; resumable; torchrun for several processes).

python -m nas.supernet extract --supernet runs/sn/supernet.pt --config X --out w.pt: a config's weights,
loadable by build_model (nas.netadapt --weights, fine-tuning, nas.export).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from nas import _cli
from nas._paths import DEFAULT_SPACE


def _train_parser() -> argparse.ArgumentParser:
    p = _cli.parser("nas.supernet train", __doc__)
    p.add_argument("--space", default=DEFAULT_SPACE, help="search space YAML (default: the default space)")
    p.add_argument("--data", default="fashion-mnist", help="dataset (default: %(default)s)")
    p.add_argument("--out", type=Path, default=Path("runs/supernet"), help="folder (default: %(default)s)")
    p.add_argument("--steps", type=int, default=2000, help="training steps (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step, all processes (default: %(default)s)")
    p.add_argument("--lr", type=float, default=0.1, help="peak learning rate (cosine; default: %(default)s)")
    p.add_argument("--resolution", type=int, default=32, help="training resolution (default: %(default)s)")
    p.add_argument("--random-subnets", type=int, default=2, help="random configs per step besides the largest"
                   " and smallest (default: %(default)s)")  # fmt: skip
    p.add_argument("--sort-every", type=int, default=250, help="steps between reorderings of each block's channels"
                   " by importance, 0 for never (default: %(default)s)")  # fmt: skip
    p.add_argument("--few-shot", action="store_true", help="one supernet of --steps steps per downsampling profile"
                   " (few-shot NAS): ranks better, costs parts x steps")  # fmt: skip
    p.add_argument("--part", type=int, help="with --few-shot: train this part only (run several side by side;"
                   " a run without --part then folds them together; default: every part)")  # fmt: skip
    p.add_argument("--chunk", type=int, default=50, help="steps between checkpoints (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="seed of weights, batches, subnets (default: %(default)s)")
    return p


def _extract_parser() -> argparse.ArgumentParser:
    p = _cli.parser("nas.supernet extract", __doc__)
    p.add_argument("--supernet", required=True, help="supernet file (nas.supernet train's supernet.pt)")
    p.add_argument("--config", required=True, help="config YAML of the supernet's space")
    p.add_argument("--out", type=Path, required=True, help="weights file to write")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command, rest = (argv[0], argv[1:]) if argv else ("", [])
    from nas.supernet import extract_weights, train_supernet

    if command == "train":
        args = _train_parser().parse_args(rest)
        path = train_supernet(
            space=args.space,
            out=args.out,
            data=args.data,
            resolution=args.resolution,
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            random_subnets=args.random_subnets,
            seed=args.seed,
            sort_every=args.sort_every,
            few_shot=args.few_shot,
            part=args.part,
            chunk=args.chunk,
            progress=sys.stderr.isatty(),
        )
        if args.part is not None:
            print(f"part {args.part}: {path} (once every part is trained, rerun without --part to fold them together)")
        else:
            print(f"supernet: {path} (score configs with --evaluator supernet --supernet {path})")
        return 0
    if command == "extract":
        args = _extract_parser().parse_args(rest)
        path = extract_weights(args.supernet, args.config, args.out)
        print(f"weights: {path} (inherited from {args.supernet}; recalibrate BN or fine-tune before use)")
        return 0
    _cli.parser("nas.supernet", __doc__).error("give a command: train or extract")
    return 2


def entry() -> None:
    """Console script."""
    raise SystemExit(_cli.run(main))


if __name__ == "__main__":
    entry()
