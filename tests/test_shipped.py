"""The shipped MobileNetV3 files price exactly as before the block registry: same space hashes, same
sampled configs and op keys, same predictions from every shipped table (numbers taken with nas at
commit 49f671e, before the registry; arm64's taken again when Pixel-1 ops joined its estimate)."""

from __future__ import annotations

import pytest

from nas import ArchConfig, SearchSpace
from nas._paths import REFERENCE_DIR, SPACES_DIR
from nas.latency import LatencyTable

BEFORE = {
    ("x86_64", "mobilenetv3_large"): 4.828618953111607,
    ("x86_64", "mobilenetv3_small"): 1.6698591629756436,
    ("x86_64", 0): 1.8554762750906537,
    ("x86_64", 1): 1.5862353491053656,
    ("x86_64", 2): 1.8468928842385728,
    ("arm64", "mobilenetv3_large"): 50.999959999999994,
    ("arm64", "mobilenetv3_large_075"): 40.08431999999999,
    ("arm64", "mobilenetv3_small"): 15.800009999999997,
    ("arm64", "mobilenetv3_small_075"): 13.22244,
    ("arm64", 0): 17.20046,
    ("arm64", 1): 14.95657,
    ("arm64", 2): 18.303269999999994,
}
OFA_BEFORE = {("x86_64-ofa", 0): 5.286357541286968, ("x86_64-ofa", 1): 8.305975718823783}
OFA_BEFORE |= {("note10", 0): 23.33925, ("note10", 1): 36.31638000000001}


def test_space_hashes_are_unchanged() -> None:
    assert SearchSpace.load(SPACES_DIR / "mobilenetv3.yaml").hash == "c2af2f5a705c0635"
    assert SearchSpace.load(SPACES_DIR / "ofa_mbv3_w1.2.yaml").hash == "a1f751c7c4cb57ac"


def test_seeded_configs_and_their_keys_are_unchanged() -> None:
    config = SearchSpace.load(SPACES_DIR / "mobilenetv3.yaml").random_config(0)
    keys = [op.key for op in config.ops()]
    assert keys[:3] == [
        "stem|r224|i3|o24|k3|s2|hs",
        "ir|r112|i24|e24|o16|k5|s2|se1|re",
        "ir|r56|i16|e48|o24|k5|s2|se0|hs",
    ]
    assert keys[-3:] == ["ir|r4|i96|e384|o96|k3|s1|se1|hs", "last|r4|i96|o960|hs", "head|r4|i960|h1024|o1000|hs"]
    assert len(keys) == 19


@pytest.mark.parametrize(("target", "what"), sorted(BEFORE, key=str) + sorted(OFA_BEFORE, key=str))
def test_shipped_tables_price_as_before(target: str, what: str | int) -> None:
    table = LatencyTable.load(target)
    if isinstance(what, str):
        config = ArchConfig.load(REFERENCE_DIR / f"{what}.yaml")
    else:
        space = "mobilenetv3.yaml" if (target, what) in BEFORE else "ofa_mbv3_w1.2.yaml"
        config = SearchSpace.load(SPACES_DIR / space).random_config(what)
    assert table.predict(config) == pytest.approx((BEFORE | OFA_BEFORE)[target, what], rel=1e-12)
