"""Bad input across every CLI, as one table: each case must exit 2 with exactly one line on stderr, no
traceback, and leave no new or half-written file where the command writes (its folder and the user's
nas folder). Cases run in-process through the same error handling as the console scripts."""

from __future__ import annotations

import copy
import gzip
import io
import json
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from nas import SearchSpace
from nas._paths import REFERENCE_DIR
from nas.latency._ofa import read_proxyless_file
from tests.conftest import TINY_SPACE, run_main
from tests.test_latency import synthetic_table

SMALL = yaml.safe_load((REFERENCE_DIR / "mobilenetv3_small.yaml").read_text())


@dataclass
class Files:
    """A folder with a valid space, table and config, and helpers to write broken variants of them."""

    root: Path

    def write(self, name: str, content: Any) -> str:
        path = self.root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(yaml.safe_dump(content))
        return str(path)

    def space(self, change: Callable[[dict], Any] | None = None) -> str:
        data = copy.deepcopy(TINY_SPACE)
        if change is not None:
            change(data)
        return self.write("space.yaml", data)

    def config(self, change: Callable[[dict], Any] | None = None) -> str:
        data = copy.deepcopy(SMALL)
        if change is not None:
            change(data)
        return self.write("config.yaml", data)

    def table(self, change: Callable[[dict], Any] | None = None) -> str:
        data = yaml.safe_load((self.root / "good_table.yaml").read_text())
        if change is not None:
            change(data)
        return self.write("table.yaml", data)

    @property
    def out(self) -> str:
        return str(self.root / "out")


def _set(*path: Any, value: Any) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _drop(*path: Any) -> Callable[[dict], None]:
    def change(data: dict) -> None:
        node = data
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


NAN, INF = float("nan"), float("inf")
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)},"
    f" *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(8)
)
RAW = {  # file contents no reader may turn into a traceback
    "empty": "",
    "not-yaml": "a: [1, 2\n",
    "a-list": "- 1\n- 2\n",
    "a-scalar": "42\n",
    "binary": b"\x00\xff\xfe\x80garbage",
    "tab-indented": "a:\n\tb: 1\n",
    "alias-bomb": ALIAS_BOMB,
    "python-tag": "!!python/object/apply:os.system ['echo hi']\n",
    "deep-brackets": "a: " + "[" * 60_000 + "]" * 60_000 + "\n",  # libyaml alone dies of SIGSEGV
}

SPACE_CHANGES: dict[str, Callable[[dict], Any]] = {
    "no-stages": _drop("stages"),
    "stages-empty": _set("stages", value=[]),
    "stages-not-list": _set("stages", value="abc"),
    "no-head": _drop("head"),
    "no-stem": _drop("stem"),
    "no-resolution": _drop("resolution"),
    "resolution-small": _set("resolution", value=[4]),
    "resolution-huge": _set("resolution", value=[1_000_000]),
    "resolution-float": _set("resolution", value=[32.5]),
    "resolution-text": _set("resolution", value=["big"]),
    "resolution-bool": _set("resolution", value=[True]),
    "num-classes-1": _set("num_classes", value=1),
    "num-classes-text": _set("num_classes", value="ten"),
    "unknown-key": _set("colour", value="red"),
    "stage-unknown-key": _set("stages", 1, "widht", value=8),
    "width-zero": _set("stages", 1, "width", value=[0]),
    "width-huge": _set("stages", 1, "width", value=[2_000_000_000]),
    "width-empty": _set("stages", 1, "width", value=[]),
    "width-negative": _set("stages", 1, "width", value=[-16]),
    "width-duplicate": _set("stages", 1, "width", value=[16, 16]),
    "depth-negative": _set("stages", 1, "depth", value=[-1]),
    "depth-huge": _set("stages", 1, "depth", value=[1000]),
    "all-depths-skippable": _set("stages", 1, "depth", value=[0, 2]),
    "stride-3": _set("stages", 1, "stride", value=3),
    "kernel-4": _set("stages", 1, "kernel", value=[3, 4]),
    "expansion-nan": _set("stages", 1, "expansion", value=[NAN]),
    "expansion-inf": _set("stages", 1, "expansion", value=[INF]),
    "expansion-below-1": _set("stages", 1, "expansion", value=[0.5]),
    "expansion-text": _set("stages", 1, "expansion", value=["three"]),
    "shared-unknown": _set("stages", 1, "shared", value=["width"]),
    "act-gelu": _set("stages", 1, "act", value="gelu"),
    "se-text": _set("stages", 0, "se", value=["maybe"]),
    "stem-channels-zero": _set("stem", "channels", value=0),
    "stem-act-unknown": _set("stem", "act", value=["swish2"]),
    "head-act-unknown": _set("head", "act", value=["gelu"]),
    "head-dropout-nan": _set("head", "dropout", value=NAN),
    "head-dropout-1": _set("head", "dropout", value=1.0),
    "head-last-zero": _set("head", "last_channels", value=[0]),
    "stage-type-unknown": _set("stages", 1, "type", value="transformer"),
}

CONFIG_CHANGES: dict[str, Callable[[dict], Any]] = {
    "no-layers": _drop("layers"),
    "layers-empty": _set("layers", value=[]),
    "resolution-huge": _set("resolution", value=1_000_000),
    "resolution-small": _set("resolution", value=2),
    "dropout-nan": _set("head", "dropout", value=NAN),
    "dropout-inf": _set("head", "dropout", value=INF),
    "dropout-negative": _set("head", "dropout", value=-0.1),
    "kernel-4": _set("layers", 0, "kernel", value=4),
    "stride-3": _set("layers", 0, "stride", value=3),
    "out-zero": _set("layers", 0, "out", value=0),
    "out-huge": _set("layers", 0, "out", value=2_000_000_000),
    "act-unknown": _set("layers", 0, "act", value="mish2"),
    "num-classes-zero": _set("num_classes", value=0),
    "unknown-key": _set("flavour", value="spicy"),
    "layer-not-mapping": _set("layers", 0, value="conv"),
    "stem-missing": _drop("stem"),
    "head-missing": _drop("head"),
    "norm-unknown": _set("norm", value="groupnorm"),
}

TABLE_CHANGES: dict[str, Callable[[dict], Any]] = {
    "scale-nan": _set("overhead", "scale", value=NAN),
    "scale-inf": _set("overhead", "scale", value=INF),
    "offset-text": _set("overhead", "offset_ms", value="abc"),
    "no-ops": _drop("ops"),
    "ops-empty": _set("ops", value={}),
    "scale-zero": _set("overhead", "scale", value=0),
    "models-negative": _set("overhead", "models", value=-1),
    "no-metadata": _drop("metadata"),
    "measured-text": _set("metadata", "measured", value="yes"),
    "format-from-the-future": _set("format_version", value=99),
    "metadata-not-mapping": _set("metadata", value=[1, 2]),
    "space-not-mapping": _set("metadata", "space", value="tiny"),
}


def _space_cases() -> list[tuple[str, Callable[[Files], list[str]]]]:
    cases = [
        (f"space-{name}", lambda f, change=change: ["nas.space", "show", f.space(change)])
        for name, change in SPACE_CHANGES.items()
    ]
    cases += [
        (f"space-raw-{name}", lambda f, raw=raw: ["nas.space", "show", f.write("s.yaml", raw)])
        for name, raw in RAW.items()
    ]
    cases += [
        ("space-missing-file", lambda f: ["nas.space", "show", str(f.root / "nope.yaml")]),
        ("space-a-folder", lambda f: ["nas.space", "show", str(f.root)]),
        ("space-file-too-big", lambda f: ["nas.space", "show", _sparse(f.root / "big.yaml", 65 * 2**20)]),
    ]
    # a broken space through the search too: refused before any trial or file
    cases += [
        (f"search-space-{name}", lambda f, change=change: _search(f, "--space", f.space(change)))
        for name, change in list(SPACE_CHANGES.items())[::4]
    ]
    return cases


def _config_cases() -> list[tuple[str, Callable[[Files], list[str]]]]:
    cases = []
    for name, change in CONFIG_CHANGES.items():
        cases.append(
            (f"evaluate-{name}", lambda f, change=change: ["nas.evaluate", f.config(change), "--evaluator", "params"])
        )
        cases.append(
            (f"export-{name}", lambda f, change=change: ["nas.export", f.config(change), "--out", f.out + "/m.onnx"])
        )
    cases += [
        (f"config-raw-{name}", lambda f, raw=raw: ["nas.evaluate", f.write("c.yaml", raw)]) for name, raw in RAW.items()
    ]
    cases += [
        (f"export-raw-{name}", lambda f, raw=raw: ["nas.export", f.write("c.yaml", raw), "--out", f.out + "/m.onnx"])
        for name, raw in RAW.items()
    ]
    return cases


def _table_cases() -> list[tuple[str, Callable[[Files], list[str]]]]:
    cases = [
        (f"table-{name}", lambda f, change=change: _search(f, "--target", f.table(change)))
        for name, change in TABLE_CHANGES.items()
    ]
    cases += [
        (f"table-raw-{name}", lambda f, raw=raw: ["nas.latency", "show", "--target", f.write("t.yaml", raw)])
        for name, raw in RAW.items()
    ]
    cases += [("latency-show-unknown-target", lambda f: ["nas.latency", "show", "--target", "no-such-device"])]
    return cases


def _sparse(path: Path, size: int) -> str:
    """A file of ``size`` bytes that takes no disk space."""
    with path.open("wb") as handle:
        handle.truncate(size)
    return str(path)


def _search(f: Files, *extra: str) -> list[str]:
    """A small valid search on the folder's space and table, with ``extra`` flags overriding."""
    flags = {
        "--target": str(f.root / "good_table.yaml"),
        "--space": str(f.root / "good_space.yaml"),
        "--budget": "50ms",
        "--evaluator": "params",
        "--trials": "2",
        "--out": f.out,
    }
    flags.update(dict(zip(extra[::2], extra[1::2], strict=True)))
    return ["nas.search", *[item for pair in flags.items() for item in pair]]


def _flag_cases() -> list[tuple[str, Callable[[Files], list[str]]]]:
    search = {
        "budget-zero": ("--budget", "0ms"),
        "budget-negative": ("--budget", "-5ms"),
        "budget-text": ("--budget", "fast"),
        "budget-nan": ("--budget", "nan"),
        "budget-inf": ("--budget", "inf"),
        "budget-unreachable": ("--budget", "0.001ms"),
        "budget-unit": ("--budget", "5 parsecs"),
        "trials-zero": ("--trials", "0"),
        "trials-negative": ("--trials", "-3"),
        "workers-zero": ("--workers", "0"),
        "eta-1": ("--eta", "1"),
        "rungs-zero": ("--rungs", "0"),
        "seed-negative": ("--seed", "-1"),
        "seed-huge": ("--seed", str(2**32)),
        "w-nan": ("--w", "nan"),
        "w-inf": ("--w", "inf"),
        "study-empty": ("--study", ""),
        "study-blank": ("--study", "  "),
        "sampler-unknown": ("--sampler", "annealing"),
        "objective-unknown": ("--objective", "speed"),
        "target-unknown": ("--target", "no-such-device"),
        "evaluator-unknown": ("--evaluator", "vibes"),
        "storage-bad-url": ("--storage", "nosuchdb://x"),
        "storage-journal-missing-folder": ("--storage", "journal:/nonexistent/dir/j.log"),
        "timeout-negative": ("--timeout", "-1"),
        "timeout-nan": ("--timeout", "nan"),
        "timeout-inf": ("--timeout", "inf"),
        "predictor-missing": ("--evaluator", "predictor"),
        "data-for-params": ("--data", "/some/images"),
        "predictor-for-params": ("--predictor", "/some/p.npz"),
        "space-unknown": ("--space", "no_such_space"),
    }
    cases: list[tuple[str, Callable[[Files], list[str]]]] = [
        (f"search-{name}", lambda f, flag=flag: _search(f, *flag)) for name, flag in search.items()
    ]
    cases += [
        ("search-out-is-a-file", lambda f: _search(f, "--out", f.write("a_file", "x"))),
        ("search-out-under-a-file", lambda f: _search(f, "--out", f.write("a_file", "x") + "/run")),
        ("search-data-with-flops", lambda f: _search(f, "--evaluator", "train", "--data", f.write("x.txt", "x"))),
    ]
    netadapt = {
        "long-epochs-negative": ("--long-epochs", "-1"),
        "long-epochs-zero": ("--long-epochs", "0"),
        "short-steps-zero": ("--short-steps", "0"),
        "init-cut-1": ("--init-cut", "1"),
        "init-cut-zero": ("--init-cut", "0"),
        "decay-zero": ("--decay", "0"),
        "decay-above-1": ("--decay", "1.5"),
        "step-zero": ("--step", "0"),
        "select-unknown": ("--select", "coin"),
        "seed-negative": ("--seed", "-1"),
        "budget-text": ("--budget", "soon"),
        "target-unknown": ("--target", "no-such-device"),
        "weights-missing": ("--weights", "/nonexistent/w.pt"),
        "resolution-zero": ("--resolution", "0"),
    }
    for name, flag in netadapt.items():
        cases.append((f"netadapt-{name}", lambda f, flag=flag: _netadapt(f, *flag)))
    cases += [
        ("netadapt-weights-garbage", lambda f: _netadapt(f, "--weights", f.write("w.pt", b"not a state dict"))),
        ("netadapt-weights-yaml", lambda f: _netadapt(f, "--weights", f.config())),
        ("netadapt-config-missing", lambda f: _netadapt(f, "--config", "/nonexistent/c.yaml")),
        ("netadapt-out-is-a-file", lambda f: _netadapt(f, "--budget", "50ms", "--out", f.write("a_file", "x"))),
        (
            "netadapt-out-under-a-file",
            lambda f: _netadapt(f, "--budget", "50ms", "--out", f.write("a_file", "x") + "/run"),
        ),
        ("pipeline-out-under-a-file", lambda f: _pipeline(f, "--out", f.write("a_file", "x") + "/run")),
    ]
    pipeline = {
        "seed-negative": ("--seed", "-1"),
        "seeds-duplicate": ("--seeds", "0,0"),
        "seeds-text": ("--seeds", "a,b"),
        "slack-negative": ("--slack", "-0.1"),
        "epochs-zero": ("--epochs", "0"),
        "netadapt-epochs-zero": ("--netadapt-epochs", "0"),
        "select-unknown": ("--select", "coin"),
        "init-cut-2": ("--init-cut", "2"),
        "short-steps-zero": ("--short-steps", "0"),
        "trials-zero": ("--trials", "0"),
        "budget-zero": ("--budget", "0ms"),
        "target-unknown": ("--target", "nowhere"),
        "evaluator-unknown": ("--evaluator", "vibes"),
    }
    for name, flag in pipeline.items():
        cases.append((f"pipeline-{name}", lambda f, flag=flag: _pipeline(f, *flag)))
    evaluate = {
        "steps-negative": ("--steps", "-5"),
        "steps-zero": ("--steps", "0"),
        "seed-negative": ("--seed", "-1"),
        "evaluator-unknown": ("--evaluator", "vibes"),
        "predictor-missing": ("--evaluator", "ofa-predictor"),
        "predictor-for-train": ("--predictor", "/some/p.npz"),
    }
    for name, flag in evaluate.items():
        cases.append(
            (f"evaluate-{name}", lambda f, flag=flag: ["nas.evaluate", f.config(), "--evaluator", "train", *flag])
        )
    cases += [
        ("evaluate-data-for-flops", lambda f: ["nas.evaluate", f.config(), "--data", "/some/images"]),
        ("pipeline-predictor-for-flops", lambda f: _pipeline(f, "--predictor", "/some/p.npz")),
        ("evaluate-config-missing", lambda f: ["nas.evaluate", "/nonexistent/c.yaml"]),
        (
            "evaluate-predictor-garbage",
            lambda f: [
                "nas.evaluate",
                f.config(),
                "--evaluator",
                "ofa-predictor",
                "--predictor",
                f.write("p.npz", b"garbage"),
            ],
        ),
        ("export-out-is-a-folder", lambda f: ["nas.export", f.config(), "--out", str(f.root)]),
        ("export-out-under-a-file", lambda f: ["nas.export", f.config(), "--out", f.write("a_file", "x") + "/m.onnx"]),
        (
            "export-weights-garbage",
            lambda f: ["nas.export", f.config(), "--weights", f.write("w.pt", b"junk"), "--out", f.out + "/m.onnx"],
        ),
        ("export-config-missing", lambda f: ["nas.export", "/nonexistent/c.yaml", "--out", f.out + "/m.onnx"]),
    ]
    latency = {
        "build-calibration-negative": ["build", "--target", "t", "--calibration", "-3", "--bundle", "B"],
        "build-calibration-zero": ["build", "--target", "t", "--calibration", "0", "--bundle", "B"],
        "build-threads-zero": ["build", "--target", "t", "--threads", "0", "--bundle", "B"],
        "build-seed-negative": ["build", "--target", "t", "--seed", "-1", "--bundle", "B"],
        "build-bundle-is-a-file": ["build", "--target", "t", "--bundle", "FILE"],
        "build-space-missing": ["build", "--target", "t", "--space", "/nonexistent/s.yaml", "--bundle", "B"],
        "measure-no-bundle": ["measure", "/nonexistent/bundle", "--out", "OUT/t.yaml"],
        "measure-bundle-without-manifest": ["measure", "ROOT", "--out", "OUT/t.yaml"],
        "measure-threads-zero": ["measure", "ROOT", "--out", "OUT/t.yaml", "--threads", "0"],
        "measure-out-is-a-folder": ["measure", "ROOT", "--out", "ROOT"],
        "measure-out-under-a-file": ["measure", "ROOT", "--out", "FILE/t.yaml"],
        "build-out-is-a-folder": ["build", "--target", "t", "--out", "ROOT"],
        "build-out-under-a-file": ["build", "--target", "t", "--out", "FILE/t.yaml"],
        "validate-out-under-a-file": ["validate", "--target", "TABLE", "--out", "FILE/v"],
        "validate-unknown-target": ["validate", "--target", "nowhere"],
        "validate-samples-zero": ["validate", "--target", "TABLE", "--samples", "0"],
        "extend-unknown-target": ["extend", "--target", "nowhere", "--config", "CONFIG"],
        "extend-nothing": ["extend", "--target", "TABLE"],
        "extend-imported-table": ["extend", "--target", "note10", "--config", "CONFIG"],
        "extend-config-missing": ["extend", "--target", "TABLE", "--config", "/nonexistent/c.yaml"],
        "show-config-missing": ["show", "--target", "TABLE", "--config", "/nonexistent/c.yaml"],
        "import-ofa-missing-folder": ["import-ofa", "/nonexistent/ofa", "--target", "t", "--out", "OUT/t.yaml"],
        "import-ofa-empty-folder": ["import-ofa", "ROOT", "--target", "t", "--out", "OUT/t.yaml"],
        "estimate-missing-folder": [
            "estimate",
            "--ofa",
            "/nonexistent/ofa",
            "--pixel1",
            "PIXEL1",
            "--out",
            "OUT/t.yaml",
        ],
        "estimate-missing-pixel1": ["estimate", "--ofa", "OFA", "--pixel1", "/nonexistent/p1", "--out", "OUT/t.yaml"],
        "import-ofa-out-under-a-file": ["import-ofa", "OFA", "--target", "t", "--out", "FILE/t.yaml"],
        "estimate-out-under-a-file": ["estimate", "--ofa", "OFA", "--pixel1", "PIXEL1", "--out", "FILE/t.yaml"],
    }

    def latency_args(f: Files, args: list[str]) -> list[str]:
        swap = {
            "B": f.out + "/bundle",
            "FILE": f.write("a_file", "x"),
            "ROOT": str(f.root),
            "OUT": f.out,
            "TABLE": str(f.root / "good_table.yaml"),
            "CONFIG": f.config(),
        }
        swap["OFA"] = _ofa_folder(f.root, (OFA_BLOCK, OFA_BLOCK, None)) if "OFA" in args else ""
        swap["PIXEL1"] = _pixel1_file(f.root) if "PIXEL1" in args else ""
        return ["nas.latency", *[swap.get(a, a.replace("OUT", f.out).replace("FILE", swap["FILE"])) for a in args]]

    cases += [(f"latency-{name}", lambda f, args=args: latency_args(f, args)) for name, args in latency.items()]
    return cases


def _png(size: int = 8) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _tree(root: Path, files: dict[str, bytes]) -> str:
    """A data folder of ``files`` (relative path -> content) under ``root``; returns its path."""
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return str(root)


def _cifar_pickle(images: int, labels: list[int]) -> bytes:
    return pickle.dumps({b"data": np.zeros((images, 3072), np.uint8), b"labels": labels})


DATA: dict[str, Callable[[], dict[str, bytes]]] = {  # --data folders no loader may turn into a traceback
    "images-all-unreadable": lambda: {"cat/a.png": b"not a png", "dog/b.jpg": b"\xff\xd8 truncated"},
    "images-one-class-unreadable": lambda: {"cat/a.png": _png(), "dog/b.png": _png()[:40]},
    "images-none": lambda: {"cat/a.txt": b"hello", "dog/b.txt": b"hi"},
    "images-one-class": lambda: {"cat/a.png": _png(), "cat/b.png": _png()},
    "cifar-binary-wrong-size": lambda: {"data_batch_1.bin": b"\0" * 3000, "test_batch.bin": b"\0" * 3073},
    "cifar-binary-empty": lambda: {"test_batch.bin": b""},
    "cifar-labels-fewer": lambda: {"test_batch": _cifar_pickle(3, [1, 2])},
    "cifar-label-11": lambda: {"test_batch": _cifar_pickle(2, [1, 11])},
    "cifar-labels-text": lambda: {"test_batch": _cifar_pickle(2, ["a", "b"])},
    "cifar-not-a-pickle": lambda: {"test_batch": b"garbage"},
    "cifar-no-test-batch": lambda: {"data_batch_1.bin": b"\0" * 3073},
}


OFA_BLOCK = "expanded_conv-input:10x10x136-output:10x10x136-expand:408-kernel:3-stride:1-idskip:1-se:1-hs:1"
OFA_FILE = {  # the smallest OFA latency file import-ofa accepts: head parts and one block
    "AvgPool2D-input:5x5x1152-output:1x1x1152": 0.01,
    "Conv-input:160x160x3-output:80x80x24": 0.5,
    "Conv_1-input:5x5x192-output:5x5x1152": 0.4,
    "Conv_2-input:1x1x1152-output:1x1x1536": 0.7,
    "Logits-input:1x1x1536-output:1000": 0.6,
    OFA_BLOCK: 0.8,
}
OFA_CHANGES: dict[str, tuple[str, str, Any]] = {  # key -> new key, new mean (None: keep)
    "stem-0x0": ("Conv-input:160x160x3-output:80x80x24", "Conv-input:160x160x3-output:0x0x24", None),
    "stem-no-size": ("Conv-input:160x160x3-output:80x80x24", "Conv-input:160x160x3-output:24", None),
    "stem-stride-3": ("Conv-input:160x160x3-output:80x80x24", "Conv-input:240x240x3-output:80x80x24", None),
    "last-0x0": ("Conv_1-input:5x5x192-output:5x5x1152", "Conv_1-input:0x0x192-output:0x0x1152", None),
    "last-no-size": ("Conv_1-input:5x5x192-output:5x5x1152", "Conv_1-input:5x5x192-output:1152", None),
    "logits-0-classes": ("Logits-input:1x1x1536-output:1000", "Logits-input:1x1x1536-output:0", None),
    "hidden-0": ("Conv_2-input:1x1x1152-output:1x1x1536", "Conv_2-input:1x1x1152-output:1x1x0", None),
    "block-0x0": (OFA_BLOCK, OFA_BLOCK.replace("10x10", "0x0"), None),
    "block-kernel-0": (OFA_BLOCK, OFA_BLOCK.replace("kernel:3", "kernel:0"), None),
    "block-stride-0": (OFA_BLOCK, OFA_BLOCK.replace("stride:1", "stride:0"), None),
    "block-expand-0": (OFA_BLOCK, OFA_BLOCK.replace("expand:408", "expand:0"), None),
    "block-expand-huge": (OFA_BLOCK, OFA_BLOCK.replace("expand:408", "expand:99999999999999999999"), None),
    "block-idskip-wrong": (OFA_BLOCK, OFA_BLOCK.replace("idskip:1", "idskip:0"), None),
    "block-not-square": (OFA_BLOCK, OFA_BLOCK.replace("input:10x10", "input:10x12"), None),
    "mean-nan": (OFA_BLOCK, OFA_BLOCK, ".nan"),
    "mean-inf": (OFA_BLOCK, OFA_BLOCK, ".inf"),
    "mean-zero": (OFA_BLOCK, OFA_BLOCK, "0"),
    "mean-bool": (OFA_BLOCK, OFA_BLOCK, "true"),
    "mean-missing": (OFA_BLOCK, OFA_BLOCK, "{}"),
    "key-unknown": (OFA_BLOCK, "Flatten-input:1x1x1", None),
}


PIXEL1_BLOCK = "expanded_conv-input:56x56x24-output:28x28x40-expand:3-kernel:5-stride:2-idskip:0"
PIXEL1_FILE = {  # ProxylessNAS's mobile format: stem, last conv, classifier and one block
    "Conv-input:224x224x3-output:112x112x32": 4.0,
    "Conv_1-input:7x7x320-output:7x7x1280": 3.1,
    "Logits-input:7x7x1280-output:1000": 0.3,
    PIXEL1_BLOCK: 2.5,
}
PIXEL1_CHANGES: dict[str, tuple[str, str, Any]] = {
    "stem-stride-3": ("Conv-input:224x224x3-output:112x112x32", "Conv-input:336x336x3-output:112x112x32", None),
    "last-no-size": ("Conv_1-input:7x7x320-output:7x7x1280", "Conv_1-input:7x7x320-output:1280", None),
    "block-expand-0": (PIXEL1_BLOCK, PIXEL1_BLOCK.replace("expand:3", "expand:0"), None),
    "block-idskip-wrong": (PIXEL1_BLOCK, PIXEL1_BLOCK.replace("idskip:0", "idskip:1"), None),
    "block-ofa-form": (PIXEL1_BLOCK, OFA_BLOCK, None),
    "mean-nan": (PIXEL1_BLOCK, PIXEL1_BLOCK, ".nan"),
    "mean-missing": (PIXEL1_BLOCK, PIXEL1_BLOCK, "{}"),
}


def _lut_file(path: Path, entries: dict[str, float], change: tuple[str, str, Any]) -> str:
    """A latency lookup file of ``entries`` in OFA's YAML layout, with ``change`` applied (see OFA_CHANGES)."""
    old, new, mean = change
    lines = []
    for key, ms in entries.items():
        value = mean if key == old and mean is not None else ms
        body = value if value == "{}" else f"\n  count: 5\n  mean: {value}\n  std: 0.01"
        lines.append(f"{new if key == old else key}: {body}\n")
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(lines))
    return str(path)


def _ofa_folder(root: Path, change: tuple[str, str, Any]) -> str:
    return str(Path(_lut_file(root / "ofa" / "160_lookup_table.yaml", OFA_FILE, change)).parent)


def _pixel1_file(root: Path, change: tuple[str, str, Any] = ("", "", None)) -> str:
    return _lut_file(root / "pixel1" / "mobile_trim.yaml", PIXEL1_FILE, change)


def _ofa_cases() -> list[tuple[str, Callable[[Files], list[str]]]]:
    cases = [
        (
            f"import-ofa-{name}",
            lambda f, change=change: [
                "nas.latency",
                "import-ofa",
                _ofa_folder(f.root, change),
                "--target",
                "t",
                "--out",
                f.out + "/t.yaml",
            ],
        )
        for name, change in OFA_CHANGES.items()
    ]
    cases += [  # the arm64 estimate reads the same files
        (f"estimate-ofa-{name}", lambda f, change=change: _estimate_args(f, ofa=change))
        for name, change in list(OFA_CHANGES.items())[::3]
    ]
    cases += [  # and ProxylessNAS's Pixel-1 file
        (f"estimate-pixel1-{name}", lambda f, change=change: _estimate_args(f, pixel1=change))
        for name, change in PIXEL1_CHANGES.items()
    ]
    cases.append(
        ("estimate-pixel1-truncated", lambda f: _estimate_args(f, pixel1_text=PIXEL1_BLOCK + ":\n  count: 5\n  mea"))
    )
    return cases


def _estimate_args(
    f: Files,
    *,
    ofa: tuple[str, str, Any] = ("", "", None),
    pixel1: tuple[str, str, Any] = ("", "", None),
    pixel1_text: str | None = None,
) -> list[str]:
    """``nas.latency estimate`` on an OFA folder and a Pixel-1 file, each good unless changed."""
    pixel1_path = f.write("mobile_trim.yaml", pixel1_text) if pixel1_text is not None else _pixel1_file(f.root, pixel1)
    return [
        "nas.latency",
        "estimate",
        "--ofa",
        _ofa_folder(f.root, ofa),
        "--pixel1",
        pixel1_path,
        "--out",
        f.out + "/t.yaml",
    ]


def _search_folder(root: Path, settings: Any, study: str | None = None) -> str:
    """A folder that looks like a finished search's: ``run.json`` with ``settings`` (and a study database
    holding a study named ``study``)."""
    folder = root / "run"
    folder.mkdir()
    if study is not None:
        import optuna

        optuna.create_study(study_name=study, storage=f"sqlite:///{folder / 'study.db'}")
    record = settings if isinstance(settings, str) else json.dumps({"settings": settings})
    (folder / "run.json").write_text(record)
    return str(folder)


def _fit_cases() -> list[tuple[str, Callable[[Files], list[str]]]]:
    def settings(root: Path, **change: Any) -> dict[str, Any]:
        url = f"sqlite:///{root / 'run' / 'study.db'}"
        return {"storage": url, "study": "run", "space": str(root / "good_space.yaml"), **change}

    folders: dict[str, Callable[[Path], str]] = {
        "run-json-garbage": lambda root: _search_folder(root, "garbage{"),
        "run-json-a-list": lambda root: _search_folder(root, "[1, 2]"),
        "run-json-no-settings": lambda root: _search_folder(root, "{}"),
        "run-json-storage-number": lambda root: _search_folder(root, settings(root, storage=5)),
        "study-database-missing": lambda root: _search_folder(root, settings(root)),
        "study-not-in-database": lambda root: _search_folder(root, settings(root), study="another"),
        "no-run-json": lambda root: str(root),
    }
    return [
        (
            f"fit-predictor-{name}",
            lambda f, folder=folder: [
                "nas.evaluate",
                "fit-predictor",
                "--study",
                folder(f.root),
                "--out",
                f.out + "/p.npz",
            ],
        )
        for name, folder in folders.items()
    ]


IDX_IMAGES = bytes([0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 2]) + bytes(16)  # four 2x2 images
IDX_LABELS = bytes([0, 0, 8, 1, 0, 0, 0, 4, 0, 1, 0, 1])  # two of each class: one can validate
IDX_GOOD = {
    "train-images-idx3-ubyte": IDX_IMAGES,
    "train-labels-idx1-ubyte": IDX_LABELS,
    "t10k-images-idx3-ubyte": IDX_IMAGES,
    "t10k-labels-idx1-ubyte": IDX_LABELS,
}
IDX: dict[str, Callable[[], dict[str, bytes]]] = {  # --data idx:DIR folders
    "idx-images-truncated": lambda: {**IDX_GOOD, "train-images-idx3-ubyte": IDX_IMAGES[:-3]},
    "idx-header-truncated": lambda: {**IDX_GOOD, "t10k-labels-idx1-ubyte": IDX_LABELS[:6]},
    "idx-not-idx": lambda: {**IDX_GOOD, "train-labels-idx1-ubyte": b"hello world"},
    "idx-gzip-truncated": lambda: {
        **{k: v for k, v in IDX_GOOD.items() if k != "train-images-idx3-ubyte"},
        "train-images-idx3-ubyte.gz": gzip.compress(IDX_IMAGES)[:-5],
    },
    "idx-too-few-to-validate": lambda: {  # one training image per class: none left to validate on
        **IDX_GOOD,
        "train-images-idx3-ubyte": bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2]) + bytes(8),
        "train-labels-idx1-ubyte": bytes([0, 0, 8, 1, 0, 0, 0, 2, 0, 1]),
    },
    "idx-no-test-files": lambda: {k: v for k, v in IDX_GOOD.items() if k.startswith("train")},
    "idx-labels-fewer": lambda: {**IDX_GOOD, "t10k-labels-idx1-ubyte": bytes([0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 0])},
    "idx-images-not-bytes": lambda: {
        **IDX_GOOD,
        "train-images-idx3-ubyte": bytes([0, 0, 0x0C, 1, 0, 0, 0, 1]) + bytes(4),
    },
}


def _data_cases() -> list[tuple[str, Callable[[Files], list[str]]]]:
    def evaluate(f: Files, data: str) -> list[str]:
        return ["nas.evaluate", f.config(), "--evaluator", "train", "--steps", "1", "--data", data]

    cases = [
        (f"data-{name}", lambda f, files=files: evaluate(f, _tree(f.root / "d", files())))
        for name, files in DATA.items()
    ]
    cases += [
        (f"data-{name}", lambda f, files=files: evaluate(f, "idx:" + _tree(f.root / "d", files())))
        for name, files in IDX.items()
    ]
    return cases


def _netadapt(f: Files, *extra: str) -> list[str]:
    flags = {"--config": f.config(), "--target": "x86_64", "--budget": "1ms", "--out": f.out}
    flags.update(dict(zip(extra[::2], extra[1::2], strict=True)))
    return ["nas.netadapt", *[item for pair in flags.items() for item in pair]]


def _pipeline(f: Files, *extra: str) -> list[str]:
    flags = {
        "--target": str(f.root / "good_table.yaml"),
        "--space": str(f.root / "good_space.yaml"),
        "--budget": "50ms",
        "--trials": "2",
        "--out": f.out,
    }
    flags.update(dict(zip(extra[::2], extra[1::2], strict=True)))
    return ["nas.pipeline", *[item for pair in flags.items() for item in pair]]


CASES = _space_cases() + _config_cases() + _table_cases() + _flag_cases() + _data_cases() + _ofa_cases() + _fit_cases()


def test_the_table_has_two_hundred_cases() -> None:
    assert len(CASES) >= 200
    assert len({name for name, _ in CASES}) == len(CASES)


def _files_under(*folders: Path) -> dict[str, int]:
    return {str(p): p.stat().st_size for folder in folders if folder.exists() for p in folder.rglob("*")}


@pytest.mark.parametrize(("name", "argv"), CASES, ids=[name for name, _ in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    name: str, argv: Callable[[Files], list[str]], tmp_path: Path
) -> None:
    files = Files(tmp_path)
    space = SearchSpace.from_dict(copy.deepcopy(TINY_SPACE), source="good_space.yaml")
    files.write("good_space.yaml", TINY_SPACE)
    table = synthetic_table(space, seed=5)
    table.metadata["space"]["file"] = str(tmp_path / "good_table.yaml")
    table.save(tmp_path / "good_table.yaml")
    args = argv(files)
    home = Path(os.environ["NAS_HOME"])
    before = _files_under(tmp_path, home)
    result = run_main(*args)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (args, result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, lines
    assert "error" in lines[0]
    assert _files_under(tmp_path, home) == before, "a refused command wrote files"


def test_the_ofa_files_of_the_table_are_broken_copies_of_a_good_one(tmp_path: Path) -> None:
    folder = _ofa_folder(tmp_path, (OFA_BLOCK, OFA_BLOCK, None))
    result = run_main("nas.latency", "import-ofa", folder, "--target", "t", "--out", str(tmp_path / "t.yaml"))
    assert result.returncode == 0, result.stderr
    assert len(read_proxyless_file(Path(_pixel1_file(tmp_path)))) == len(PIXEL1_FILE)
