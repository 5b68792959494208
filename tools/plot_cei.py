#!/usr/bin/env python3
"""Labelled bar chart of the CEI scores that `entprog cei` writes.

usage: plot_cei.py CEI.csv OUT.png

CEI.csv has the columns block,pi,rank (rank 1 = highest pi). The chart shows
pi(b) per block with the value and rank on each bar; the top-ranked half of
the blocks (ranks 1..ceil(L/2)) is orange, as in entprog's own cei.png.
"""
import csv
import math
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402


def read_scores(path):
    """(blocks, pis, ranks) from a cei.csv, checking its header and block numbering."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or set(rows[0]) != {"block", "pi", "rank"}:
        sys.exit(f"plot_cei.py: '{path}' is not a cei.csv (expected the columns block,pi,rank)")
    blocks = [int(r["block"]) for r in rows]
    if blocks != list(range(len(blocks))):
        sys.exit(f"plot_cei.py: '{path}': blocks should be 0..{len(blocks) - 1} in order")
    return blocks, [float(r["pi"]) for r in rows], [int(r["rank"]) for r in rows]


def plot(blocks, pis, ranks, out):
    L = len(blocks)
    top = [2 * r <= L + 1 for r in ranks]
    colours = ["#e66100" if t else "#5d87b5" for t in top]
    fig, ax = plt.subplots(figsize=(max(6.4, 0.35 * L + 2), 3.6), dpi=150)
    bars = ax.bar(blocks, pis, color=colours, width=0.7)
    ax.axhline(0, color="black", linewidth=0.8)
    span = (max(pis + [0]) - min(pis + [0])) or 1.0
    for bar, pi, rank in zip(bars, pis, ranks):
        up = pi >= 0
        y = pi + (0.02 if up else -0.02) * span
        ax.text(bar.get_x() + bar.get_width() / 2, y, f"{pi:.3g}\n#{rank}" if up else f"#{rank}\n{pi:.3g}",
                ha="center", va="bottom" if up else "top", fontsize=7)
    ax.set_ylim(min(pis + [0]) - 0.15 * span, max(pis + [0]) + 0.15 * span)
    ax.set_xticks(blocks)
    ax.set_xlabel("block b")
    ax.set_ylabel(r"$\pi(b)$ = mean log($\sigma_{skip(b)}$ / $\sigma_{full}$)")
    ax.set_title(f"CEI per block (orange: top {math.ceil(L / 2)} of {L}, unfrozen first; #rank)")
    fig.tight_layout()
    fig.savefig(out)


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: plot_cei.py CEI.csv OUT.png")
    plot(*read_scores(argv[1]), argv[2])


if __name__ == "__main__":
    main(sys.argv)
