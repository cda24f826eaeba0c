#!/usr/bin/env python3
"""The tables of experiments/sam_family/README.md from the sweeps' run directories.

    python3 experiments/sam_family/report.py runs/fmnist_family            # the family table
    python3 experiments/sam_family/report.py runs/m_sharpness --key m      # m-sharpness

Reads every <combo>/seed<k>/result.json under the sweep directory (as `plateau sweep` writes them),
prints mean ± std over seeds per configuration, and, for the family, each method's gap to SGD at the
same noise and seed (paired), marked when |mean| exceeds 2 standard deviations of the paired gaps.
"""
import argparse
import json
import math
import os
import statistics
import sys

COLUMNS = [
    ("test_acc_best_val", "test acc (best val)", 4),
    ("test_acc_last", "test acc (last)", 4),
    ("train_acc_flipped", "train acc on flipped", 3),
    ("top_eigenvalue", "top Hessian eigenvalue", 2),
    ("worst_case_sharpness", "worst-case increase (ρ 0.05)", 4),
    ("seconds_per_epoch", "s/epoch", 2),
]


def read(root):
    """{combo: {seed: result}} for every finished run under root."""
    runs = {}
    for combo in sorted(os.listdir(root)):
        path = os.path.join(root, combo)
        if not os.path.isdir(path):
            continue
        for seed in sorted(os.listdir(path)):
            result = os.path.join(path, seed, "result.json")
            if seed.startswith("seed") and os.path.exists(result):
                with open(result) as f:
                    runs.setdefault(combo, {})[int(seed[4:])] = json.load(f)
    return runs


def parse(combo):
    return dict(part.split("=", 1) for part in combo.split(",")) if "=" in combo else {}


def mean_std(values, digits):
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def paired_gap(runs, base, key):
    """mean ± std of runs − base over the seeds both have; bold when |mean| > 2 std."""
    gaps = [runs[s][key] - base[s][key] for s in runs if s in base]
    if len(gaps) < 2:
        return "–"
    m, sd = statistics.mean(gaps), statistics.stdev(gaps)
    text = f"{m:+.4f} ± {sd:.4f} (n = {len(gaps)})"
    return f"**{text}**" if abs(m) > 2 * sd else text


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root")
    ap.add_argument("--key", help="the grid key of the rows (default: method and noise)")
    ap.add_argument("--seeds", type=int, help="only the first N seeds of each configuration")
    ap.add_argument("--drop-collapsed", action="store_true",
                    help="leave out runs that never left chance (test accuracy at the best validation epoch < 0.5) "
                         "and name them")
    ap.add_argument("--order", default="sgd,sam,asam,fisher_sam,msam,hero", help="methods in this order")
    args = ap.parse_args()
    runs = read(args.root)
    if args.seeds:
        first = {min(seeds) for seeds in runs.values()}
        low = min(first) if first else 0
        runs = {c: {s: r for s, r in seeds.items() if s < low + args.seeds} for c, seeds in runs.items()}
    if args.drop_collapsed:
        for combo in runs:
            for seed in [s for s, r in runs[combo].items() if r["test_acc_best_val"] < 0.5]:
                print(f"left out: {combo} seed {seed} (test accuracy {runs[combo][seed]['test_acc_best_val']:.4f}: "
                      "training collapsed to chance)\n")
                del runs[combo][seed]
    if not runs:
        sys.exit(f"report.py: no finished runs under {args.root}")

    if args.key:
        rows = sorted(runs, key=lambda c: float(parse(c).get(args.key, "nan")))
        print(f"| {args.key} | seeds | " + " | ".join(title for _, title, _ in COLUMNS) + " |")
        print("|---" * (len(COLUMNS) + 2) + "|")
        for combo in rows:
            results = runs[combo].values()
            cells = [mean_std([r[k] for r in results if k in r], d) for k, _, d in COLUMNS]
            print(f"| {parse(combo).get(args.key)} | {len(runs[combo])} | " + " | ".join(cells) + " |")
        base = runs[rows[-1]]
        print(f"\nGaps to {rows[-1]} at the same seed (mean ± std of the paired differences); **bold**: |mean| > 2 std.\n")
        print(f"| {args.key} | Δ test acc (best val) | Δ test acc (last) |")
        print("|---|---|---|")
        for combo in rows[:-1]:
            cells = [paired_gap(runs[combo], base, key) for key in ("test_acc_best_val", "test_acc_last")]
            print(f"| {parse(combo).get(args.key)} | " + " | ".join(cells) + " |")
        return

    order = args.order.split(",")
    combos = sorted(runs, key=lambda c: (float(parse(c).get("noise", 0)),
                                         order.index(parse(c)["method"]) if parse(c).get("method") in order else 99))
    print("| noise | method | seeds | " + " | ".join(title for _, title, _ in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 3) + "|")
    for combo in combos:
        p = parse(combo)
        results = runs[combo].values()
        cells = [mean_std([r[k] for r in results if k in r], d) for k, _, d in COLUMNS]
        print(f"| {p.get('noise')} | {p.get('method')} | {len(runs[combo])} | " + " | ".join(cells) + " |")

    print("\nGaps to SGD at the same noise and seed (method − SGD, mean ± std of the paired differences); "
          "**bold**: |mean| > 2 std.\n")
    print("| noise | method | Δ test acc (best val) | Δ test acc (last) |")
    print("|---|---|---|---|")
    for combo in combos:
        p = parse(combo)
        if p.get("method") == "sgd":
            continue
        base = runs.get(f"method=sgd,noise={p.get('noise')}", {})
        cells = [paired_gap(runs[combo], base, key) for key in ("test_acc_best_val", "test_acc_last")]
        print(f"| {p.get('noise')} | {p.get('method')} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
