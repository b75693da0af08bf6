"""python -m nas: the commands nas has, each also a console script."""

from __future__ import annotations

COMMANDS = {
    "search": "search a space for the best networks within a latency budget",
    "netadapt": "trim a network's filter counts to a latency budget",
    "pipeline": "search -> NetAdapt -> training -> export -> report, in one resumable command",
    "latency": "build, measure, extend, validate and show latency tables",
    "evaluate": "score one network with an accuracy evaluator",
    "export": "write a config (and weights) as ONNX",
    "space": "show a search space or a config",
    "supernet": "train a weight-sharing supernet for a space; extract a config's weights from it",
}


def main() -> None:
    lines = ["usage: python -m nas.COMMAND --help   (or the console script nas-COMMAND)", "", "commands:"]
    lines += [f"  {name:<9} {what}  (python -m nas.{name}, nas-{name})" for name, what in COMMANDS.items()]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
