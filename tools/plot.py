#!/usr/bin/env python3
"""Plots a run's metrics (the runner calls it at the end of every run).

    python3 tools/plot.py RUN_DIR            curves of RUN_DIR/metrics.jsonl, and of every sub-run
                                             (RUN_DIR/*/metrics.jsonl), into RUN_DIR/curves.png
    python3 tools/plot.py --sweep SWEEP_DIR  mean ± std per configuration from SWEEP_DIR/sweep.json
                                             into SWEEP_DIR/sweep.png
    python3 tools/plot.py --line LINE.csv    loss along a line (alpha,loss) into LINE.png
    python3 tools/plot.py --surface SURF.csv loss surface (alpha,beta,loss) into SURF.png (contours)

Rows of metrics.jsonl with an "epoch" are curves over epochs: a panel for the metrics ending in
"loss" and one for those containing "acc" (test solid, validation dashed, training dash-dot,
accuracy on flipped labels dotted); other columns (timings) are not drawn. Sub-runs with a "label"
field (e.g. "sgd seed 1") are drawn in one colour per label prefix (the part before " seed").
Needs python3-matplotlib (Debian); no other packages.
"""
import json
import os
import sys


def read_jsonl(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line torn by a killed run
    return rows


def curves(rows):
    """{metric: ([epochs], [values])} from rows that have an epoch."""
    out = {}
    for r in rows:
        if "epoch" not in r:
            continue
        for k, v in r.items():
            if k == "epoch" or isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            xs, ys = out.setdefault(k, ([], []))
            xs.append(r["epoch"])
            ys.append(v)
    return out


def panel_of(name):
    n = name.lower()
    if n.endswith("loss"):
        return "loss"
    if "acc" in n:
        return "accuracy"
    return None  # timings and the like are not plotted


def style_of(name):
    """Line style by split: test solid, validation dashed, training dash-dot, flipped labels dotted."""
    n = name.lower()
    if "flipped" in n and "unflipped" not in n:
        return ":"
    if n.startswith("test"):
        return "-"
    if n.startswith("val"):
        return "--"
    return "-."


def plot_run(run_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = []  # (label, curves)
    own = os.path.join(run_dir, "metrics.jsonl")
    if os.path.exists(own):
        runs.append((os.path.basename(os.path.normpath(run_dir)), curves(read_jsonl(own))))
    for sub in sorted(os.listdir(run_dir)):
        path = os.path.join(run_dir, sub, "metrics.jsonl")
        if os.path.isfile(path):
            rows = read_jsonl(path)
            label = next((r["label"] for r in rows if "label" in r), sub)
            runs.append((label, curves(rows)))
    runs = [(label, c) for label, c in runs if c]
    if not runs:
        sys.exit(f"plot.py: no metrics with an epoch under {run_dir}")
    panels = ["loss", "accuracy"]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.2))
    groups = sorted({label.split(" seed")[0] for label, _ in runs})
    colours = {g: f"C{i}" for i, g in enumerate(groups)}
    for ax, panel in zip(axes, panels):
        seen = set()
        for label, c in runs:
            group = label.split(" seed")[0]
            for name, (xs, ys) in sorted(c.items()):
                if panel_of(name) != panel:
                    continue
                legend = f"{group} {name}"
                ax.plot(xs, ys, style_of(name), color=colours[group], alpha=0.8,
                        label=None if legend in seen else legend)
                seen.add(legend)
        ax.set_xlabel("epoch")
        ax.set_ylabel(panel)
        ax.grid(alpha=0.3)
        if seen:
            ax.legend(fontsize=7)
    fig.suptitle(os.path.basename(os.path.normpath(run_dir)))
    fig.tight_layout()
    out = os.path.join(run_dir, "curves.png")
    fig.savefig(out, dpi=110)
    print(out)


def plot_sweep(sweep_dir):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import statistics

    with open(os.path.join(sweep_dir, "sweep.json")) as f:
        entries = json.load(f)
    metrics = sorted({k for e in entries for k, v in e.items() if isinstance(v, list) and v})
    if not metrics:
        sys.exit(f"plot.py: {sweep_dir}/sweep.json holds no results")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 4), squeeze=False)
    labels = [e["config"] for e in entries]
    for ax, m in zip(axes[0], metrics):
        means = [statistics.mean(e[m]) if e.get(m) else 0 for e in entries]
        stds = [statistics.stdev(e[m]) if len(e.get(m, [])) > 1 else 0 for e in entries]
        ax.bar(range(len(entries)), means, yerr=stds, capsize=4, color="C0", alpha=0.8)
        ax.set_xticks(range(len(entries)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=7)
        ax.set_title(m)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = os.path.join(sweep_dir, "sweep.png")
    fig.savefig(out, dpi=110)
    print(out)


def read_csv(path):
    with open(path) as f:
        header = f.readline().strip().split(",")
        rows = [[float(v) for v in line.strip().split(",")] for line in f if line.strip()]
    return header, rows


def plot_line(path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, rows = read_csv(path)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot([r[0] for r in rows], [r[1] for r in rows], "o-")
    ax.set_xlabel("alpha (0: first weights, 1: second)")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    out = os.path.splitext(path)[0] + ".png"
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)


def plot_surface(path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _, rows = read_csv(path)
    alphas = sorted({r[0] for r in rows})
    betas = sorted({r[1] for r in rows})
    z = {(r[0], r[1]): r[2] for r in rows}
    grid = [[z[(a, b)] for a in alphas] for b in betas]
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    cs = ax.contour(alphas, betas, grid, levels=20)
    ax.clabel(cs, fontsize=6)
    ax.plot([0], [0], "k+")
    ax.set_xlabel("direction 1 (filter-normalized)")
    ax.set_ylabel("direction 2 (filter-normalized)")
    out = os.path.splitext(path)[0] + ".png"
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(out)


def main(argv):
    if len(argv) == 3 and argv[1] == "--sweep":
        plot_sweep(argv[2])
    elif len(argv) == 3 and argv[1] == "--line":
        plot_line(argv[2])
    elif len(argv) == 3 and argv[1] == "--surface":
        plot_surface(argv[2])
    elif len(argv) == 2 and not argv[1].startswith("-"):
        plot_run(argv[1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
