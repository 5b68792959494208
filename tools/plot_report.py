#!/usr/bin/python3
"""Pictures for a report from entprog's metrics.csv files (and a cei.csv).

Each metrics.csv has the columns
  kind,step,loss,grad_norm,lr,ms_per_step,samples_per_s,peak_rss_mib,stage,m,mem_peak_mib,train_s
with kind train, search (Ent-Prog's search window) or val. Older files
without stage/m/train_s still plot: no stage boundaries, time from the summed
ms_per_step. Written to --out:

  loss_step.png   training loss (raw and smoothed), search and validation
                  losses against step; dashed lines where `stage` changes
  loss_time.png   the same against train_s (training seconds)
  m_stage.png     active block count m against step (train rows) with the
                  search candidates, and m* per stage
  cei.png         (with --cei) CEI score pi(b) per block, bars labelled with
                  the rank; the top half of the ranking highlighted

Example: tools/plot_report.py run/metrics.csv other/metrics.csv --labels entprog,full --cei run/cei.csv --out fig
"""
import argparse
import csv
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import MaxNLocator


def num(row, key, cast=float):
    v = row.get(key)
    if v is None or v == "":
        return None
    try:
        return cast(float(v)) if cast is int else cast(v)
    except ValueError:
        return None


def load_metrics(path):
    """Rows in file order as dicts of kind, step, loss, stage, m, t (training seconds)."""
    rows, t_sum = [], 0.0
    with open(path) as f:
        reader = csv.DictReader(f)
        missing = {"kind", "step", "loss"} - set(reader.fieldnames or [])
        if missing:
            sys.exit(f"{path}: not a metrics.csv (no column {', '.join(sorted(missing))})")
        for row in reader:
            ms = num(row, "ms_per_step")
            if row["kind"] in ("train", "search") and ms is not None:
                t_sum += ms / 1000.0
            t = num(row, "train_s")
            rows.append({"kind": row["kind"], "step": num(row, "step", int), "loss": num(row, "loss"),
                         "stage": num(row, "stage", int), "m": num(row, "m", int), "t": t if t is not None else t_sum})
    if not any(r["kind"] == "train" for r in rows):
        sys.exit(f"{path}: no training rows")
    return rows


def stage_starts(rows):
    """(step, train_s, stage, m*) of the first row of every stage after the first."""
    out, prev = [], None
    for i, r in enumerate(rows):
        if r["stage"] is None or r["kind"] == "val":
            continue
        if prev is not None and r["stage"] != prev:
            m = next((q["m"] for q in rows[i:] if q["kind"] == "train" and q["stage"] == r["stage"]), r["m"])
            out.append((r["step"], r["t"], r["stage"], m))
        prev = r["stage"]
    return out


def smooth(values, k):
    out, acc = [], None
    for v in values:
        acc = v if acc is None else k * acc + (1 - k) * v
        out.append(acc)
    return out


def plot_losses(runs, x_key, xlabel, path, args):
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for c, (label, rows) in enumerate(runs):
        col = f"C{c}"
        tr = [r for r in rows if r["kind"] == "train"]
        xs = [r[x_key] for r in tr]
        ls = [r["loss"] for r in tr]
        ax.plot(xs, ls, color=col, alpha=0.25, lw=0.7)
        ax.plot(xs, smooth(ls, args.smooth), color=col, lw=1.6, label=f"{label}: train (EMA {args.smooth})")
        se = [r for r in rows if r["kind"] == "search"]
        if se:
            ax.plot([r[x_key] for r in se], [r["loss"] for r in se], ".", ms=3, color=col, alpha=0.5,
                    label=f"{label}: search window")
        va = [r for r in rows if r["kind"] == "val"]
        if va:
            ax.plot([r[x_key] for r in va], [r["loss"] for r in va], "o-", ms=4, color=col, mec="k", mew=0.5,
                    label=f"{label}: validation")
        for step, t, stage, m in stage_starts(rows):
            x = step if x_key == "step" else t
            ax.axvline(x, color=col, ls="--", lw=0.8, alpha=0.7)
            ax.annotate(f"s{stage}" + (f" m={m}" if m is not None else ""), (x, 1), xycoords=("data", "axes fraction"),
                        xytext=(2, -10 - 10 * c), textcoords="offset points", fontsize=7, color=col)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("epsilon MSE")
    if args.logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=args.dpi)
    plt.close(fig)
    print(f"wrote {path}")


def plot_m(runs, path, args):
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [2, 1]})
    nstages = 0
    for c, (label, rows) in enumerate(runs):
        col = f"C{c}"
        tr = [r for r in rows if r["kind"] == "train" and r["m"] is not None]
        if not tr:
            continue
        ax.step([r["step"] for r in tr], [r["m"] for r in tr], where="post", color=col, label=f"{label}: m (training)")
        se = [r for r in rows if r["kind"] == "search" and r["m"] is not None]
        if se:
            ax.plot([r["step"] for r in se], [r["m"] for r in se], "x", ms=4, color=col, alpha=0.6,
                    label=f"{label}: search candidates")
        per_stage = {}
        for r in tr:
            if r["stage"] is not None:
                per_stage.setdefault(r["stage"], r["m"])
        stages = sorted(per_stage)
        nstages = max(nstages, len(stages))
        width = 0.8 / len(runs)
        bx.bar([s + (c - (len(runs) - 1) / 2) * width for s in stages], [per_stage[s] for s in stages], width,
               color=col, label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("active blocks m")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    bx.set_xlabel("stage")
    bx.set_ylabel("m* (blocks trained)")
    bx.set_xticks(range(nstages))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    bx.yaxis.set_major_locator(MaxNLocator(integer=True))
    bx.grid(alpha=0.3, axis="y")
    bx.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=args.dpi)
    plt.close(fig)
    print(f"wrote {path}")


def plot_cei(cei_path, path, args):
    blocks, pi, rank = [], [], []
    with open(cei_path) as f:
        reader = csv.DictReader(f)
        if not {"block", "pi", "rank"} <= set(reader.fieldnames or []):
            sys.exit(f"{cei_path}: not a cei.csv (columns block,pi,rank)")
        for row in reader:
            blocks.append(int(row["block"]))
            pi.append(float(row["pi"]))
            rank.append(int(row["rank"]))
    if not blocks:
        sys.exit(f"{cei_path}: no blocks")
    L = len(blocks)
    top = [2 * r <= L + 1 for r in rank]
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * L + 2), 4))
    bars = ax.bar(blocks, pi, color=["C1" if t else "C0" for t in top])
    for b, r in zip(bars, rank):
        h = b.get_height()
        ax.annotate(str(r), (b.get_x() + b.get_width() / 2, h), ha="center", va="bottom" if h >= 0 else "top",
                    fontsize=7, xytext=(0, 2 if h >= 0 else -2), textcoords="offset points")
    ax.axhline(0, color="k", lw=0.8)
    ax.set_xlabel("block b")
    ax.set_ylabel("CEI score pi(b)")
    ax.set_title(f"{os.path.basename(cei_path)}: numbers are ranks; orange = top half (unfrozen first)", fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=args.dpi)
    plt.close(fig)
    print(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("metrics", nargs="*", help="metrics.csv files (one curve each)")
    ap.add_argument("--labels", help="comma-separated names of the runs (default: the folders)")
    ap.add_argument("--cei", help="a cei.csv (block,pi,rank) to draw as a bar chart")
    ap.add_argument("--out", default=".", help="folder for the pictures (created; default .)")
    ap.add_argument("--smooth", type=float, default=0.9, help="EMA factor of the smoothed training loss (0 = none)")
    ap.add_argument("--logy", action="store_true", help="logarithmic loss axis")
    ap.add_argument("--dpi", type=int, default=110)
    args = ap.parse_args()
    if not args.metrics and not args.cei:
        ap.error("give at least one metrics.csv or --cei")
    if not 0 <= args.smooth < 1:
        ap.error("--smooth must be in [0, 1)")
    labels = args.labels.split(",") if args.labels else [os.path.basename(os.path.dirname(os.path.abspath(p))) or p
                                                         for p in args.metrics]
    if len(labels) != len(args.metrics):
        ap.error(f"--labels names {len(labels)} runs but {len(args.metrics)} metrics files were given")
    for p in args.metrics + ([args.cei] if args.cei else []):
        if not os.path.isfile(p):
            ap.error(f"no such file: {p}")
    os.makedirs(args.out, exist_ok=True)
    runs = [(lab, load_metrics(p)) for lab, p in zip(labels, args.metrics)]
    if runs:
        plot_losses(runs, "step", "step", os.path.join(args.out, "loss_step.png"), args)
        plot_losses(runs, "t", "training time (s)", os.path.join(args.out, "loss_time.png"), args)
        if any(r["m"] is not None for _, rows in runs for r in rows):
            plot_m(runs, os.path.join(args.out, "m_stage.png"), args)
        else:
            print("no m column: m_stage.png skipped")
    if args.cei:
        plot_cei(args.cei, os.path.join(args.out, "cei.png"), args)


if __name__ == "__main__":
    main()
