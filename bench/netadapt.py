"""NetAdapt benchmark: MobileNetV3-Large trimmed on this machine's measured table, against a fair baseline.

    python bench/netadapt.py [--share 0.64] [--epochs 20] [--short-steps 20] [--long-epochs 5] [--seed 0]

1. Trains MobileNetV3-Large on digits at 32 px for ``--epochs`` (the original).
2. Runs the real ``python -m nas.netadapt`` CLI from those weights to ``--share`` of its predicted
   latency, on a copy of the x86_64 table (``--measure-missing`` extends the copy, not the shipped one).
3. Baseline: the original network fine-tuned with exactly the schedule the trimmed one received (one
   short fine-tune per kept iteration, then the long fine-tune), so accuracy compares like for like.
4. Times both networks here with onnxruntime (the table's thread count).

Writes runs/bench-netadapt-seedN/bench.json and prints a Markdown row for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time

import torch

from nas import ArchConfig
from nas._paths import REFERENCE_DIR, TABLES_DIR, runs_dir
from nas.evaluate import TrainEvaluator
from nas.latency import LatencyTable
from nas.model import build_model, load_weights, save_weights


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--share", type=float, default=0.64, help="budget as a share of the predicted latency")
    parser.add_argument("--epochs", type=float, default=20, help="training of the original")
    parser.add_argument("--short-steps", type=int, default=20)
    parser.add_argument("--long-epochs", type=float, default=5)
    parser.add_argument("--init-cut", type=float, default=0.05)
    parser.add_argument("--select", default="acc", choices=["acc", "acc-per-ms"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    out = runs_dir() / f"bench-netadapt-seed{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    config = ArchConfig.load(REFERENCE_DIR / "mobilenetv3_large.yaml")
    table_file = out / "x86_64.yaml"
    if not table_file.exists():
        shutil.copy(TABLES_DIR / "x86_64.yaml", table_file)
    trainer = TrainEvaluator(seed=args.seed)
    start = time.perf_counter()

    original = out / "original.pt"
    if not original.exists():
        torch.manual_seed(args.seed)
        model = build_model(config)
        trainer.finetune(model, trainer.steps_for(args.epochs), lr=trainer.lr, label="original")
        save_weights(model, original)
    budget = args.share * LatencyTable.load(table_file).predict(config)
    trimmed = out / "netadapt"
    command = [
        sys.executable,
        "-m",
        "nas.netadapt",
        "--config",
        str(REFERENCE_DIR / "mobilenetv3_large.yaml"),
        "--weights",
        str(original),
        "--target",
        str(table_file),
        "--budget",
        f"{budget}ms",
        "--short-steps",
        str(args.short_steps),
        "--long-epochs",
        str(args.long_epochs),
        "--init-cut",
        str(args.init_cut),
        "--select",
        args.select,
        "--seed",
        str(args.seed),
        "--measure-missing",
        "--out",
        str(trimmed),
    ]
    subprocess.run(command, check=True)
    final = json.loads((trimmed / "final.json").read_text())
    iterations = len(json.loads((trimmed / "state.json").read_text())["history"])

    baseline = build_model(config)
    load_weights(baseline, original)
    for i in range(iterations):
        trainer.finetune(baseline, args.short_steps, label=f"baseline short {i + 1}")
    trainer.finetune(baseline, trainer.steps_for(args.long_epochs), label="baseline long")
    result = {
        "budget_ms": budget,
        "iterations": iterations,
        "original_accuracy": final["start_accuracy"],
        "baseline_accuracy": trainer.accuracy(baseline),
        "trimmed_accuracy": final["final_accuracy"],
        "predicted_ms": [final["start_ms"], final["final_ms"]],
        "measured_ms": [final["measured"]["start_ms"], final["measured"]["final_ms"]],
        "measured_speedup": final["measured"]["speedup"],
        "args": vars(args),
        "seconds": round(time.perf_counter() - start),
    }
    (out / "bench.json").write_text(json.dumps(result, indent=1))
    loss = 100 * (result["baseline_accuracy"] - result["trimmed_accuracy"])
    print(
        "| seed | predicted (ms) | measured (ms) | measured speed-up | top-1: original / fine-tuned original"
        " / trimmed | loss vs baseline |"
    )
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.seed} | {final['start_ms']:.3f} → {final['final_ms']:.3f} | {result['measured_ms'][0]:.3f} →"
        f" {result['measured_ms'][1]:.3f} | {result['measured_speedup']:.2f}x | {result['original_accuracy']:.4f} /"
        f" {result['baseline_accuracy']:.4f} / {result['trimmed_accuracy']:.4f} | {loss:+.2f} points |"
    )


if __name__ == "__main__":
    main()
