"""What every part of a network declares, and the registry that finds a part by its YAML ``type`` tag or its
latency-key kind. Torch-free: a part's torch module is built by ``modules``, which imports torch lazily.

A *part* is a frozen dataclass: a stem, a block or a head type of a config (``Part``), or one latency unit
of a head (``OpPart``). Everything nas knows about a part lives on its class: its fields and their checks,
its space choices, output shape, analytic MACs and parameters, latency key, estimator features and the
torch modules it becomes. config, space, model, latency and netadapt only ask.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar

from nas._fields import Field

if TYPE_CHECKING:
    from torch import nn

ROLES = ("stem", "block", "head")
ACT_CODES = {"relu": "re", "hswish": "hs", "relu6": "r6"}
ACTIVATIONS = tuple(ACT_CODES)
STRIDES = (1, 2)


def conv_out(size: int, kernel: int, stride: int, padding: int | None = None, *, ceil: bool = False) -> int:
    """Output side of a convolution or pooling; 'same' padding ((kernel - 1) // 2) unless given."""
    pad = (kernel - 1) // 2 if padding is None else padding
    span = size + 2 * pad - kernel
    return (-(-span // stride) if ceil else span // stride) + 1


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor`` without losing more than 10 % (MobileNet convention)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class Norm:
    """BatchNorm settings of a network: a family's, so its published weights load and compute unchanged."""

    eps: float = 0.001  # torchvision's MobileNetV3; MobileNetV2 and ShuffleNetV2 use torch's 1e-5, 0.1
    momentum: float = 0.01


@dataclass(frozen=True)
class Choice:
    """One searchable value of a part type: its space key, how to read one option, and the options when the
    space does not list it (None: the space must list it)."""

    name: str
    read: Callable[[Field], Any]
    default: tuple[Any, ...] | None = None


@dataclass(frozen=True)
class Slice:
    """A tensor indexed by a prunable set of channels: ``key`` below the path of the part's module
    ``module`` (an index into ``modules()``), along ``dim``; ``norm`` marks the filters whose L2 norm
    decides which channels stay (NetAdapt keeps the largest)."""

    module: int
    key: str
    dim: int
    norm: bool = False


def conv_bn(prefix: str, dim: int = 0, *, module: int = -1, norm: bool = True) -> list[Slice]:
    """Output channels of a Conv+BN pair named ``{prefix}.0`` and ``{prefix}.1`` (torchvision's layout)."""
    bn = [Slice(module, f"{prefix}.1.{name}", 0) for name in ("weight", "bias", "running_mean", "running_var")]
    return [Slice(module, f"{prefix}.0.weight", dim, norm), *bn]


@dataclass(frozen=True)
class Dependent:
    """Channels that follow a prunable set: SE's squeeze width, recomputed from the new width by ``count``
    and chosen by the norms of the ``norm`` slice (read with the kept outer channels only)."""

    count: Callable[[int], int]
    norm: Slice
    outer_dim: int
    slices: tuple[Slice, ...]


@dataclass(frozen=True)
class Prunable:
    """What shrinking one width of a part touches: the slices indexed by it and any dependent set."""

    slices: tuple[Slice, ...]
    dependent: Dependent | None = None


@dataclass(frozen=True)
class Row:
    """A part as a row of the MobileNetV3 paper's layer tables (describe_config)."""

    operator: str
    kernel: object = ""
    expanded: object = ""
    out: object = ""
    se: bool = False
    act: str = ""
    stride: object = ""


MAX_CHANNELS = 16384  # a 1x1 conv between two such layers is already 268M weights (1 GB)
MAX_RESOLUTION = 4096  # one float32 activation of 16 channels at 4096 px is already 1 GB


def channels(f: Field) -> int:
    return f.integer(minimum=1, maximum=MAX_CHANNELS, why="wider layers would not fit in memory")


def resolution(f: Field) -> int:
    return f.integer(minimum=8, maximum=MAX_RESOLUTION, why="a larger input would not fit in memory")


def kernel(f: Field) -> int:
    return f.integer(allowed=(3, 5, 7))


def stride(f: Field) -> int:
    return f.integer(allowed=STRIDES)


def activation(f: Field) -> str:
    return f.text(allowed=ACTIVATIONS)


def flag(f: Field) -> bool:
    return f.boolean()


def fraction(f: Field) -> float:
    return f.number(minimum=0.0, below=1.0)


@dataclass(frozen=True)
class OpPart:
    """A latency unit: ``OP`` is its key's kind, ``KEY`` the (tag, field) pairs after ``r{size}|i{cin}``;
    a field named ``act`` ends the key as its code. ``AXES`` are the channel fields a measured table may
    interpolate over (``cin`` is the input width)."""

    OP: ClassVar[str] = ""
    KEY: ClassVar[tuple[tuple[str, str], ...]] = ()
    AXES: ClassVar[tuple[str, ...]] = ()
    # Whether an estimate from MobileNetV3 transfer data prices it by extrapolation (ops unlike any it saw).
    EXTRAPOLATED: ClassVar[bool] = False

    def out_channels(self, cin: int) -> int:
        raise NotImplementedError

    def out_size(self, size: int) -> int:
        raise NotImplementedError

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        """(MACs, params): convolutions and linear layers (BN, activations and SE scaling excluded), and
        every trainable parameter as the built torch module counts them."""
        raise NotImplementedError

    def features(self, cin: int, size: int) -> dict[str, float]:
        """Unscaled estimator features (MACs / elements / weights by FEATURES name, without the ``m``)."""
        raise NotImplementedError

    def row(self) -> Row:
        raise NotImplementedError

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        """The torch modules, each with its role in a network: stem, block, last, pool or classifier."""
        raise NotImplementedError

    # ---- latency keys ----------------------------------------------------------------------------
    def key_fields(self) -> str:
        parts = []
        for tag, name in self.KEY:
            value = getattr(self, name)
            parts.append(f"{tag}{int(value)}")
        if "act" in _field_names(type(self)):
            parts.append(ACT_CODES[self.act])  # type: ignore[attr-defined]
        return "|".join(parts)

    @classmethod
    def from_key_fields(cls, values: dict[str, int], act: str | None) -> OpPart:
        kwargs: dict[str, Any] = {}
        types = {f.name: f.type for f in dataclasses.fields(cls)}
        for tag, name in cls.KEY:
            kwargs[name] = bool(values[tag]) if types[name] in ("bool", bool) else values[tag]
        if act is not None:
            kwargs["act"] = act
        return cls(**kwargs)

    def context_channels(self, cin: int) -> int | None:
        """Channels of the activation after the op (None after a classifier: it ends in a vector)."""
        return self.out_channels(cin)

    # ---- NetAdapt (Yang et al. 2018): which widths may shrink and which tensors follow ---------------
    FIXED: ClassVar[str] = ""  # which of its widths stay fixed and why, when NetAdapt cannot prune them
    WIDTH: ClassVar[str] = "out"  # the field holding its output width ("": it has none of its own)

    def internal(self, cin: int) -> dict[str, Prunable]:
        """Widths inside the part that can shrink without touching its neighbours (field -> tensors)."""
        return {}

    def output(self, cin: int) -> Prunable | None:
        """Tensors that make the output channels (None: the output width cannot shrink)."""
        return None

    def reads(self, cin: int) -> Prunable | None:
        """Tensors that read the input channels, so it can take a narrower input (None: it cannot)."""
        return None

    def keeps_width(self, cin: int) -> bool:
        """Whether its output width is tied to its input's (a residual add, a split, a pass-through)."""
        return False

    def structure(self, cin: int) -> tuple[object, ...]:
        """What must not change when a width shrinks (e.g. whether an expand conv exists)."""
        return ()

    # ---- weight sharing ----------------------------------------------------------------------------
    def state_names(self, cin: int) -> dict[str, str]:
        """Module prefixes whose place moves with the config, by what they are (``{"block.0": "expand"}``):
        a supernet shares a tensor between configs by this name, not by position (an optional part before
        it would otherwise shift it onto another part's weights)."""
        return {}


class ClassifierPart(OpPart):
    """A head's final unit: it ends in a vector of ``classes`` scores, with no activation map after it."""

    classes: int  # declared by each subclass's dataclass fields

    def out_channels(self, cin: int) -> int:
        return self.classes

    def out_size(self, size: int) -> int:
        return 1

    def context_channels(self, cin: int) -> int | None:
        return None


@dataclass(frozen=True)
class Part(OpPart):
    """A stem, block or head type of a config: ``TYPE`` is its YAML tag, ``ROLE`` where it goes.

    Most parts are one latency unit themselves; a part made of several (MobileNetV3's head: last conv,
    then pool and classifier) returns them from ``op_parts``. ``CHOICES`` are what a space may choose.
    """

    TYPE: ClassVar[str]
    ROLE: ClassVar[str]
    SCHEMA: ClassVar[dict[str, Callable[[Field], Any]]]
    CHOICES: ClassVar[tuple[Choice, ...]] = ()

    def op_parts(self, num_classes: int) -> tuple[OpPart, ...]:
        return (self,)

    def problem(self, cin: int) -> str | None:
        """Why the part cannot follow ``cin`` channels, with the fix; None when it can."""
        return None

    def check(self, f: Field, cin: int) -> None:
        """A config's part after ``cin`` channels: its problem, if any, as an error naming the field."""
        if problem := self.problem(cin):
            raise f.error(problem)

    def checked(self, cin: int) -> Part:
        """A space's part after ``cin`` channels: itself, or ValueError with its problem."""
        if problem := self.problem(cin):
            raise ValueError(problem)
        return self

    @classmethod
    def parse(cls, f: Field) -> Part:
        """The part from its YAML mapping (the ``type`` key already read), every field checked."""
        defaults = {x.name for x in dataclasses.fields(cls) if x.default is not dataclasses.MISSING}
        names = [name for name in cls.SCHEMA if name not in defaults]
        optional = ["type", *(name for name in cls.SCHEMA if name in defaults)]
        keys = f.mapping(names, optional)
        return cls(**{name: read(keys[name]) for name, read in cls.SCHEMA.items() if name in keys})

    def to_dict(self, default_type: str) -> dict[str, Any]:
        data: dict[str, Any] = {} if default_type == self.TYPE else {"type": self.TYPE}
        data.update((x.name, getattr(self, x.name)) for x in dataclasses.fields(self))
        return data

    @classmethod
    def from_choices(cls, values: dict[str, Any], *, cin: int, width: int, stride: int) -> Part:
        """The part a space's chosen ``values`` make (blocks: at ``width`` and ``stride`` after ``cin``
        channels; stems and heads take their fields from ``values``); ValueError when not a valid block."""
        return cls(**values)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(x.name for x in dataclasses.fields(cls))


# ---- the registry -------------------------------------------------------------------------------
_TYPES: dict[str, dict[str, type[Part]]] = {role: {} for role in ROLES}
_OPS: dict[str, type[OpPart]] = {}
DEFAULT_TYPE = {"stem": "conv", "block": "mbv3", "head": "mbv3"}


def register(cls: type[OpPart]) -> type[OpPart]:
    """Class decorator: make a part known by its YAML type (parts) and its latency kind."""
    if cls.OP:  # a part made of several latency units has none of its own
        if cls.OP in _OPS and _OPS[cls.OP] is not cls:
            raise ValueError(f"latency kind {cls.OP!r} is taken by {_OPS[cls.OP].__name__}")
        _OPS[cls.OP] = cls
    if issubclass(cls, Part):
        _TYPES[cls.ROLE][cls.TYPE] = cls
    return cls


def part_types(role: str) -> Mapping[str, type[Part]]:
    """The registered types of a role (stem, block, head) by YAML tag (a read-only view: no copy)."""
    return MappingProxyType(_TYPES[role])


def part_type(role: str, f: Field) -> type[Part]:
    """The type a YAML mapping's ``type`` names (the role's default when absent); unknown types are errors."""
    name = DEFAULT_TYPE[role]
    if isinstance(f.value, dict) and "type" in f.value:
        name = Field(f.source, f"{f.path}.type" if f.path else "type", f.value["type"]).text(allowed=list(_TYPES[role]))
    return _TYPES[role][name]


def parse_part(role: str, f: Field) -> Part:
    return part_type(role, f).parse(f)


@functools.lru_cache(maxsize=1 << 14)
def walk(part: Part, cin: int, size: int, num_classes: int) -> tuple[Op, ...]:
    """The latency units of ``part`` seen from input ``cin`` x ``size``, in order (remembered: a search
    prices thousands of configs made of the same few hundred parts)."""
    ops = []
    for op_part in part.op_parts(num_classes):
        ops.append(Op(size, cin, op_part))
        cin, size = ops[-1].out, ops[-1].out_size
    return tuple(ops)


@dataclass(frozen=True)
class Op:
    """One latency unit of a network: a part at an input width ``cin`` and input side ``size``.

    ``key`` is its stable string, e.g. ``ir|r56|i24|e72|o40|k5|s2|se1|re``.
    """

    size: int
    cin: int
    part: OpPart

    @property
    def kind(self) -> str:
        return self.part.OP

    @functools.cached_property
    def key(self) -> str:  # cached: a table looks it up for every op of every config it prices
        return f"{self.part.OP}|r{self.size}|i{self.cin}|{self.part.key_fields()}"

    @property
    def out(self) -> int:
        return self.part.out_channels(self.cin)

    @property
    def out_size(self) -> int:
        return self.part.out_size(self.size)

    @property
    def extrapolated(self) -> bool:
        return self.part.EXTRAPOLATED

    def axes(self) -> dict[str, int]:
        """The channel coordinates a measured table may interpolate over."""
        return {axis: self.cin if axis == "cin" else getattr(self.part, axis) for axis in self.part.AXES}

    def shape(self) -> tuple[object, ...]:
        """Everything but the channel coordinates: ops that share it may be interpolated between."""
        fixed = tuple((x.name, getattr(self.part, x.name)) for x in dataclasses.fields(self.part) if x.compare)
        return (self.kind, self.size, *(item for item in fixed if item[0] not in self.part.AXES))

    def cost(self) -> tuple[int, int]:
        return self.part.cost(self.cin, self.size)

    def features(self) -> dict[str, float]:
        return self.part.features(self.cin, self.size)

    def context_shapes(self) -> tuple[tuple[int, int], tuple[int, int] | None]:
        """(channels, size) of the activations around the op: what its timing context is built from."""
        after = self.part.context_channels(self.cin)
        return (self.cin, self.size), None if after is None else (after, self.out_size)

    def sort_key(self) -> tuple[object, ...]:
        return (self.kind, self.size, self.cin, dataclasses.astuple(self.part))

    def __lt__(self, other: Op) -> bool:
        return self.sort_key() < other.sort_key()

    @classmethod
    def parse(cls, key: str) -> Op:
        """Inverse of ``key``; raises ValueError on a malformed key."""
        kind, *fields = key.split("|")
        part_cls = _OPS.get(kind)
        if part_cls is None or len(fields) < 2:
            raise ValueError(f"unknown op key {key!r}")
        act = None
        if "act" in _field_names(part_cls):
            act = {code: name for name, code in ACT_CODES.items()}.get(fields.pop())
            if act is None:
                raise ValueError(f"malformed op key {key!r}")
        values: dict[str, int] = {}
        for part in fields:
            tag = part.rstrip("0123456789")
            number = part[len(tag) :]
            if not number or tag in values:
                raise ValueError(f"malformed op key {key!r}")
            values[tag] = int(number)
        if list(values) != ["r", "i", *(tag for tag, _ in part_cls.KEY)]:
            raise ValueError(f"malformed op key {key!r}")
        return cls(values.pop("r"), values.pop("i"), part_cls.from_key_fields(values, act))
