"""OFA's accuracy predictor as an evaluator: OFA's encoding on hand-checked configs, .pth and .npz alike,
refusals in one line. The published weights are read from ../shared/data where present (never shipped);
the rest uses a predictor file of the same shapes written here."""

from __future__ import annotations

import os
import pickle
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from nas import ArchConfig, NasError, SearchSpace
from nas.config import load_ofa_net
from nas.evaluate import get_evaluator
from nas.evaluate._ofa import LAYERS, OFAArch, ofa_arch
from nas.search import run_search
from tests.conftest import ROOT, SMALL, run_main

SHARED = Path(os.environ.get("NAS_SHARED_DATA", ROOT.parent / "shared" / "data"))
PUBLISHED = SHARED / "ofa_acc_predictor" / "acc_predictor_ofa_mbv3_w1.2.npz"
NETS = SHARED / "ofa_specialized_nets" / "nets"


@pytest.fixture(scope="module")
def space() -> SearchSpace:
    return SearchSpace.load("ofa_mbv3_w1.2")


@pytest.fixture(scope="module")
def predictor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A predictor file with OFA's shapes and seeded weights."""
    rng = np.random.default_rng(0)
    tensors = {}
    for index, fan_in, fan_out in LAYERS:
        tensors[f"{index}_weight"] = (rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in)).astype(np.float32)
        tensors[f"{index}_bias"] = (0.1 * rng.standard_normal(fan_out)).astype(np.float32)
    path = tmp_path_factory.mktemp("predictor") / "synthetic.npz"
    np.savez(path, **tensors)
    return path


def _config(space: SearchSpace, depths: tuple[int, ...], resolution: int) -> ArchConfig:
    """A config of the OFA space with these stage depths: layer i of a stage gets kernel 3/5/7 and
    expansion 3/4/6 cycling with i, so every slot is recognisable."""
    config = space.random_config(0)
    first, layers, cin = config.layers[0], [], 24
    for (width, stride, se, act), depth in zip(
        ((32, 2, False, "relu"), (48, 2, True, "relu"), (96, 2, False, "hswish"), (136, 1, True, "hswish"),
         (192, 2, True, "hswish")), depths, strict=True,
    ):  # fmt: skip
        for i in range(depth):
            ratio = (3, 4, 6)[i % 3]
            layers.append(
                replace(first, kernel=(3, 5, 7)[i % 3], expanded=cin * ratio, out=width, stride=stride if i == 0 else 1,
                        se=se, act=act)
            )  # fmt: skip
            cin = width
    return replace(config, layers=[first, *layers], resolution=resolution)


def test_encoding_zeroes_slots_past_each_depth_and_buckets_the_resolution(space: SearchSpace) -> None:
    config = _config(space, (2, 3, 4, 2, 3), 176)
    assert space.contains(config)
    arch = ofa_arch(config)
    assert arch.d == (2, 3, 4, 2, 3)
    assert arch.ks == (3, 5, 0, 0, 3, 5, 7, 0, 3, 5, 7, 3, 3, 5, 0, 0, 3, 5, 7, 0)
    assert arch.e == (3, 4, 0, 0, 3, 4, 6, 0, 3, 4, 6, 3, 3, 4, 0, 0, 3, 4, 6, 0)
    x = arch.features()
    assert x.shape == (128,)
    assert x[:60].reshape(20, 3).sum(1).tolist() == [int(k > 0) for k in arch.ks]  # no bits past a depth
    assert x[3 * 1 + 1] == 1  # slot 1: kernel 5
    assert x[60 + 3 * 6 + 2] == 1  # slot 6: expansion 6
    assert x[120:].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]  # (176 - 112) // 16 = 4
    for resolution, bucket in ((160, 3), (172, 3), (208, 6), (224, 7)):
        assert np.argmax(OFAArch(arch.ks, arch.e, arch.d, resolution).features()[120:]) == bucket


def test_npz_and_pth_give_the_same_score(space: SearchSpace, predictor: Path, tmp_path: Path) -> None:
    state = OrderedDict()
    with np.load(predictor) as data:
        for key in data.files:
            state[key.replace("_", ".")] = torch.from_numpy(data[key])
    torch.save(state, tmp_path / "acc_predictor.pth")
    config = space.random_config(3)
    npz = get_evaluator("ofa-predictor", predictor=predictor).score(config).value
    pth = get_evaluator("ofa-predictor", predictor=tmp_path / "acc_predictor.pth").score(config).value
    assert npz == pytest.approx(pth, abs=1e-12)


@pytest.mark.skipif(not PUBLISHED.exists(), reason=f"OFA's predictor is not at {PUBLISHED}")
@pytest.mark.parametrize("given", ["converted", "folder", "net.config"])
def test_published_predictor_scores_ofa_note10_net_as_ofa_does(given: str, tmp_path: Path) -> None:
    """The net converted to a config file, or given as OFA ships it (its folder, or its net.config)."""
    folder = NETS / "note10_lat-30ms_top1-78.4_finetune-75"
    load_ofa_net(folder).save(tmp_path / "note10_30ms.yaml")
    config = {"converted": tmp_path / "note10_30ms.yaml", "folder": folder, "net.config": folder / "net.config"}[given]
    result = run_main("nas.evaluate", str(config), "--evaluator", "ofa-predictor", "--predictor", str(PUBLISHED))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ofa-predictor: 0.8196")  # PROVENANCE.md: 0.820 (ImageNet 78.4 fine-tuned)
    assert "OFA-predicted ImageNet top-1" in result.stdout


@pytest.mark.skipif(not NETS.exists(), reason=f"OFA's published networks are not at {NETS}")
def test_a_config_may_be_an_ofa_network_as_ofa_ships_it(tmp_path: Path) -> None:
    folder = NETS / "note10_lat-41ms_top1-79.3_finetune-75"
    assert ArchConfig.load(folder) == ArchConfig.load(folder / "net.config") == load_ofa_net(folder)
    assert ArchConfig.load(folder).name == folder.name
    (tmp_path / "run.config").write_text((folder / "run.config").read_text())  # a folder without its net.config
    with pytest.raises(NasError, match="is a folder, expected a YAML file"):
        ArchConfig.load(tmp_path)


def test_configs_outside_the_ofa_space_are_refused_by_name(space: SearchSpace, predictor: Path) -> None:
    evaluator = get_evaluator("ofa-predictor", predictor=predictor)
    with pytest.raises(NasError, match=r"mobilenetv3_small: stem: .* is not OFA's"):
        evaluator.score(ArchConfig.load(SMALL))
    config = space.random_config(1)
    bad = replace(config, layers=[config.layers[0], replace(config.layers[1], expanded=100), *config.layers[2:]])
    with pytest.raises(NasError, match=r"layers\[1\]\.expanded: 100 is not 24 x 3/4/6 = \[72, 96, 144\]"):
        evaluator.score(bad)
    with pytest.raises(NasError, match=r"resolution: 260 is outside"):
        evaluator.score(replace(config, resolution=260))


class _Payload:
    def __reduce__(self) -> tuple:
        return (os.system, ("echo owned",))


@pytest.mark.parametrize("kind", ["corrupt", "code", "shape", "missing"])
def test_bad_predictor_files_are_one_line_and_exit_2(kind: str, predictor: Path, tmp_path: Path) -> None:
    path = tmp_path / ("p.npz" if kind in ("corrupt", "shape") else "p.pth")
    if kind == "corrupt":
        path.write_bytes(predictor.read_bytes()[:300])
    elif kind == "code":
        path.write_bytes(pickle.dumps({"0.weight": _Payload()}))
    elif kind == "shape":
        np.savez(path, **{"0_weight": np.zeros((3, 3), np.float32)})
    result = run_main("nas.evaluate", str(SMALL), "--evaluator", "ofa-predictor", "--predictor", str(path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"error: {path}")
    assert "owned" not in result.stdout


@pytest.mark.skipif(not NETS.exists(), reason=f"OFA's published networks are not at {NETS}")
def test_a_search_in_ofa_space_compares_with_ofa_published_networks(
    predictor: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NAS_OFA_NETS", str(NETS))
    result = run_search(
        latency="note10", space="ofa_mbv3_w1.2", budget_ms=50, trials=10, out=tmp_path / "run",
        evaluator=get_evaluator("ofa-predictor", predictor=predictor),
    )  # fmt: skip
    names = [point.name for point in result.references]
    assert "note10_lat-30ms_top1-78.4_finetune-75" in names  # priced by the same table, scored the same way
    assert not any(name.startswith(("mobilenetv3", "cpu_", "1080ti")) for name in names)  # other spaces: left out
    assert " note10_lat-30ms_top1-78.4_finetune-75: score " in (tmp_path / "run" / "summary.md").read_text()
