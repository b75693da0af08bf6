"""MobileNetV3 (Howard et al. 2019): the conv stem, the inverted residual with optional SE (``mbv3``, the
type of a layer without a ``type`` tag) and the head (last 1x1 conv; pool, hidden linear, classifier).

Torch modules keep torchvision's MobileNetV3 layout, so its state dicts load by position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from nas.blocks._base import (
    ACT_CODES,
    Choice,
    ClassifierPart,
    Dependent,
    Norm,
    OpPart,
    Part,
    Prunable,
    Row,
    Slice,
    activation,
    channels,
    conv_bn,
    conv_out,
    flag,
    fraction,
    kernel,
    make_divisible,
    register,
    stride,
)

if TYPE_CHECKING:
    from torch import nn


def se_channels(expanded: int) -> int:
    """Squeeze width of the SE module, as torchvision's MobileNetV3: make_divisible(expanded // 4, 8)."""
    return make_divisible(expanded // 4, 8)


def expanded_channels(in_channels: int, ratio: float) -> int:
    """Expansion ratio -> expanded channels; ratio 1 keeps the input width (no expand 1x1)."""
    return in_channels if ratio == 1 else make_divisible(in_channels * ratio)


def expansion(f: Any) -> float:
    return f.number(minimum=1.0)


def nl(act: str) -> str:
    """The paper tables' nonlinearity column: RE, HS, R6."""
    return ACT_CODES[act].upper()


def conv_features(cin: int, out: int, size: int, out_size: int, kernel: int, act: str) -> dict[str, float]:
    """Estimator features of a full (ungrouped, non-1x1 or 1x1) conv + BN + act, activations around it."""
    name = "conv1x1_macs" if kernel == 1 else "full_conv_macs"
    return {
        name: out_size * out_size * cin * out * kernel**2,
        "activation_elems": cin * size * size + out * out_size * out_size,
        "hswish_elems": out * out_size * out_size * (act == "hswish"),
    }


def bottleneck_cost(cin: int, exp: int, out: int, k: int, size: int, out_size: int, *, se: bool) -> tuple[int, int]:
    """(MACs, params) of an inverted residual (MobileNetV2/V3): expand 1x1 unless exp == cin, depthwise,
    optional SE, project 1x1; BN after every conv."""
    o = out_size
    macs = o * o * exp * (k * k + out)
    params = exp * k * k + 2 * exp + exp * out + 2 * out
    if exp != cin:
        macs += size * size * cin * exp
        params += cin * exp + 2 * exp
    if se:
        squeeze = se_channels(exp)
        macs += 2 * exp * squeeze
        params += 2 * exp * squeeze + squeeze + exp
    return macs, params


def bottleneck_features(
    cin: int, e: int, out: int, k: int, size: int, out_size: int, *, se: bool, act: str
) -> dict[str, float]:
    s, o = size * size, out_size * out_size
    hswish = act == "hswish"
    f = {"conv1x1_macs": 0.0, "activation_elems": 0.0, "hswish_elems": 0.0}
    if e != cin:
        f["conv1x1_macs"] += s * cin * e
        f["activation_elems"] += e * s
        f["hswish_elems"] += e * s * hswish
    f[f"dw{min(max(k, 3), 7)}_macs"] = o * e * k**2
    f["conv1x1_macs"] += o * e * out + 2 * e * se_channels(e) * se  # project, SE's two FCs
    f["activation_elems"] += cin * s + e * o + out * o
    f["hswish_elems"] += e * o * hswish
    f["se_elems"] = e * o * se
    return f


def bottleneck_widths(expand: str | None, dw: str, project: str, se: str | None) -> Prunable | None:
    """NetAdapt's unit inside an inverted residual: the expanded width (expand filters, the depthwise
    channels, the projection's inputs, SE with its squeeze width following). None without an expand conv:
    the depthwise width is then the input's."""
    if expand is None:
        return None
    slices = [*conv_bn(expand), *conv_bn(dw, norm=False), Slice(-1, f"{project}.weight", 1)]
    if se is None:
        return Prunable(tuple(slices))
    slices += [Slice(-1, f"{se}.fc1.weight", 1), Slice(-1, f"{se}.fc2.weight", 0), Slice(-1, f"{se}.fc2.bias", 0)]
    squeeze = (Slice(-1, f"{se}.fc1.weight", 0), Slice(-1, f"{se}.fc1.bias", 0), Slice(-1, f"{se}.fc2.weight", 1))
    return Prunable(tuple(slices), Dependent(se_channels, Slice(-1, f"{se}.fc1.weight", 0, True), 1, squeeze))


@register
@dataclass(frozen=True, order=True)
class StemConfig(Part):
    """The first full convolution (3 input channels) + BN + activation."""

    TYPE: ClassVar[str] = "conv"
    ROLE: ClassVar[str] = "stem"
    OP: ClassVar[str] = "stem"
    KEY: ClassVar[tuple[tuple[str, str], ...]] = (("o", "channels"), ("k", "kernel"), ("s", "stride"))
    AXES: ClassVar[tuple[str, ...]] = ("channels",)
    SCHEMA: ClassVar[dict[str, Any]] = {"channels": channels, "kernel": kernel, "stride": stride, "act": activation}
    CHOICES: ClassVar[tuple[Choice, ...]] = (
        Choice("channels", channels),
        Choice("kernel", kernel, (3,)),
        Choice("stride", stride, (2,)),
        Choice("act", activation, ("hswish",)),
    )

    channels: int
    kernel: int = 3
    stride: int = 2
    act: str = "hswish"

    def out_channels(self, cin: int) -> int:
        return self.channels

    def out_size(self, size: int) -> int:
        return conv_out(size, self.kernel, self.stride)

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        o = self.out_size(size)
        return o * o * cin * self.channels * self.kernel**2, cin * self.channels * self.kernel**2 + 2 * self.channels

    def features(self, cin: int, size: int) -> dict[str, float]:
        return conv_features(cin, self.channels, size, self.out_size(size), self.kernel, self.act)

    def row(self) -> Row:
        k = self.kernel
        return Row(f"conv2d {k}x{k}", k, "", self.channels, False, nl(self.act), self.stride)

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        from nas.model._layers import ConvBNAct

        return [("stem", ConvBNAct(cin, self.channels, self.kernel, stride=self.stride, act=self.act, norm=norm))]


@register
@dataclass(frozen=True, order=True)
class LayerConfig(Part):
    """One inverted-residual block: expand 1x1 (absent when expanded == input width) -> depthwise kxk ->
    optional SE -> project 1x1, with a skip when stride is 1 and the width is kept."""

    TYPE: ClassVar[str] = "mbv3"
    ROLE: ClassVar[str] = "block"
    OP: ClassVar[str] = "ir"
    KEY: ClassVar[tuple[tuple[str, str], ...]] = (
        ("e", "expanded"),
        ("o", "out"),
        ("k", "kernel"),
        ("s", "stride"),
        ("se", "se"),
    )
    AXES: ClassVar[tuple[str, ...]] = ("cin", "expanded", "out")
    SCHEMA: ClassVar[dict[str, Any]] = {
        "kernel": kernel,
        "expanded": channels,
        "out": channels,
        "stride": stride,
        "se": flag,
        "act": activation,
    }
    CHOICES: ClassVar[tuple[Choice, ...]] = (
        Choice("kernel", kernel, (3,)),
        Choice("expansion", expansion),
        Choice("se", flag, (False,)),
        Choice("act", activation, ("relu",)),
    )

    kernel: int
    expanded: int
    out: int
    stride: int
    se: bool
    act: str

    @classmethod
    def from_choices(cls, values: dict[str, Any], *, cin: int, width: int, stride: int) -> Part:
        expanded = expanded_channels(cin, values["expansion"])
        return cls(values["kernel"], expanded, width, stride, values["se"], values["act"])

    def out_channels(self, cin: int) -> int:
        return self.out

    def out_size(self, size: int) -> int:
        return conv_out(size, self.kernel, self.stride)

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        return bottleneck_cost(cin, self.expanded, self.out, self.kernel, size, self.out_size(size), se=self.se)

    def features(self, cin: int, size: int) -> dict[str, float]:
        return bottleneck_features(
            cin, self.expanded, self.out, self.kernel, size, self.out_size(size), se=self.se, act=self.act
        )

    def row(self) -> Row:
        k = self.kernel
        return Row(f"bneck {k}x{k}", k, self.expanded, self.out, self.se, nl(self.act), self.stride)

    def _parts(self, cin: int) -> dict[str, str]:
        """State-dict prefixes of the block's parts (torchvision's layout: block.{k})."""
        names = (["expand"] if self.expanded != cin else []) + ["dw"] + (["se"] if self.se else []) + ["project"]
        return {name: f"block.{k}" for k, name in enumerate(names)}

    def state_names(self, cin: int) -> dict[str, str]:
        return {prefix: name for name, prefix in self._parts(cin).items()}

    def internal(self, cin: int) -> dict[str, Prunable]:
        p = self._parts(cin)
        widths = bottleneck_widths(p.get("expand"), p["dw"], f"{p['project']}.0", p.get("se"))
        return {"expanded": widths} if widths else {}

    def output(self, cin: int) -> Prunable | None:
        return Prunable(tuple(conv_bn(self._parts(cin)["project"])))

    def reads(self, cin: int) -> Prunable | None:
        expand = self._parts(cin).get("expand")
        return Prunable((Slice(-1, f"{expand}.0.weight", 1),)) if expand else None

    def keeps_width(self, cin: int) -> bool:
        return self.stride == 1 and cin == self.out

    def structure(self, cin: int) -> tuple[object, ...]:
        return (self.expanded == cin,)

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        from nas.model._layers import InvertedResidual

        return [("block", InvertedResidual(cin, self, norm))]


@register
@dataclass(frozen=True, order=True)
class LastConv(OpPart):
    """A head's last 1x1 conv + BN + activation: priced apart, since its cost depends on the input side."""

    OP: ClassVar[str] = "last"
    KEY: ClassVar[tuple[tuple[str, str], ...]] = (("o", "out"),)
    AXES: ClassVar[tuple[str, ...]] = ("cin", "out")

    out: int
    act: str

    def out_channels(self, cin: int) -> int:
        return self.out

    def out_size(self, size: int) -> int:
        return size

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        return size * size * cin * self.out, cin * self.out + 2 * self.out

    def features(self, cin: int, size: int) -> dict[str, float]:
        return conv_features(cin, self.out, size, size, 1, self.act)

    def row(self) -> Row:
        return Row("conv2d 1x1", 1, "", self.out, False, nl(self.act), 1)

    def reads(self, cin: int) -> Prunable | None:
        return Prunable((Slice(-1, "0.weight", 1),))

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        from nas.model._layers import ConvBNAct

        return [("last", ConvBNAct(cin, self.out, 1, act=self.act, norm=norm))]


@register
@dataclass(frozen=True, order=True)
class Classifier(ClassifierPart):
    """Global pool -> hidden linear (no BN) -> activation -> dropout -> classes, as torchvision's."""

    OP: ClassVar[str] = "head"
    KEY: ClassVar[tuple[tuple[str, str], ...]] = (("h", "hidden"), ("o", "classes"))
    AXES: ClassVar[tuple[str, ...]] = ("cin", "hidden", "classes")

    hidden: int
    classes: int
    act: str
    dropout: float = field(default=0.2, compare=False)  # no cost: ops that differ only here are one op

    def cost(self, cin: int, size: int) -> tuple[int, int]:
        weights = cin * self.hidden + self.hidden * self.classes
        return weights, weights + self.hidden + self.classes

    def features(self, cin: int, size: int) -> dict[str, float]:
        return {"fc_weights": cin * self.hidden + self.hidden * self.classes, "activation_elems": cin * size * size}

    def row(self) -> Row:
        return Row(f"pool, fc {self.hidden}, fc {self.classes}", out=self.classes, act=nl(self.act))

    def reads(self, cin: int) -> Prunable | None:
        return Prunable((Slice(-1, "0.weight", 1),))

    def modules(self, cin: int, norm: Norm) -> list[tuple[str, nn.Module]]:
        from nas.model._layers import GlobalPool, classifier

        head = classifier(cin, self.hidden, self.classes, self.act, self.dropout)
        return [("pool", GlobalPool()), ("classifier", head)]


@register
@dataclass(frozen=True, order=True)
class HeadConfig(Part):
    """Last 1x1 conv (with BN) -> global pool -> hidden linear (no BN) -> dropout -> classifier."""

    TYPE: ClassVar[str] = "mbv3"
    ROLE: ClassVar[str] = "head"
    SCHEMA: ClassVar[dict[str, Any]] = {
        "last_channels": channels,
        "hidden_channels": channels,
        "act": activation,
        "dropout": fraction,
    }
    CHOICES: ClassVar[tuple[Choice, ...]] = (
        Choice("last_channels", channels),
        Choice("hidden_channels", channels),
        Choice("act", activation, ("hswish",)),
        Choice("dropout", fraction, (0.2,)),
    )

    last_channels: int
    hidden_channels: int
    act: str = "hswish"
    dropout: float = 0.2

    def op_parts(self, num_classes: int) -> tuple[OpPart, ...]:
        return (
            LastConv(self.last_channels, self.act),
            Classifier(self.hidden_channels, num_classes, self.act, self.dropout),
        )
