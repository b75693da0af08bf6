"""python -m nas.space show FILE: a config as a per-layer table, or a space with its size."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from nas import _cli
from nas._errors import NasError
from nas._paths import find_shipped
from nas._yaml import read_mapping
from nas.config import ArchConfig, describe_config
from nas.space._describe import describe_space
from nas.space._space import SearchSpace


def _parser() -> argparse.ArgumentParser:
    parser = _cli.parser("nas.space", __doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser(
        "show", help="describe a config file or a search-space file", formatter_class=_cli.HelpFormatter
    )
    show.add_argument("file", help="a config YAML (has 'layers') or a space YAML (has 'stages'), or a shipped name")
    show.add_argument("--markdown", action="store_true", help="print a config's table as Markdown")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    path = str(find_shipped(args.file))
    data = read_mapping(path)
    if "stages" in data:
        print(describe_space(SearchSpace.from_dict(data, source=path)))
    elif "layers" in data:
        print(describe_config(ArchConfig.from_dict(data, source=path), markdown=args.markdown))
    else:
        raise NasError(f"{args.file}: neither a config (needs 'layers') nor a space (needs 'stages')")
    return 0


def entry() -> None:
    """Console script."""
    raise SystemExit(_cli.run(main))


if __name__ == "__main__":
    entry()
