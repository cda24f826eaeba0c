#!/usr/bin/env python3
"""Plots the demo's loss curve: python3 tools/plot_demo.py out/demo/loss.csv out/demo/loss.png"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src: str, dst: str) -> None:
    with open(src, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows:
        sys.exit(f"plot_demo: {src} holds no rows")
    steps = [int(r["step"]) for r in rows]
    loss = [float(r["loss"]) for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(steps, loss)
    ax.set_xlabel("SGD step")
    ax.set_ylabel("cross-entropy")
    ax.set_title("plateau demo: 2-16-2 tanh network")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(dst, dpi=120)
    print(f"plot written to {dst}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plot_demo.py LOSS_CSV OUT_PNG")
    main(sys.argv[1], sys.argv[2])
