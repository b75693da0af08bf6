"""What a model-based sampler pays for each candidate it weighs: decoding its choices and pricing the config.

``--sampler surrogate`` builds and prices hundreds of candidates for every trial it proposes (neighbours,
climbs, evolution on its model), so with a cheap evaluator (OFA's predictor: microseconds) this cost, not
the evaluator's, sets the search's pace. Times, in one run (this VM's speed drifts: compare two commits by
running this on each in turn, and their ratios, not single figures):

1. per shipped space and the table it is searched with, over ``--configs`` random configs (the best of
   ``--repeats`` passes): ``SearchSpace.build`` from a choice per name, as samplers decode, and
   ``LatencyTable.predict`` of the built config;
2. a ``--trials``-trial ``--sampler surrogate`` search on OFA's space, note10 table, 49.78 ms, seed 0, with
   OFA's predictor when ``--predictor`` exists (else the flops evaluator): seconds per trial the model chose
   (those after the 100 random ones), from the trials' timestamps.

    python bench/decode_speed.py [--configs 3000] [--repeats 5] [--trials 400]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nas import _cli
from nas.evaluate import OFAPredictorEvaluator
from nas.latency import LatencyTable
from nas.search import run_search
from nas.space import SearchSpace

PREDICTOR = Path(__file__).resolve().parents[2] / "shared/data/ofa_acc_predictor/acc_predictor_ofa_mbv3_w1.2.npz"
SPACES = (("mobilenetv3", "arm64"), ("lightweight", "x86_64-lightweight"), ("ofa_mbv3_w1.2", "note10"))


def best_of(repeats: int, work: Callable[[], Any]) -> tuple[float, Any]:
    """Fewest seconds of ``repeats`` calls of ``work``, and its result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return min(times), result


def decode(space: SearchSpace, genome: dict[str, Any]) -> Any:
    """The config a genome's choices make, decoded as the surrogate sampler decodes."""

    def choose(name: str, options: Sequence[Any]) -> Any:
        return genome[name] if genome.get(name) in options else options[0]

    return space.build(choose)


def per_config(space_name: str, table_name: str, configs: int, repeats: int) -> None:
    space, table = SearchSpace.load(space_name), LatencyTable.load(table_name)
    rng = random.Random(0)
    genes = space.choices()
    genomes = [{name: rng.choice(options) for name, options in genes.items()} for _ in range(configs)]
    build, built = best_of(repeats, lambda: [decode(space, genome) for genome in genomes])
    price, _ = best_of(repeats, lambda: [table.predict(config) for config in built])
    print(
        f"{space_name} ({len(genes)} choices) on {table_name}: build {1e3 * build / configs:.3f} ms,"
        f" predict {1e3 * price / configs:.3f} ms per config (best of {repeats} passes over {configs})"
    )


def surrogate_pace(trials: int, predictor: Path) -> None:
    evaluator = OFAPredictorEvaluator(predictor=predictor) if predictor.exists() else "flops"
    with tempfile.TemporaryDirectory(prefix="decode-speed-") as work:
        outcome = run_search(
            latency="note10",
            budget_ms=49.78,
            space="ofa_mbv3_w1.2",
            evaluator=evaluator,
            trials=trials,
            sampler="surrogate",
            seed=0,
            out=work,
        )
        done = sorted(outcome.study.get_trials(deepcopy=False), key=lambda t: t.number)
    chosen = (done[-1].datetime_complete - done[99].datetime_complete).total_seconds() / (len(done) - 100)
    label = "OFA's predictor" if predictor.exists() else "flops (no predictor at --predictor)"
    print(f"surrogate sampler, OFA space, {label}: {chosen:.3f} s per model-chosen trial ({len(done)} trials)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trials", type=int, default=400, help="of the surrogate search (0: skip it)")
    parser.add_argument("--predictor", type=Path, default=PREDICTOR)
    args = parser.parse_args()
    _cli.quiet_optuna()
    for space_name, table_name in SPACES:
        per_config(space_name, table_name, args.configs, args.repeats)
    if args.trials > 100:
        surrogate_pace(args.trials, args.predictor)


if __name__ == "__main__":
    main()
