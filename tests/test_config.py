"""ArchConfig: exact costs of the references, YAML round-trip, schema errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nas import ArchConfig, SpecError
from nas.config import make_divisible, se_channels
from tests.conftest import SHARED_DATA


def test_reference_costs_match_published_counts(large: ArchConfig, small: ArchConfig) -> None:
    assert large.params() == 5_483_032
    assert large.macs() == 216_589_760
    assert small.params() == 2_542_856
    assert small.macs() == 56_510_400


@pytest.mark.parametrize("arch", ["large", "small"])
def test_per_block_costs_match_reference_data(arch: str, request: pytest.FixtureRequest) -> None:
    data_file = SHARED_DATA / "mobilenetv3_reference.yaml"
    if not data_file.exists():
        pytest.skip("../shared/data is not beside this checkout")
    blocks = yaml.safe_load(data_file.read_text())["architectures"][f"mobilenet_v3_{arch}"]["blocks"]
    config: ArchConfig = request.getfixturevalue(arch)
    units = config.units()
    # reference rows: stem, blocks, last conv, pool, hidden fc, classifier; our head unit holds the last three
    assert [u.params for u in units[:-1]] == [b["params_torchvision"] for b in blocks[:-3]]
    assert [u.macs for u in units[:-1]] == [b["macs_conv_linear_torchvision"] for b in blocks[:-3]]
    assert units[-1].params == sum(b["params_torchvision"] for b in blocks[-3:])
    assert units[-1].macs == sum(b["macs_conv_linear_torchvision"] for b in blocks[-3:])
    sizes = [int(b["input"].split("x")[0]) for b in blocks[: len(units) - 1]]
    assert [u.in_size for u in units[:-1]] == sizes


def test_make_divisible_follows_mobilenet_rounding() -> None:
    assert [make_divisible(v) for v in (16, 72.0, 88.08, 184.0, 3.0, 20)] == [16, 72, 88, 184, 8, 24]
    assert [se_channels(e) for e in (16, 72, 120, 480, 672, 960)] == [8, 24, 32, 120, 168, 240]


def test_yaml_round_trip_is_exact(large: ArchConfig, tmp_path: Path) -> None:
    path = tmp_path / "large.yaml"
    large.save(path)
    again = ArchConfig.load(path)
    assert again == large
    assert again.name == large.name
    path2 = tmp_path / "again.yaml"
    again.save(path2)
    assert path2.read_text() == path.read_text()


def test_round_trip_keeps_every_field(small: ArchConfig, tmp_path: Path) -> None:
    changed = ArchConfig.from_dict(
        {
            **small.to_dict(),
            "resolution": 96,
            "num_classes": 7,
            "head": {"last_channels": 128, "hidden_channels": 256, "act": "relu", "dropout": 0.35},
        }
    )
    changed.save(tmp_path / "c.yaml")
    assert ArchConfig.load(tmp_path / "c.yaml") == changed


def _layer(**overrides: object) -> dict[str, object]:
    return {"kernel": 3, "expanded": 16, "out": 16, "stride": 1, "se": False, "act": "relu", **overrides}


def _config(**overrides: object) -> dict[str, object]:
    return {
        "resolution": 32,
        "num_classes": 10,
        "stem": {"channels": 16},
        "layers": [_layer()],
        "head": {"last_channels": 32, "hidden_channels": 64},
        **overrides,
    }


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (["a", "list"], "expected a mapping with keys resolution, num_classes"),
        (_config(layer=[]), "unknown key 'layer'; allowed keys: resolution, num_classes"),
        (_config(layers=[_layer(kernal=3)]), "layers[0]: unknown key 'kernal'"),
        (_config(layers=[_layer(kernel="3")]), "layers[0].kernel: expected an integer; got '3' (str)"),
        (_config(layers=[_layer(out=0)]), "layers[0].out: 0 is too small; use an integer >= 1"),
        (_config(layers=[_layer(expanded=-8)]), "layers[0].expanded: -8 is too small"),
        (_config(layers=[_layer(kernel=4)]), "layers[0].kernel: 4 is not allowed; use one of 3, 5, 7"),
        (_config(layers=[_layer(stride=3)]), "layers[0].stride: 3 is not allowed; use one of 1, 2"),
        (_config(layers=[_layer(se="yes")]), "layers[0].se: expected true or false"),
        (_config(layers=[_layer(act="swish")]), "layers[0].act: 'swish' is not allowed; use one of 'relu', 'hswish'"),
        (_config(layers=[]), "layers: the list is empty"),
        (_config(head={"last_channels": 32}), "head: missing key 'hidden_channels'"),
        (
            _config(head={"last_channels": 32, "hidden_channels": 64, "dropout": 1.5}),
            "head.dropout: 1.5 is out of range; use a number >= 0.0 and < 1.0",
        ),
        (_config(num_classes=True), "num_classes: expected an integer; got true (bool)"),
    ],
)
def test_bad_config_names_field_and_fix(data: object, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        ArchConfig.from_dict(data, source="bad.yaml")
    message = str(info.value)
    assert message.startswith("bad.yaml")
    assert fragment in message
    assert "\n" not in message
