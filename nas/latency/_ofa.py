"""Import Once-for-All / ProxylessNAS latency lookup tables (one YAML file per input resolution).

OFA keys: ``expanded_conv-input:HxWxC-output:hxwxC-expand:MID-kernel:K-stride:S-idskip:B-se:B-hs:B`` for
blocks; ``Conv`` (stem), ``Conv_1`` (last 1x1 conv), and ``AvgPool2D`` + ``Conv_2`` (hidden 1x1 conv) +
``Logits`` (classifier), which together are our ``head`` op. Values are ``{count, mean, std}`` in ms.

ProxylessNAS's mobile table (``mobile_trim.yaml``, Pixel 1) is the older form: blocks without ``-se``/``-hs``
(ReLU6, no SE), ``expand`` a ratio, and ``Logits`` pooling the last conv's map straight into the classes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from nas._errors import NasError
from nas._fields import Field
from nas._yaml import read_mapping
from nas.blocks import Classifier, LastConv, LayerConfig, StemConfig
from nas.blocks._base import MAX_RESOLUTION, STRIDES, channels, kernel, stride
from nas.blocks.fc import LinearClassifier
from nas.config import Op
from nas.latency._table import MeasuredTable, Overhead

_BLOCK_HEAD = (  # ProxylessNAS's block keys end here; OFA's add -se and -hs
    r"expanded_conv-input:(\d+)x(\d+)x(\d+)-output:(\d+)x(\d+)x(\d+)-expand:(\d+)-kernel:(\d+)-stride:(\d+)"
    r"-idskip:([01])"
)
_BLOCK = re.compile(_BLOCK_HEAD + r"-se:([01])-hs:([01])")
_PROXYLESS_BLOCK = re.compile(_BLOCK_HEAD)
_OTHER = re.compile(r"(Conv|Conv_1|AvgPool2D|Conv_2|Logits)-input:(\d+)x(\d+)x(\d+)-output:(?:(\d+)x(\d+)x)?(\d+)")
HEAD_PARTS = ("AvgPool2D", "Conv_2", "Logits")


def _numbers(path: Path, key: str, texts: Sequence[str | None], kinds: Sequence[str]) -> list[int]:
    """The key's numbers, each checked as what it is (``size``, ``channels``, ``kernel``, ``stride``,
    ``flag``): a 0x0 output or a stride of 0 is named here, not met later as a division by zero."""
    parse: dict[str, Callable[[Field], int]] = {
        "size": lambda f: f.integer(minimum=1, maximum=MAX_RESOLUTION, why="a larger input would not fit in memory"),
        "channels": channels,
        "kernel": kernel,
        "stride": stride,
        "flag": lambda f: f.integer(minimum=0, allowed=(0, 1)),
    }
    return [
        parse[kind](Field(str(path), f"key {key!r}, {kind} (number {i + 1})", int(text)))
        for i, (kind, text) in enumerate(zip(kinds, [t for t in texts if t is not None], strict=True))
    ]


_BLOCK_NUMBERS = (
    "size",
    "size",
    "channels",
    "size",
    "size",
    "channels",
    "channels",
    "kernel",
    "stride",
    "flag",
    "flag",
    "flag",
)


def block_op(path: Path, key: str) -> Op | None:
    """Our op for an OFA ``expanded_conv`` key of file ``path`` (None for other keys)."""
    m = _BLOCK.fullmatch(key)
    if m is None:
        return None
    *numbers, se, hs = _numbers(path, key, m.groups(), _BLOCK_NUMBERS)
    return _block(path, key, numbers, se=bool(se), act="hswish" if hs else "relu")


def _block(path: Path, key: str, numbers: Sequence[int], *, se: bool, act: str) -> Op:
    """The block of a key's numbers (H, W, C, h, w, c, expanded, kernel, stride, idskip), checked."""
    h, w, cin, oh, ow, cout, mid, k, s, skip = numbers
    op = Op(h, cin, LayerConfig(k, mid, cout, s, se, act))
    if (h, oh) != (w, ow) or op.out_size != oh or bool(skip) != (s == 1 and cin == cout):
        raise NasError(f"{path}: key {key!r}: its sizes, stride and idskip do not fit together; fix or drop it")
    return op


def _other_numbers(path: Path, key: str, m: re.Match[str]) -> list[int]:
    """H, W, C[, h, w], c of a stem, last-conv or head key (the output size is absent after pooling)."""
    kinds = ("size",) * 2 + ("channels",) + ("size",) * (2 * bool(m.group(5))) + ("channels",)
    return _numbers(path, key, m.groups()[1:], kinds)


def ofa_keys(op: Op) -> list[str]:
    """The OFA keys that together price ``op`` (inverse of the import)."""
    o, part = op.out_size, op.part
    if isinstance(part, LayerConfig):
        skip = int(part.stride == 1 and op.cin == part.out)
        return [
            f"expanded_conv-input:{op.size}x{op.size}x{op.cin}-output:{o}x{o}x{part.out}-expand:{part.expanded}"
            f"-kernel:{part.kernel}-stride:{part.stride}-idskip:{skip}-se:{int(part.se)}"
            f"-hs:{int(part.act == 'hswish')}"
        ]
    if isinstance(part, StemConfig):
        return [f"Conv-input:{op.size}x{op.size}x3-output:{o}x{o}x{op.out}"]
    if isinstance(part, LastConv):
        return [f"Conv_1-input:{op.size}x{op.size}x{op.cin}-output:{o}x{o}x{op.out}"]
    if isinstance(part, Classifier):
        return [
            f"AvgPool2D-input:{op.size}x{op.size}x{op.cin}-output:1x1x{op.cin}",
            f"Conv_2-input:1x1x{op.cin}-output:1x1x{part.hidden}",
            f"Logits-input:1x1x{part.hidden}-output:{op.out}",
        ]
    raise ValueError(f"OFA's tables have no {op.kind} ops ({op.key})")


def _mean(path: Path, key: str, value: Any) -> float:
    if not isinstance(value, dict):
        raise NasError(f"{path}: {key}: expected a mapping with a positive 'mean' (ms)")
    return Field(str(path), f"{key}: mean", value.get("mean")).number(minimum=0, positive=True)


def read_ofa_file(path: Path) -> dict[Op, float]:
    """One OFA file (one resolution) as our ops; OFA's stem and head use h-swish."""
    data = read_mapping(path)
    ops: dict[Op, float] = {}
    others: dict[str, tuple[tuple[int, ...], float]] = {}
    for key, value in data.items():
        key = str(key)
        op = block_op(path, key)
        if op is not None:
            ops[op] = _mean(path, key, value)
            continue
        m = _OTHER.fullmatch(key)
        if m is None or (m.group(1) in ("Conv", "Conv_1") and m.group(5) is None):
            raise NasError(f"{path}: key {key!r} is not in OFA's latency-table format")
        others[m.group(1)] = (tuple(_other_numbers(path, key, m)), _mean(path, key, value))
    missing = [name for name in ("Conv", "Conv_1", *HEAD_PARTS) if name not in others]
    if missing:
        raise NasError(f"{path}: no {missing[0]} entry; an OFA table needs Conv, Conv_1, AvgPool2D, Conv_2, Logits")
    (h, _, _, oh, _, stem_out), stem_ms = others["Conv"]
    stem = Op(h, 3, StemConfig(stem_out, 3, h // oh, "hswish"))
    if h // oh not in STRIDES or stem.out_size != oh:
        raise NasError(f"{path}: the Conv entry goes from {h} px to {oh} px, not a stride of 1 or 2; fix its key")
    ops[stem] = stem_ms
    (lh, _, lin, _, _, lout), last_ms = others["Conv_1"]
    ops[Op(lh, lin, LastConv(lout, "hswish"))] = last_ms
    (hidden,) = others["Conv_2"][0][-1:]
    (classes,) = others["Logits"][0][-1:]
    ops[Op(lh, lout, Classifier(hidden, classes, "hswish"))] = sum(others[name][1] for name in HEAD_PARTS)
    return ops


def read_proxyless_file(path: Path) -> dict[Op, float]:
    """ProxylessNAS's mobile table (Pixel 1) as our ops: ReLU6 is our ``relu``, the stem a 3x3 conv."""
    ops: dict[Op, float] = {}
    for key, value in read_mapping(path).items():
        key = str(key)
        if m := _PROXYLESS_BLOCK.fullmatch(key):
            numbers = _numbers(path, key, m.groups(), _BLOCK_NUMBERS[:-2])
            numbers[6] *= numbers[2]  # expand is a ratio of the input width here
            op = _block(path, key, numbers, se=False, act="relu")
        elif (m := _OTHER.fullmatch(key)) and m.group(1) in ("Conv", "Conv_1", "Logits"):
            h, _, cin, *sizes, out = _other_numbers(path, key, m)
            op = _proxyless_other(path, key, m.group(1), h, cin, out, sizes[0] if sizes else None)
        else:
            raise NasError(f"{path}: key {key!r} is not in ProxylessNAS's mobile latency-table format")
        ops[op] = _mean(path, key, value)
    return ops


def _proxyless_other(path: Path, key: str, name: str, size: int, cin: int, out: int, out_size: int | None) -> Op:
    if name == "Logits":
        return Op(size, cin, LinearClassifier(out))
    if out_size is None or size // out_size not in STRIDES:
        raise NasError(f"{path}: key {key!r}: a {name} needs an output HxWxC reached by stride 1 or 2; fix the key")
    op = Op(size, cin, StemConfig(out, 3, size // out_size, "relu") if name == "Conv" else LastConv(out, "relu"))
    if op.out_size != out_size:
        raise NasError(f"{path}: key {key!r} goes from {size} px to {out_size} px, which a {name} cannot; fix the key")
    return op


def import_ofa(folder: Path, *, target: str, device: str, space: dict[str, str]) -> MeasuredTable:
    """Every ``*_lookup_table.yaml`` of ``folder`` as one table (keys carry the resolution)."""
    files = sorted(folder.glob("*_lookup_table.yaml"))
    if not files:
        raise NasError(f"{folder}: no *_lookup_table.yaml files (OFA's format, one per input resolution)")
    timings: dict[str, list[float]] = {}
    for path in files:
        for op, ms in read_ofa_file(path).items():
            timings.setdefault(op.key, []).append(ms)
    # small late-stage ops recur in several resolutions' files: their mean across files
    entries = {key: (sum(v) / len(v),) * 3 + (len(v),) for key, v in timings.items()}
    metadata = {
        "target": target,
        "measured": True,
        "device": device,
        "runtime": "not stated by the source",
        "threads": "not stated by the source",
        "batch": 1,
        "dtype": "float32",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "method": "imported from Once-for-All latency lookup tables (mean ms per op, timed alone on the device);"
        " prediction is the plain sum, as in OFA's own latency predictor",
        "row": "[mean_ms, mean_ms, mean_ms, files] (the source gives mean and std only; an op in several files is"
        " averaged)",
        "source": f"{len(files)} files from {folder}",
        "space": space,
    }
    return MeasuredTable(metadata=metadata, entries=entries, overhead=Overhead(), source="")
