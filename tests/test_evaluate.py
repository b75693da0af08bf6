"""Evaluators: finite and seed-deterministic, training learns held-out digits, rungs resume exactly."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nas import ArchConfig, NasError
from nas.data import load_dataset
from nas.evaluate import EVALUATORS, TrainEvaluator, get_evaluator

TINY = ArchConfig.from_dict(
    {
        "resolution": 32,
        "num_classes": 10,
        "stem": {"channels": 16},
        "layers": [
            {"kernel": 3, "expanded": 16, "out": 16, "stride": 1, "se": True, "act": "relu"},
            {"kernel": 3, "expanded": 48, "out": 24, "stride": 2, "se": False, "act": "relu"},
            {"kernel": 5, "expanded": 72, "out": 24, "stride": 1, "se": False, "act": "hswish"},
            {"kernel": 5, "expanded": 96, "out": 40, "stride": 2, "se": True, "act": "hswish"},
        ],
        "head": {"last_channels": 128, "hidden_channels": 128},
    }
)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def _options(name: str, digits, seed: int) -> dict[str, object]:
    if name in ("params", "flops"):
        return {}
    options: dict[str, object] = {"data": digits, "seed": seed}
    if name == "train":
        options["steps"] = 10
    return options


# predictors and supernets score only configs of their own space: tests/test_ofa_predictor.py,
# tests/test_fitted_predictor.py, tests/test_supernet.py
@pytest.mark.parametrize(
    "name", sorted(n for n, cls in EVALUATORS.items() if cls.kind != "predictor" and n != "supernet")
)
def test_scores_are_finite_and_deterministic_for_a_seed(name: str, digits) -> None:
    first = get_evaluator(name, **_options(name, digits, 0)).score(TINY)
    again = get_evaluator(name, **_options(name, digits, 0)).score(TINY)
    assert math.isfinite(first.value)
    assert first.value == again.value
    assert first.kind in ("baseline", "proxy", "accuracy")
    assert first.seconds >= 0


@pytest.mark.parametrize("name", ["synflow", "naswot", "grad_norm", "zen"])
def test_proxies_depend_on_the_seed(name: str, digits) -> None:
    a = get_evaluator(name, data=digits, seed=0).score(TINY).value
    b = get_evaluator(name, data=digits, seed=1).score(TINY).value
    assert a != b


def test_training_learns_digits_well_above_chance(digits) -> None:
    score = TrainEvaluator(data=digits, steps=200).score(TINY)
    assert score.value > 0.8  # chance is 0.1
    assert score.details["trained_steps"] == 200


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04 truncated zip"])
def test_a_corrupt_checkpoint_is_one_line_naming_it(digits, tmp_path: Path, content: bytes) -> None:
    checkpoint = tmp_path / "rung.pt"
    checkpoint.write_bytes(content)
    with pytest.raises(NasError, match=r"rung.pt: not a training checkpoint of this config \(\w+\); delete it"):
        TrainEvaluator(data=digits, steps=24, device="cpu").train(TINY, until=10, checkpoint=checkpoint)


def test_continuing_from_a_checkpoint_equals_training_in_one_go(digits, tmp_path: Path) -> None:
    evaluator = TrainEvaluator(data=digits, steps=24, seed=3, device="cpu")
    checkpoint = tmp_path / "rung.pt"
    evaluator.train(TINY, until=10, checkpoint=checkpoint)
    resumed = evaluator.train(TINY, until=24, checkpoint=checkpoint)
    one_go = evaluator.train(TINY)
    for (name, a), b in zip(resumed.state_dict().items(), one_go.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert torch.load(checkpoint, weights_only=True)["step"] == 24


def test_rung_scores_rise_with_fidelity(digits, tmp_path: Path) -> None:
    evaluator = TrainEvaluator(data=digits, steps=120)
    low = evaluator.score(TINY, steps=15, checkpoint=tmp_path / "c.pt")
    high = evaluator.score(TINY, steps=120, checkpoint=tmp_path / "c.pt")
    assert low.fidelity.startswith("trained 15/120")
    assert high.value > low.value


def test_unknown_evaluator_lists_the_available_ones() -> None:
    with pytest.raises(NasError, match=r"unknown evaluator 'acc'; available: params, flops, synflow"):
        get_evaluator("acc")
    with pytest.raises(NasError, match=r"evaluator 'params' has no option 'data'; its options: none"):
        get_evaluator("params", data="digits")


def test_evaluate_cli_scores_a_config_and_refuses_bad_data(tmp_path: Path) -> None:
    from tests.conftest import SMALL, run_cli, run_main

    result = run_cli("nas.evaluate", str(SMALL), "--evaluator", "naswot")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("naswot: ")
    assert " proxy score (proxy, " in result.stdout
    assert "zero-cost at 32px on digits" in result.stdout
    result = run_main("nas.evaluate", str(SMALL), "--evaluator", "train", "--data", str(tmp_path / "none"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "no such dataset folder" in result.stderr


def test_the_commands_help_names_every_evaluator() -> None:
    from nas._cli import EVALUATOR_NAMES

    assert EVALUATOR_NAMES.split(", ") == list(EVALUATORS)  # the help's list, written out to keep startup light
