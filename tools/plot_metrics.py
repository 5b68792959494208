#!/usr/bin/python3
"""Plots an entprog metrics.csv: training loss (raw and smoothed) and validation
loss against step and against wall time. Usage: plot_metrics.py METRICS.csv OUT.png"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def load(path):
    train, val = [], []
    with open(path) as f:
        for row in csv.DictReader(f):
            step, loss = int(row["step"]), float(row["loss"])
            if row["kind"] == "train":
                train.append((step, loss, float(row["ms_per_step"])))
            else:
                val.append((step, loss))
    return train, val


def smooth(values, k=0.9):
    out, acc = [], None
    for i, v in enumerate(values):
        acc = v if acc is None else k * acc + (1 - k) * v
        out.append(acc / 1.0)
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: plot_metrics.py METRICS.csv OUT.png")
    train, val = load(sys.argv[1])
    if not train:
        sys.exit(f"{sys.argv[1]}: no training rows")
    steps = [s for s, _, _ in train]
    losses = [l for _, l, _ in train]
    wall, t = [], 0.0
    for _, _, ms in train:
        t += ms / 1000.0
        wall.append(t)
    step_time = dict(zip(steps, wall))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, xs, label in ((axes[0], steps, "step"), (axes[1], wall, "training time (s)")):
        ax.plot(xs, losses, color="0.8", lw=0.8, label="train (per step)")
        ax.plot(xs, smooth(losses), color="C0", label="train (EMA 0.9)")
        if val:
            vx = [s if label == "step" else step_time.get(s, float("nan")) for s, _ in val]
            ax.plot(vx, [v for _, v in val], "o-", color="C3", label="validation")
        ax.set_xlabel(label)
        ax.set_ylabel("epsilon MSE")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(sys.argv[1])
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)
    print(f"wrote {sys.argv[2]}")


if __name__ == "__main__":
    main()
