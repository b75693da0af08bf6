"""python -m nas.export CONFIG --out model.onnx: a config as an ONNX model (random weights unless --weights)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from nas import _cli
from nas._files import check_file_out
from nas.config import ArchConfig


def _parser() -> argparse.ArgumentParser:
    parser = _cli.parser("nas.export", __doc__)
    parser.add_argument("config", help="config YAML")
    parser.add_argument("--out", required=True, help="ONNX file to write")
    parser.add_argument(
        "--weights",
        help="state dict saved with torch.save, loaded with weights_only=True (default: none, random weights)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights when --weights is absent")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    out = Path(args.out)
    check_file_out(out, flag="--out", example="model.onnx")

    config = ArchConfig.load(args.config)
    from nas.model import build_model, export_onnx, load_weights  # torch only once the input is valid

    if args.weights:
        model = build_model(config)
        load_weights(model, args.weights)
        export_onnx(model, out)
    else:
        export_onnx(config, out, seed=args.seed)
    print(f"wrote {out} ({config.name or Path(args.config).stem}: {config.macs():,} MACs, {config.params():,} params)")
    return 0


def entry() -> None:
    """Console script."""
    raise SystemExit(_cli.run(main))


if __name__ == "__main__":
    entry()
