"""When do your own expensive scores pay twice? A fitted predictor and a warm start, against searching directly.

Training is what a user's evaluations cost; here OFA's ImageNet predictor stands in for it (each call is
"one network trained"), on OFA's space, at OFA's published 30, 41 and 50 ms Note10 networks' prices on
each device's table (as bench/ofa_compare.py). Per seed, with N = --evaluations and k = --top:
  - on note10, the README's recipe: a search on the expensive score (N trials, NSGA-II, as `nas.search`
    runs by default), `fit-predictor` on its results, a search of --predicted trials on the fitted
    predictor, then the k configs it predicts best within each budget scored for real ("train the
    front"): N + 3k expensive evaluations;
  - on a second device (x86_64-ofa), reusing the note10 search's N scores: its configs repriced (no new
    evaluation); the note10 predictor's search there, k per budget scored for real (3k); a surrogate search
    warm-started from the note10 search (`--warm-start`) with 3k new trials, and one with N + 3k;
  - on both devices, one search on the expensive score with all N + 3k evaluations, per sampler in
    --samplers.
Printed: per budget the best expensive score within it (OFA-predicted ImageNet top-1, 10K holdout, before
fine-tuning), mean and range over seeds, and the fitted predictor's held-out Kendall tau.

    python bench/fitted_search.py [--evaluations 300] [--top 10] [--predicted 10000] [--seeds 3]
                                  [--samplers nsga2,surrogate]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from ofa_compare import NETS, add_data_arguments, mean_range  # this folder

from nas import ArchConfig, LatencyTable
from nas._cli import quiet_optuna
from nas._table import format_table
from nas.config import load_ofa_net
from nas.evaluate import Evaluator, fit_predictor, get_evaluator
from nas.evaluate._ofa import OFAPredictorEvaluator
from nas.search import SearchResult, run_search, scored_configs

SPACE = "ofa_mbv3_w1.2"
FIRST, SECOND = "note10", "x86_64-ofa"  # the device the expensive scores come from, and another one


class Routes:
    """The searches of one seed, and every route's best expensive score per budget."""

    def __init__(
        self, *, tables: dict[str, LatencyTable], budgets: dict[str, list[float]], seed: int, out: Path
    ) -> None:
        self.tables, self.budgets, self.seed, self.out = tables, budgets, seed, out
        self.best: dict[tuple[str, str, int], list[float]] = {}

    def search(self, target: str, evaluator: Evaluator, trials: int, name: str, **options: Any) -> SearchResult:
        return run_search(latency=self.tables[target], budget_ms=max(self.budgets[target]),
                          also_budgets_ms=self.budgets[target], space=SPACE, evaluator=evaluator, trials=trials,
                          seed=self.seed, out=self.out / name, **options)  # fmt: skip

    def keep(self, target: str, route: str, cost: int, tops: list[float]) -> None:
        self.best[target, route, cost] = tops
        print(f"seed {self.seed}, {target}: {route} {' / '.join(f'{100 * t:.2f}' for t in tops)}", flush=True)

    def fronts(self, target: str, result: SearchResult) -> list[float]:
        return [point.score for point in map(result.best_within, self.budgets[target])]  # type: ignore[union-attr]

    def trained_front(self, target: str, ranked: list[ArchConfig], truth: Evaluator, top: int) -> list[float]:
        """The recipe's last step, "train the front": per budget, the ``top`` configs of ``ranked`` (best
        predicted first) within it, scored for real; the best of them."""
        prices = [self.tables[target].predict(config) for config in ranked]
        tops = []
        for budget in self.budgets[target]:
            within = [config for config, ms in zip(ranked, prices, strict=True) if ms <= budget][:top]
            tops.append(max(truth.score(config).value for config in within))
        return tops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--evaluations", type=int, default=300, help="the first search's trials (expensive scores)")
    parser.add_argument("--top", type=int, default=10, help="configs per budget the recipe scores for real at the end")
    parser.add_argument("--predicted", type=int, default=10_000, help="trials of the search on the fitted predictor")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samplers", default="nsga2,surrogate", help="samplers of the direct searches")
    parser.add_argument("--out", type=Path, default=Path("runs/fitted_search"))
    args = parser.parse_args()
    quiet_optuna()

    truth = OFAPredictorEvaluator(predictor=args.predictor)
    nets = [load_ofa_net(args.nets / name) for name in NETS]
    tables = {target: LatencyTable.load(target) for target in (FIRST, SECOND)}
    budgets = {target: [table.predict(net) for net in nets] for target, table in tables.items()}
    new = len(nets) * args.top  # the recipe's last step: the expensive evaluations a second device needs
    spent = args.evaluations + new
    record: dict = {"budgets_ms": budgets, "evaluations": spent, "runs": []}
    best: dict[tuple[str, str, int], list[list[float]]] = {}
    for seed in range(args.seeds):
        routes = Routes(tables=tables, budgets=budgets, seed=seed, out=args.out / f"seed{seed}")
        routes.search(FIRST, truth, args.evaluations, "expensive")
        configs, scores, space, unit = scored_configs(routes.out / "expensive")
        fitted = fit_predictor(configs, scores, space=space, unit=unit, seed=seed)
        fitted.save(routes.out / "predictor.npz")
        cheap = get_evaluator("predictor", predictor=routes.out / "predictor.npz")
        for target, route, cost in ((FIRST, "recipe", spent), (SECOND, f"the {FIRST} predictor reused", new)):
            routes.search(target, cheap, args.predicted, f"predicted-{target}")
            guessed, guesses, _, _ = scored_configs(routes.out / f"predicted-{target}")
            ranked = [guessed[i] for i in np.argsort(guesses)[::-1]]
            routes.keep(target, route, cost, routes.trained_front(target, ranked, truth, args.top))
        prices = [routes.tables[SECOND].predict(config) for config in configs]
        repriced = [max(s for s, ms in zip(scores, prices, strict=True) if ms <= b) for b in budgets[SECOND]]
        routes.keep(SECOND, f"the {FIRST} search's configs, repriced", 0, repriced)
        for trials in (new, spent):
            warm = routes.search(SECOND, truth, trials, f"warm-{trials}", sampler="surrogate",
                                 warm_start=[routes.out / "expensive"])  # fmt: skip
            routes.keep(SECOND, f"warm start from the {FIRST} search, surrogate", trials, routes.fronts(SECOND, warm))
        for target in (FIRST, SECOND):
            for sampler in args.samplers.split(","):
                direct = routes.search(target, truth, spent, f"direct-{target}-{sampler}", sampler=sampler)
                routes.keep(target, f"direct, {sampler}", spent, routes.fronts(target, direct))
        by_route = {" | ".join(map(str, key)): tops for key, tops in routes.best.items()}
        record["runs"].append({"seed": seed, "tau": fitted.metrics["kendall_tau"], "best": by_route})
        for key, tops in routes.best.items():
            best.setdefault(key, []).append(tops)

    taus = [run["tau"] for run in record["runs"]]
    print(f"best within each budget: OFA-predicted ImageNet top-1 (%, 10K holdout, before fine-tuning), mean (range)"
          f" over {args.seeds} seeds. The fitted predictor's held-out Kendall tau: {mean_range(taus, 3)}. The"
          f" {SECOND} routes but the direct ones also use the {args.evaluations} expensive scores of the {FIRST}"
          " search.")  # fmt: skip
    headers = ["device", "route", "new expensive evaluations", *(net.name.split("_")[1] for net in nets)]
    rows = [
        [target, route, str(cost), *(mean_range([100 * tops[i] for tops in runs]) for i in range(len(nets)))]
        for (target, route, cost), runs in sorted(best.items(), key=lambda item: item[0][0] != FIRST)
    ]
    print(format_table(headers, rows, markdown=True))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fitted_search.json").write_text(json.dumps(record, indent=1))


if __name__ == "__main__":
    main()
