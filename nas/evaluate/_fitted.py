"""Accuracy predictors fitted on your own results: train N networks for real (or take a finished study's
scores), fit, then score thousands of candidates in microseconds.

Features come from the config as the space lays it out: per stage (blocks grouped by feature-map size)
and position, every field of the block one-hot (type, kernel, expansion, SE, activation...), each
stage's depth, the stem, head and resolution, plus log10 MACs and parameters. The model is ridge
regression, its strength chosen by cross-validation on the training split; a held-out split it never
saw gives the Kendall tau and Spearman stored with it. The file is a plain ``.npz`` (no pickles) that
also holds its space (YAML text and hash): the predictor refuses configs outside it.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from nas._errors import NasError, OutsideSpaceError
from nas._files import write_bytes_atomic
from nas._yaml import parse_mapping
from nas.config import ArchConfig, stages
from nas.evaluate._base import Evaluator, Score
from nas.space import SearchSpace

FORMAT = 1
ALPHAS = (0.01, 0.1, 1.0, 10.0, 100.0)


def tokens(config: ArchConfig) -> list[str]:
    """The one-hot features a config switches on."""
    found = [f"resolution={config.resolution}"]
    found += [f"stem.{key}={value}" for key, value in config.stem.to_dict("").items()]
    found += [f"head.{key}={value}" for key, value in config.head.to_dict("").items()]
    for factor, blocks in stages(config).items():
        found.append(f"s{factor}.depth={len(blocks)}")
        for position, block in enumerate(blocks):
            found += [f"s{factor}.{position}.{key}={value}" for key, value in block.to_dict("").items()]
    return found


def _numeric(config: ArchConfig) -> list[float]:
    return [np.log10(config.macs()), np.log10(config.params())]


def _features(
    configs: Sequence[ArchConfig], vocabulary: Sequence[str], mean: np.ndarray, std: np.ndarray
) -> np.ndarray:
    """One row per config: its tokens one-hot over ``vocabulary``, then the standardised numeric features."""
    index = {token: i for i, token in enumerate(vocabulary)}
    x = np.zeros((len(configs), len(vocabulary) + len(mean)))
    for row, config in enumerate(configs):
        for token in tokens(config):
            if (column := index.get(token)) is not None:  # a value never seen in training adds nothing
                x[row, column] = 1
        x[row, len(vocabulary) :] = (np.array(_numeric(config)) - mean) / std
    return x


@dataclass(frozen=True)
class FittedPredictor:
    """Ridge regression on config features, with the space it was fitted in and its held-out quality."""

    vocabulary: tuple[str, ...]
    weights: np.ndarray  # one per vocabulary token, then the standardised numeric features
    bias: float
    numeric_mean: np.ndarray
    numeric_std: np.ndarray
    alpha: float
    space_yaml: str
    space_hash: str
    unit: str  # what the fitted scores were (e.g. "held-out top-1")
    metrics: dict[str, float]  # kendall_tau, spearman, mae on the held-out split; n_train, n_holdout

    def predict(self, configs: Sequence[ArchConfig]) -> np.ndarray:
        x = _features(configs, self.vocabulary, self.numeric_mean, self.numeric_std)
        return x @ self.weights + self.bias

    @property
    def space(self) -> SearchSpace:
        space = SearchSpace.from_dict(
            parse_mapping(self.space_yaml, "the predictor's space"), source="the predictor's space"
        )
        if space.hash != self.space_hash:
            raise NasError(
                f"the predictor's space (hash {space.hash}) is not the one it was fitted in ({self.space_hash})"
            )
        return space

    def save(self, path: str | os.PathLike[str]) -> Path:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            format=np.array(FORMAT),
            vocabulary=np.array(self.vocabulary, dtype=str),
            weights=self.weights,
            bias=np.array(self.bias),
            numeric_mean=self.numeric_mean,
            numeric_std=self.numeric_std,
            alpha=np.array(self.alpha),
            space_yaml=np.array(self.space_yaml),
            space_hash=np.array(self.space_hash),
            unit=np.array(self.unit),
            metric_names=np.array(list(self.metrics), dtype=str),
            metric_values=np.array(list(self.metrics.values()), dtype=float),
        )
        path = Path(path)
        write_bytes_atomic(path, buffer.getvalue())
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FittedPredictor:
        path = Path(path)
        if not path.is_file():
            raise NasError(f"{path}: no such predictor file; write one with: python -m nas.evaluate fit-predictor")
        try:
            with np.load(path, allow_pickle=False) as data:
                if int(data["format"]) != FORMAT:
                    raise NasError(f"{path}: predictor format {int(data['format'])}, this nas reads {FORMAT}")
                fitted = cls(
                    vocabulary=tuple(str(t) for t in data["vocabulary"]),
                    weights=data["weights"].astype(float),
                    bias=float(data["bias"]),
                    numeric_mean=data["numeric_mean"].astype(float),
                    numeric_std=data["numeric_std"].astype(float),
                    alpha=float(data["alpha"]),
                    space_yaml=str(data["space_yaml"]),
                    space_hash=str(data["space_hash"]),
                    unit=str(data["unit"]),
                    metrics=dict(zip((str(n) for n in data["metric_names"]), map(float, data["metric_values"]),
                                     strict=True)),
                )  # fmt: skip
        except NasError:
            raise
        except Exception as exc:  # numpy raises many types for truncated or foreign files
            raise NasError(
                f"{path}: not a predictor written by nas.evaluate fit-predictor ({type(exc).__name__})"
            ) from None
        if (
            len(fitted.weights) != len(fitted.vocabulary) + len(fitted.numeric_mean)
            or not np.isfinite(fitted.weights).all()
        ):
            raise NasError(f"{path}: corrupt predictor (weights do not match its features)")
        return fitted


def fit_predictor(
    configs: Sequence[ArchConfig],
    scores: Sequence[float],
    *,
    space: SearchSpace,
    unit: str,
    holdout: float = 0.2,
    seed: int = 0,
) -> FittedPredictor:
    """Fit on a random ``1 - holdout`` of the pairs; the rest only measures it (Kendall tau, Spearman)."""
    y = np.asarray(scores, dtype=float)
    if len(configs) != len(y) or len(y) < 10:
        raise NasError(f"fit-predictor: {len(y)} scored configs; give at least 10 (better: a few hundred)")
    if not np.isfinite(y).all():
        raise NasError("fit-predictor: a score is NaN or inf; drop the trials that failed")
    for config in configs:
        if not space.contains(config):
            raise OutsideSpaceError(f"fit-predictor: {config.name or 'a config'} is not in space {space.name}")
    order = np.random.default_rng(seed).permutation(len(y))
    cut = max(2, round(holdout * len(y)))
    test, train = order[:cut], order[cut:]
    vocabulary = tuple(sorted({t for i in train for t in tokens(configs[i])}))
    numeric = np.array([_numeric(configs[i]) for i in train])
    mean, std = numeric.mean(0), numeric.std(0) + 1e-9
    x_train, y_train = _features([configs[i] for i in train], vocabulary, mean, std), y[train]
    alpha = min(ALPHAS, key=lambda a: _cv_error(x_train, y_train, a, seed))
    weights, bias = _ridge(x_train, y_train, alpha)
    fitted = FittedPredictor(
        vocabulary, weights, bias, mean, std, alpha, space.source_text(), space.hash,
        unit, {},
    )  # fmt: skip
    predicted = fitted.predict([configs[i] for i in test])
    from scipy import stats  # here, not at the top: it adds most of a second to every command's start

    metrics = {
        "kendall_tau": float(stats.kendalltau(predicted, y[test]).statistic),
        "spearman": float(stats.spearmanr(predicted, y[test]).statistic),
        "mae": float(np.abs(predicted - y[test]).mean()),
        "n_train": float(len(train)),
        "n_holdout": float(len(test)),
    }
    return replace(fitted, metrics=metrics)


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    mean_x, mean_y = x.mean(0), y.mean()
    xc = x - mean_x
    weights = np.linalg.solve(xc.T @ xc + alpha * np.eye(x.shape[1]), xc.T @ (y - mean_y))
    return weights, float(mean_y - mean_x @ weights)


def _cv_error(x: np.ndarray, y: np.ndarray, alpha: float, seed: int, folds: int = 5) -> float:
    order = np.random.default_rng(seed + 1).permutation(len(y))
    errors = []
    for fold in np.array_split(order, min(folds, len(y))):
        keep = np.setdiff1d(order, fold)
        weights, bias = _ridge(x[keep], y[keep], alpha)
        errors.append(np.mean((x[fold] @ weights + bias - y[fold]) ** 2))
    return float(np.mean(errors))


class PredictorEvaluator(Evaluator):
    """A predictor fitted with ``nas.evaluate fit-predictor`` (`--predictor FILE`)."""

    name = "predictor"
    kind = "predictor"

    def __init__(self, *, predictor: str | os.PathLike[str]) -> None:
        self.path = Path(predictor)
        self.model = FittedPredictor.load(self.path)
        self.space = self.model.space
        self.unit = f"predicted {self.model.unit}"

    def score(self, config: ArchConfig) -> Score:
        start = time.perf_counter()
        if not self.space.contains(config):
            raise OutsideSpaceError(
                f"{config.name or 'config'}: not in space {self.space.name} that predictor {self.path} was fitted in"
            )
        value = float(self.model.predict([config])[0])
        tau = self.model.metrics.get("kendall_tau", float("nan"))
        return Score(value, self.kind, f"fitted ridge, held-out tau {tau:.2f}", time.perf_counter() - start,
                     self.describe())  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "predictor": str(self.path.resolve()), **self.model.metrics}
