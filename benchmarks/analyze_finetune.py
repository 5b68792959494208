#!/usr/bin/python3
"""Reads the fine-tuning runs of benchmarks/finetune_compare.sh and writes
finetune_compare.md and its pictures. Time is each run's training wall time
(metrics.csv column train_s: steps, search steps and probe evaluations;
validation and checkpoint writing excluded). Memory is the allocator's peak
(parameters, gradients, optimizer moments, activations, scratch, batches) and
the process's peak resident set.
usage: analyze_finetune.py WORKDIR RESULTS_DIR COMMAND"""
import csv
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

work, out, command = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)


def load(name):
    path = os.path.join(work, f"ft-{name}", "metrics.csv")
    if not os.path.exists(path):
        return None
    val, stages, mem, mem_all, rss, last_stage, train_s, steps = [], [], 0.0, 0.0, 0.0, None, 0.0, 0
    with open(path) as f:
        for r in csv.DictReader(f):
            t = float(r["train_s"])
            if r["kind"] == "val":
                val.append((int(r["step"]), float(r["loss"]), t))
                continue
            steps = max(steps, int(r["step"]))
            mem_all = max(mem_all, float(r["mem_peak_mib"]))
            if r["kind"] == "train":  # outside search windows
                mem = max(mem, float(r["mem_peak_mib"]))
            rss = max(rss, float(r["peak_rss_mib"]))
            train_s = max(train_s, t)
            if r["stage"] != last_stage:
                stages.append((int(r["stage"]), int(r["step"]), t, int(r["m"])))
                last_stage = r["stage"]
    # the decided schedule: /schedule/stages of the last checkpoint (stage, first step, m*, (m, CE) pairs)
    ckpts = sorted(c for c in os.listdir(os.path.dirname(path)) if c.startswith("ckpt_") and c.endswith(".h5"))
    decided = []
    if ckpts:
        with h5py.File(os.path.join(os.path.dirname(path), ckpts[-1]), "r") as h:
            if "schedule/stages" in h:
                decided = [(int(r[0]), int(r[1]), int(r[2])) for r in h["schedule/stages"][()]]
    return dict(name=name, val=val, stages=stages, decided=decided, mem=mem, mem_all=mem_all, rss=rss,
                train_s=train_s, steps=steps)


def time_to(run, target, smooth=False):
    for _, loss, t in (smoothed(run) if smooth else run["val"]):
        if loss <= target:
            return t
    return None


def smoothed(run, k=4):
    """Running mean over the last k validations (100 steps): single validations of
    32 clips scatter by about +-10%, more than the methods differ."""
    v = run["val"]
    return [(v[i][0], sum(l for _, l, _ in v[max(0, i - k + 1):i + 1]) / (i + 1 - max(0, i - k + 1)), v[i][2])
            for i in range(len(v))]


runs = {n: load(n) for n in ["full_1", "entprog_1", "full_2", "entprog_2", "linear", "random", "depth", "top2",
                             "bottom2"]}
runs = {k: v for k, v in runs.items() if v and v["val"]}
lines = ["# Ent-Prog vs full fine-tuning (`small`, CPU)", "",
         f"Command: `{command}` (all numbers below come from its runs; rerun it to refresh them).", "",
         "Setup: `inputs/small_pretrain.ini` image pre-training (F = 1, 1500 steps, from scratch), then video "
         "fine-tuning with `inputs/small_finetune.ini` (F = 8, AdamW lr 1e-4 constant, batch 4, 600 steps for every "
         "method, validation on 32 fixed clips every 25 steps). Ent-Prog: K = 4 stages, grid {2, 3, 5, 6}, supernet "
         "search of 30 steps per stage over up to 3 candidates, CE with measured wall time, CEI from 256 probe "
         "tuples computed once on the pretrained model.", "",
         "Time = training wall time (steps + search + probe evaluations; validation excluded). Memory = the "
         "allocator's peak of parameters, gradients, moments, activations and scratch (the paper's \"GPU memory\" "
         "counterpart) while training, outside the search windows; the search windows' own peak (memory for the largest "
         "candidate) is listed separately.", ""]
cei_wall = os.path.join(work, "cei", "wall_s")
if os.path.exists(cei_wall):
    lines += [f"CEI itself (L + 1 = 7 forward passes over 256 tuples) took {open(cei_wall).read().strip()} s once; "
              "it is not in the fine-tuning times below.", ""]

lines += ["## Full fine-tuning vs Ent-Prog, twice each", "",
          "| pair | full: best val | full: time to it (s) | Ent-Prog: time to it (s) | speed-up | full peak MiB | "
          "Ent-Prog peak MiB | memory ratio | final val full / Ent-Prog | total time full / Ent-Prog (s) |",
          "|---|---|---|---|---|---|---|---|---|---|"]
for rep in (1, 2):
    f, e = runs.get(f"full_{rep}"), runs.get(f"entprog_{rep}")
    if not f or not e:
        continue
    target = min(l for _, l, _ in f["val"])
    tf, te = time_to(f, target), time_to(e, target)
    reached, speed = (f"{te:.1f}", f"{tf / te:.2f}x") if te else ("not reached", "-")
    lines.append(f"| {rep} | {target:.5f} | {tf:.1f} | {reached} | {speed} | {f['mem']:.1f} | {e['mem']:.1f} | "
                 f"{f['mem'] / e['mem']:.2f}x | {f['val'][-1][1]:.5f} / {e['val'][-1][1]:.5f} | "
                 f"{f['train_s']:.0f} / {e['train_s']:.0f} |")
lines += ["", "The same comparison on the running mean of 4 validations (100 steps), which removes most of the "
          "scatter of single validations:", "",
          "| pair | full: best smoothed val | full: time to it (s) | Ent-Prog: time to it (s) | speed-up |",
          "|---|---|---|---|---|"]
for rep in (1, 2):
    f, e = runs.get(f"full_{rep}"), runs.get(f"entprog_{rep}")
    if not f or not e:
        continue
    target = min(l for _, l, _ in smoothed(f))
    tf, te = time_to(f, target, True), time_to(e, target, True)
    lines.append(f"| {rep} | {target:.5f} | {tf:.1f} | {f'{te:.1f}' if te else 'not reached'} | "
                 f"{f'{tf / te:.2f}x' if te else '-'} |")
lines.append("")
for rep in (1, 2):
    e = runs.get(f"entprog_{rep}")
    if e:
        sched = ", ".join(f"stage {s + 1} from step {st}: m* = {m}" for s, st, m in e["decided"])
        lines.append(f"- Ent-Prog run {rep}: {sched}; peak during search windows {e['mem_all']:.1f} MiB")
lines.append("")

# ablations, against full run 1's best
f1 = runs.get("full_1")
if f1:
    target = min(l for _, l, _ in f1["val"])
    lines += ["## Ablations (seed 1; target = full run 1's best validation loss "
              f"{target:.5f})", "",
              "| method | time to target (s) | speed-up vs full | time to smoothed target (s) | speed-up (smoothed) | "
              "peak MiB | final val | total time (s) |",
              "|---|---|---|---|---|---|---|---|"]
    tf = time_to(f1, target)
    starget = min(l for _, l, _ in smoothed(f1))
    tfs = time_to(f1, starget, True)
    for name, label in [("full_1", "full fine-tuning"), ("entprog_1", "Ent-Prog"),
                        ("linear", "linear schedule (w/o Ada.)"), ("random", "random order (w/o CEI)"),
                        ("depth", "depth order, deepest first (w/o CEI)"), ("top2", "static top-2 CEI blocks"),
                        ("bottom2", "static bottom-2 CEI blocks")]:
        r = runs.get(name)
        if not r:
            continue
        t, ts = time_to(r, target), time_to(r, starget, True)
        lines.append(f"| {label} | {f'{t:.1f}' if t else 'not reached'} | {f'{tf / t:.2f}x' if t else '-'} | "
                     f"{f'{ts:.1f}' if ts else 'not reached'} | {f'{tfs / ts:.2f}x' if ts else '-'} | "
                     f"{r['mem']:.1f} | {r['val'][-1][1]:.5f} | {r['train_s']:.0f} |")
    lines.append("")

# pictures
fig, ax = plt.subplots(figsize=(9, 5))
for name, style in [("full_1", "C0-"), ("full_2", "C0--"), ("entprog_1", "C3-"), ("entprog_2", "C3--")]:
    r = runs.get(name)
    if r:
        ax.plot([t for _, _, t in r["val"]], [l for _, l, _ in r["val"]], style, label=name, marker=".")
for name, style in [("entprog_1", "C3"), ("entprog_2", "C3")]:
    r = runs.get(name)
    if r:
        for s, st, t, m in r["stages"][1:]:
            ax.axvline(t, color=style, alpha=0.25, ls=":")
ax.set_xlabel("training wall time (s)")
ax.set_ylabel("validation epsilon-MSE")
ax.set_title("full fine-tuning vs Ent-Prog (dotted: Ent-Prog stage starts)")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(out, "finetune_compare.png"), dpi=110)

fig, ax = plt.subplots(figsize=(9, 5))
for name, c in [("full_1", "C0"), ("entprog_1", "C3"), ("linear", "C1"), ("random", "C2"), ("depth", "C4"),
                ("top2", "C5"), ("bottom2", "C7")]:
    r = runs.get(name)
    if r:
        ax.plot([t for _, _, t in r["val"]], [l for _, l, _ in r["val"]], color=c, label=name, marker=".")
ax.set_xlabel("training wall time (s)")
ax.set_ylabel("validation epsilon-MSE")
ax.set_title("ablations and the CEI check (top-2 vs bottom-2 blocks only)")
ax.grid(alpha=0.3)
ax.legend()
fig.tight_layout()
fig.savefig(os.path.join(out, "finetune_ablations.png"), dpi=110)
lines += ["![full vs Ent-Prog](finetune_compare.png)", "", "![ablations](finetune_ablations.png)", ""]
with open(os.path.join(out, "finetune_compare.md"), "w") as f:
    f.write("\n".join(lines))
print("\n".join(lines))
