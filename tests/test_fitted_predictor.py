"""Predictors fitted on a study's own results: the file round-trips, records its held-out quality, and
refuses what it was not fitted for."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from nas import SearchSpace
from nas.evaluate import FittedPredictor, get_evaluator
from nas.search import run_search, scored_configs
from tests.conftest import SMALL, TINY_SPACE, run_main
from tests.test_latency import synthetic_table


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished search of a tiny space, scored by the params baseline (log10 parameters)."""
    folder = tmp_path_factory.mktemp("fit")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(TINY_SPACE))
    space = SearchSpace.load(folder / "tiny.yaml")
    table = synthetic_table(space, seed=5)
    run_search(latency=table, space=space, budget_ms=3, evaluator="params", trials=80, out=folder / "run")
    return folder / "run"


def test_fit_predictor_round_trips_and_records_its_held_out_quality(study: Path, tmp_path: Path) -> None:
    result = run_main("nas.evaluate", "fit-predictor", "--study", str(study), "--out", str(tmp_path / "p.npz"))
    assert result.returncode == 0, result.stderr
    assert "Kendall tau" in result.stdout
    fitted = FittedPredictor.load(tmp_path / "p.npz")
    configs, scores, space, unit = scored_configs(study)
    assert unit == "log10 params"
    assert fitted.space.hash == space.hash
    assert fitted.metrics["n_train"] + fitted.metrics["n_holdout"] == len(scores)
    assert fitted.metrics["kendall_tau"] > 0.5  # log10 params is close to linear in the features
    again = FittedPredictor.load(fitted.save(tmp_path / "again.npz"))
    assert np.array_equal(again.predict(configs), fitted.predict(configs))
    evaluator = get_evaluator("predictor", predictor=tmp_path / "p.npz")
    assert evaluator.unit == "predicted log10 params"
    assert evaluator.score(configs[0]).value == pytest.approx(fitted.predict(configs[:1])[0])


def test_a_predictor_refuses_another_space_and_bad_files(study: Path, tmp_path: Path) -> None:
    run_main("nas.evaluate", "fit-predictor", "--study", str(study), "--out", str(tmp_path / "p.npz"))
    result = run_main("nas.evaluate", str(SMALL), "--evaluator", "predictor", "--predictor", str(tmp_path / "p.npz"))
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: mobilenetv3_small: not in space tiny that predictor {tmp_path / 'p.npz'} was fitted in"
    )
    (tmp_path / "bad.npz").write_bytes((tmp_path / "p.npz").read_bytes()[:200])
    result = run_main("nas.evaluate", str(SMALL), "--evaluator", "predictor", "--predictor", str(tmp_path / "bad.npz"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not a predictor written by nas.evaluate fit-predictor" in result.stderr
