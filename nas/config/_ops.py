"""Op: the unit of latency. A block is priced whole because onnxruntime fuses Conv+BN+act inside it."""

from __future__ import annotations

from dataclasses import dataclass

from nas.config._arch import ArchConfig, HeadConfig, LayerConfig, StemConfig, conv_out

_ACT = {"relu": "re", "hswish": "hs"}
_ACT_NAME = {v: k for k, v in _ACT.items()}
KINDS = ("stem", "ir", "last", "head")


@dataclass(frozen=True, order=True)
class Op:
    """Everything that changes an op's cost; ``key`` is its stable string, e.g. ``ir|r56|i24|e72|o40|k5|s2|se1|re``.

    ``size`` is the input feature-map side. For ``head`` (global pool + hidden linear + classifier),
    ``expanded`` holds the hidden width; for ``stem`` and ``last`` it equals ``out``.
    """

    kind: str
    size: int
    cin: int
    expanded: int
    out: int
    kernel: int = 1
    stride: int = 1
    se: bool = False
    act: str = "relu"

    @property
    def key(self) -> str:
        a = _ACT[self.act]
        if self.kind == "ir":
            return (
                f"ir|r{self.size}|i{self.cin}|e{self.expanded}|o{self.out}|k{self.kernel}|s{self.stride}"
                f"|se{int(self.se)}|{a}"
            )
        if self.kind == "stem":
            return f"stem|r{self.size}|i{self.cin}|o{self.out}|k{self.kernel}|s{self.stride}|{a}"
        if self.kind == "last":
            return f"last|r{self.size}|i{self.cin}|o{self.out}|{a}"
        return f"head|r{self.size}|i{self.cin}|h{self.expanded}|o{self.out}|{a}"

    @property
    def out_size(self) -> int:
        return 1 if self.kind == "head" else conv_out(self.size, self.kernel, self.stride)

    def context_shapes(self) -> tuple[tuple[int, int], tuple[int, int] | None]:
        """(channels, size) of the activations around the op: what its timing context is built from.

        The head ends in a vector, so it has no context after it.
        """
        after = None if self.kind == "head" else (self.out, self.out_size)
        return (self.cin, self.size), after

    @classmethod
    def parse(cls, key: str) -> Op:
        """Inverse of ``key``; raises ValueError on a malformed key."""
        kind, *fields = key.split("|")
        if kind not in KINDS or not fields:
            raise ValueError(f"unknown op key {key!r}")
        act = _ACT_NAME.get(fields.pop())
        values: dict[str, int] = {}
        for part in fields:
            tag = part.rstrip("0123456789")
            number = part[len(tag) :]
            if not number or tag in values:
                raise ValueError(f"malformed op key {key!r}")
            values[tag] = int(number)
        expected = {
            "ir": ["r", "i", "e", "o", "k", "s", "se"],
            "stem": ["r", "i", "o", "k", "s"],
            "last": ["r", "i", "o"],
            "head": ["r", "i", "h", "o"],
        }[kind]
        if act is None or list(values) != expected:
            raise ValueError(f"malformed op key {key!r}")
        return cls(
            kind=kind,
            size=values["r"],
            cin=values["i"],
            expanded=values.get("e", values.get("h", values["o"])),
            out=values["o"],
            kernel=values.get("k", 1),
            stride=values.get("s", 1),
            se=bool(values.get("se", 0)),
            act=act,
        )


def stem_op(size: int, stem: StemConfig) -> Op:
    return Op("stem", size, 3, stem.channels, stem.channels, stem.kernel, stem.stride, False, stem.act)


def layer_op(size: int, cin: int, layer: LayerConfig) -> Op:
    return Op("ir", size, cin, layer.expanded, layer.out, layer.kernel, layer.stride, layer.se, layer.act)


def head_ops(size: int, cin: int, head: HeadConfig, num_classes: int) -> tuple[Op, Op]:
    """Last 1x1 conv and pool + classifier: priced apart, since the last conv's cost depends on ``size``."""
    last = Op("last", size, cin, head.last_channels, head.last_channels, act=head.act)
    classifier = Op("head", size, head.last_channels, head.hidden_channels, num_classes, act=head.act)
    return last, classifier


def ops(config: ArchConfig) -> list[Op]:
    """The latency units of a network, in order: stem, every block, last conv, pool + classifier."""
    units = config.units()
    result = [stem_op(config.resolution, config.stem)]
    for unit, layer in zip(units[1:-2], config.layers, strict=True):
        result.append(layer_op(unit.in_size, unit.in_channels, layer))
    last = units[-2]
    result.extend(head_ops(last.in_size, last.in_channels, config.head, config.num_classes))
    return result
