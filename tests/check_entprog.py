#!/usr/bin/python3
"""End-to-end checks of Ent-Prog fine-tuning on the tiny deck: frozen blocks
stay bit-identical and own no optimizer moments, the schedule only grows,
every method runs and trains the blocks of its own order, each stage's
memory peak is what the stage holds, CE(m) and its standard error recomputed
from the logged probe losses and an independent cost model equal the
recorded ones, an epoch-long window by default, and resuming in the middle of
a stage or of a supernet search window continues bit for bit (timing = cost
makes the search itself deterministic). Usage: check_entprog.py ENTPROG DECK WORKDIR"""
import csv
import math
import os
import re
import shutil
import sys

import h5py
import numpy as np
from e2e import Harness

ENTPROG, DECK, WORK = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
H = Harness(ENTPROG, WORK)
run, check = H.run, H.check


def rows(path, kinds=("train", "search")):
    with open(path) as f:
        return [l.split(",")[:3] for l in f.read().splitlines()[1:] if l.split(",")[0] in kinds]


def group(path, g):
    with h5py.File(path, "r") as f:
        if g not in f:
            return {}
        return {k: f[g][k][()] for k in f[g] if isinstance(f[g][k], h5py.Dataset)}


S = lambda kv: ["--set", kv]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
run("datagen", DECK)
run("train", DECK, *S("train.out_dir=pre"), *S("train.steps=30"), *S("train.val_every=0"))
PRE = "pre/ckpt_00000030.h5"
FT = [*S(f"train.init={PRE}"), *S("train.steps=60"), *S("entprog.search_steps=6"), *S("entprog.cei_n=8"),
      *S("entprog.timing=cost"), *S("train.val_every=0"), *S("train.log_every=100"), *S("entprog.probe_batches=1")]

# 1. static top-1: the two frozen blocks and the input side never change, and own no moments
run("train", DECK, *FT, *S("train.out_dir=static"), *S("entprog.method=static"), *S("entprog.static_m=1"),
    *S("train.ckpt_every=0"))
pre, post = group(f"{WORK}/{PRE}", "model"), group(f"{WORK}/static/ckpt_00000060.h5", "model")
with h5py.File(f"{WORK}/static/ckpt_00000060.h5", "r") as f:
    top = int(f["schedule/order"][0])
    moments = set(f["optimizer/m"].keys())
frozen = [k for k in pre if k.startswith("blocks.") and int(k.split(".")[1]) != top]
inputs = [k for k in pre if k.split(".")[0] in ("t_embed", "x_embed", "pose_guider")]
check(all(np.array_equal(pre[k], post[k]) for k in frozen + inputs),
      f"{len(frozen)} frozen block tensors and {len(inputs)} input-side tensors bit-identical after 60 steps")
trained = [k for k in pre if k.startswith(f"blocks.{top}.") and not k.endswith("attn_s.qkv.bias")]
check(all(not np.array_equal(pre[k], post[k]) for k in trained), f"the {len(trained)} tensors of block {top} changed")
check(not any(k in moments for k in frozen + inputs) and all(k in moments for k in trained),
      "optimizer moments exist only for the trained block and the output layer")

def metrics(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def stage_memory(name, out):
    """Each stage's allocator peak (mem_peak_mib of its train rows) is the memory the stage holds, as printed
    when it began ("memory now"): the refit into it is in neither (stages.c resets the peak after every refit)."""
    now = {int(k) - 1: float(v) for k, v in re.findall(r"^stage (\d+)/\d+ \(steps.*memory now ([\d.]+) MiB", out, re.M)}
    peak = {}
    for r in metrics(f"{WORK}/{name}/metrics.csv"):
        if r["kind"] == "train" and r["stage"] and int(r["stage"]) in now:
            peak[int(r["stage"])] = max(peak.get(int(r["stage"]), 0), float(r["mem_peak_mib"]))
    ok = len(now) >= 1 and set(peak) == set(now) and all(abs(peak[k] - now[k]) < 0.06 for k in now)
    check(ok, f"{name}: each stage's peak is the memory it holds (peaks {peak}, held {now})")


def moment_blocks(path):
    with h5py.File(path, "r") as f:
        return sorted({int(k.split(".")[1]) for k in f["optimizer/m"].keys() if k.startswith("blocks.")})


# 2. every method runs; the schedule grows and its rows are well formed
outs = {}
for method in ("entprog", "linear", "random", "depth", "temporal", "full"):
    outs[method] = run("train", DECK, *FT, *S(f"train.out_dir={method}"), *S(f"entprog.method={method}"),
                       *S("train.ckpt_every=0")).stdout
    with h5py.File(f"{WORK}/{method}/ckpt_00000060.h5", "r") as f:
        st = f["schedule/stages"][()] if "schedule/stages" in f else np.zeros((0, 3))
    ms = [int(r[2]) for r in st]
    check(len(ms) >= 1 and all(a <= b for a, b in zip(ms, ms[1:])), f"{method}: m per stage never shrinks: {ms}")
for method in ("entprog", "random", "depth"):
    with h5py.File(f"{WORK}/{method}/ckpt_00000060.h5", "r") as f:
        st = f["schedule/stages"][()]
    searched = [r for r in st if not np.isnan(r[4])]
    ok = all(int(r[2]) == int(r[3 + 2 * int(np.nanargmax(r[4::2]))]) for r in searched)
    check(len(searched) >= 1 and ok, f"{method}: each searched stage kept the candidate with the highest CE")
with h5py.File(f"{WORK}/temporal/ckpt_00000060.h5", "r") as f:
    keys = list(f["optimizer/m"].keys())
    ada = [k for k in keys if k.startswith("blocks.") and ".ada." in k]
    outside = [k for k in ada if f["optimizer/m"][k][: f["optimizer/m"][k].shape[0] // 9 * 3].any()
               or f["optimizer/m"][k][f["optimizer/m"][k].shape[0] // 9 * 6:].any()]
    check(all("attn_t" in k or k in ada for k in keys) and ada and not outside,
          f"temporal: only attn_t and the temporal rows of ada train ({len(keys)} tensors with moments, "
          f"non-zero moments outside the temporal rows: {outside})")
for method in ("linear", "entprog"):
    stage_memory(method, outs[method])

# 2b. each method trains the blocks of its own order: depth deepest first, random its seeded permutation, reverse
# the CEI ranking backwards, and neither random nor depth takes the CEI ranking of a start checkpoint that holds one
L = 3
orders = {}
for method in ("entprog", "random", "depth"):
    with h5py.File(f"{WORK}/{method}/ckpt_00000060.h5", "r") as f:
        orders[method] = [int(b) for b in f["schedule/train_order"][()]]
        m_last = int(f["schedule/stages"][()][-1][2])
    check(moment_blocks(f"{WORK}/{method}/ckpt_00000060.h5") == sorted(orders[method][:m_last]),
          f"{method}: the blocks with moments are the first {m_last} of its order {orders[method]}")
with h5py.File(f"{WORK}/entprog/ckpt_00000060.h5", "r") as f:
    cei_order = [int(b) for b in f["schedule/order"][()]]
check(orders["entprog"] == cei_order, f"entprog: trains in the CEI order {cei_order}")
check(orders["depth"] == [2, 1, 0], f"depth: deepest first {orders['depth']}")
check(sorted(orders["random"]) == [0, 1, 2], f"random: a permutation {orders['random']}")
for method in ("random", "depth"):  # from a start checkpoint with a CEI ranking
    run("train", DECK, *FT, *S("train.init=entprog/ckpt_00000060.h5"), *S(f"train.out_dir={method}_ranked"),
        *S(f"entprog.method={method}"), *S("train.ckpt_every=0"))
    with h5py.File(f"{WORK}/{method}_ranked/ckpt_00000060.h5", "r") as f:
        own = [int(b) for b in f["schedule/train_order"][()]]
        m_last = int(f["schedule/stages"][()][-1][2])
    check(own == orders[method] and moment_blocks(f"{WORK}/{method}_ranked/ckpt_00000060.h5") == sorted(own[:m_last]),
          f"{method}: started from a checkpoint ranked {cei_order}, it still trains its own order {own}")
run("train", DECK, *FT, *S("train.out_dir=bottom"), *S("entprog.method=static"), *S("entprog.static_m=1"),
    *S("entprog.reverse=1"), *S("train.ckpt_every=0"))
with h5py.File(f"{WORK}/bottom/ckpt_00000060.h5", "r") as f:
    rev = [int(b) for b in f["schedule/train_order"][()]]
check(rev == cei_order[::-1] and moment_blocks(f"{WORK}/bottom/ckpt_00000060.h5") == [cei_order[-1]],
      f"reverse = 1: the CEI ranking backwards {rev}, only the bottom block {cei_order[-1]} trains")


# 2c. CE(m) recomputed from the log alone: the probe rows (the probe loss at a window's start, then after each of
# its steps with the step's candidate and cost) and a cost model written here from the order (timing = cost: L
# forwards + backward to the earliest trainable block + one weight-gradient pass per trainable block)
def recompute_ce(name):
    with h5py.File(f"{WORK}/{name}/ckpt_00000060.h5", "r") as f:
        order = [int(b) for b in f["schedule/train_order"][()]]
        st, se = f["schedule/stages"][()], f["schedule/stages_se"][()]
    windows, prev = [], None
    for r in metrics(f"{WORK}/{name}/metrics.csv"):
        if r["kind"] != "probe":
            continue
        if not r["m"]:
            windows.append({})
        else:
            m, cost = int(r["m"]), float(r["cost"])
            model = L + (L - min(order[:m])) + m
            if cost != model:
                return False, f"step {r['step']}: cost {cost} but the model gives {model} for m = {m}"
            windows[-1].setdefault(m, []).append((prev - float(r["loss"]), cost))
        prev = float(r["loss"])
    searched = [(i, row) for i, row in enumerate(st) if not math.isnan(row[4])]
    if len(searched) != len(windows) or not windows:
        return False, f"{len(windows)} windows in the log, {len(searched)} searched stages"
    worst = 0.0
    for (i, row), w in zip(searched, windows):
        for c in range(8):
            if math.isnan(row[3 + 2 * c]):
                break
            steps = w.get(int(row[3 + 2 * c]), [])
            d, k = sum(x for x, _ in steps), sum(y for _, y in steps)
            ce = d / k if steps else -math.inf
            n = len(steps)
            sd = math.sqrt(n / (n - 1) * sum((x - ce * y) ** 2 for x, y in steps)) / k if n >= 2 else math.nan
            if ce != row[4 + 2 * c] and abs(ce - row[4 + 2 * c]) > 1e-12 * max(1, abs(ce)):
                return False, f"stage {int(row[0])}, m = {int(row[3 + 2 * c])}: CE {ce} from the log, {row[4 + 2 * c]} recorded"
            if not (math.isnan(sd) and math.isnan(se[i][c])) and not abs(sd - se[i][c]) <= 1e-9 * max(abs(sd), 1e-12):
                return False, f"stage {int(row[0])}, m = {int(row[3 + 2 * c])}: SE {sd} from the log, {se[i][c]} recorded"
            worst = max(worst, abs(ce - row[4 + 2 * c]) if steps else 0)
        best = max((row[4 + 2 * c], -c, int(row[3 + 2 * c])) for c in range(8) if not math.isnan(row[3 + 2 * c]))
        if int(row[2]) != best[2]:  # ties to the smaller m
            return False, f"stage {int(row[0])}: m* = {int(row[2])} is not the argmax of CE ({best[2]})"
    return True, f"{len(windows)} windows, largest difference {worst:.1e}"


ok, what = recompute_ce("entprog")
check(ok, f"entprog: CE(m) and its standard error recomputed from the probe rows and the cost model: {what}")


def unseparated(name):
    """Stages whose best two CEs differ by less than the larger of their SEs, from the checkpoint."""
    with h5py.File(f"{WORK}/{name}/ckpt_00000060.h5", "r") as f:
        st, se = f["schedule/stages"][()], f["schedule/stages_se"][()]
    out = []
    for i, row in enumerate(st):
        c = [(row[4 + 2 * j], -j, se[i][j]) for j in range(8) if not math.isnan(row[3 + 2 * j])]
        if len(c) < 2 or math.isnan(row[4]):
            continue
        (a, _, sa), (b, _, sb) = sorted(c, reverse=True)[:2]
        if a - b < max(sa, sb):
            out.append(int(row[0]) + 1)
    return out


for name in ("entprog", "random", "depth"):
    want = unseparated(name)
    said = [int(k) for k in re.findall(r"^stage (\d+): note: CE\(", outs[name], re.M)]
    check(said == want, f"{name}: the log notes exactly the stages whose best two CEs are within one SE ({said}, "
                        f"from the checkpoint {want})")

# 2d. the defaults: a window of one epoch (4 training videos left after the 4 held out for the probe, 2 clips per
# step: 2 steps), m drawn i.i.d. uniformly
EPOCH = [a for i, a in enumerate(FT) if "entprog.search_steps=6" not in FT[i:i + 2]]  # the default window
run("train", DECK, *EPOCH, *S("train.out_dir=epoch"),
    *S("entprog.method=entprog"), *S("train.ckpt_every=0"))
per_stage = {}
for r in metrics(f"{WORK}/epoch/metrics.csv"):
    if r["kind"] == "search":
        per_stage[r["stage"]] = per_stage.get(r["stage"], 0) + 1
check(per_stage and all(v == 2 for v in per_stage.values()), f"default window: one epoch = 2 steps per search {per_stage}")
ok, what = recompute_ce("epoch")
check(ok, f"epoch: CE(m) recomputed from the log: {what}")

# 3. resume bit-exactly: in the middle of a supernet window (step 17; 4 stages of 15 steps, windows of 6 steps
# from 0, 15 and 30 while more than one candidate is left) and of a stage (step 51); a trials search (steps
# 15..20 for each candidate) writes the periodic checkpoint that fell due inside it at its end (step 21): there
# is one model state again
def same_run(search, a, b, at, what, se=True):
    ra, rb = rows(f"{WORK}/{a}/metrics.csv"), rows(f"{WORK}/{b}/metrics.csv")
    tail = [r for r in ra if int(r[1]) > at]
    check(tail == rb[-len(tail):] and len(rb) > 0, f"{search}: {what}, the loss curve continues bit for bit")
    fa, fb = f"{WORK}/{a}/ckpt_00000060.h5", f"{WORK}/{b}/ckpt_00000060.h5"
    same = all(np.array_equal(x, y) for x, y in zip(group(fa, "model").values(), group(fb, "model").values()))
    same &= all(np.array_equal(x, y) for x, y in zip(group(fa, "optimizer/m").values(), group(fb, "optimizer/m").values()))
    sa, sb = group(fa, "schedule"), group(fb, "schedule")
    se_ok = se is False or np.array_equal(sa["stages_se"], sb["stages_se"], equal_nan=True)
    check(same and np.array_equal(sa["stages"], sb["stages"], equal_nan=True) and se_ok,
          f"{search}: {what}, final weights, moments and schedule (with CE's standard errors) identical")


for search in ("supernet", "trials"):
    base = [*FT, *S("entprog.method=entprog"), *S(f"entprog.search={search}"), *S("train.ckpt_every=17"),
            *S("train.keep_ckpts=0")]
    out_a = run("train", DECK, *base, *S(f"train.out_dir={search}_a")).stdout
    if search == "trials":  # the snapshots are gone when the stage's peak starts counting
        stage_memory("trials_a", out_a)
    for at in ((17, 51) if search == "supernet" else (21, 51)):
        ck = f"{search}_a/ckpt_{at:08d}.h5"
        check(os.path.exists(f"{WORK}/{ck}"), f"{search}: checkpoint at step {at} exists")
        if not os.path.exists(f"{WORK}/{ck}"):
            continue
        out = f"{search}_r{at}"
        run("train", DECK, *base, "--resume", ck, *S(f"train.out_dir={out}"))
        same_run(search, f"{search}_a", out, at, f"resumed at step {at}")

# 3b. a signal inside a trials search (the loop drives it step by step): the run stops with the checkpoint of
# the state the search began from; resuming reruns the search and ends exactly as the uninterrupted run. The
# signal comes from ENTPROG_FAULT_SIGNAL_AT (loop iteration = row of metrics.csv on one rank): the 4th step of the
# last search of trials_a
with open(f"{WORK}/trials_a/metrics.csv") as f:
    kinds = [l.split(",")[:2] for l in f.read().splitlines()[1:] if l.split(",")[0] in ("train", "search")]
last = max(i for i, k in enumerate(kinds) if k[0] == "search" and (i == 0 or kinds[i - 1][0] != "search"))
tr = [*FT, *S("entprog.method=entprog"), *S("entprog.search=trials"), *S("train.ckpt_every=17"), *S("train.keep_ckpts=0")]
out = H.run("train", DECK, *tr, *S("train.out_dir=trials_sig"), env={"ENTPROG_FAULT_SIGNAL_AT": str(last + 3)}).stdout
began = int(kinds[last][1]) - 1
ck = f"trials_sig/ckpt_{began:08d}.h5"
check("inside a trials search: stopped at step %d" % began in out and os.path.exists(f"{WORK}/{ck}"),
      f"trials: SIGUSR1 inside the search (loop iteration {last + 3}) stops at its first step {began} with a checkpoint")
if os.path.exists(f"{WORK}/{ck}"):
    run("train", DECK, *tr, "--resume", ck, *S("train.out_dir=trials_sig2"))
    same_run("trials", "trials_a", "trials_sig2", began, f"stopped inside the search and resumed at step {began}")

# 3c. the progress record of the previous checkpoint form (/schedule/progress, one positional vector) still
# loads: a checkpoint in the middle of a supernet window, rewritten in that form, resumes like the original
with h5py.File(f"{WORK}/supernet_a/ckpt_00000017.h5", "r") as f:
    st = {k: np.asarray(f["schedule/state"][k][()]).ravel() for k in f["schedule/state"]}
check(st["searching"][0] == 1, "supernet: the step-17 checkpoint is inside a search window")
shutil.copy(f"{WORK}/supernet_a/ckpt_00000017.h5", f"{WORK}/old_form.h5")
with h5py.File(f"{WORK}/old_form.h5", "a") as f:
    v = np.zeros((1, 40))
    for i, k in enumerate(["stage", "m", "searching", "search_end", "n_cand", "probe_last", "train_s"]):
        v[0, i] = st[k][0]
    for j, k in enumerate(["cand", "drop", "cost", "count"]):
        v[0, 8 + j::4] = st[k]
    del f["schedule/state"]
    f["schedule/progress"] = v
base = [*FT, *S("entprog.method=entprog"), *S("entprog.search=supernet"), *S("train.ckpt_every=17"),
        *S("train.keep_ckpts=0")]
run("train", DECK, *base, "--resume", "old_form.h5", *S("train.out_dir=old_form_r"))
same_run("supernet", "supernet_a", "old_form_r", 17, "resumed from the previous checkpoint form at step 17", se=False)
with h5py.File(f"{WORK}/old_form_r/ckpt_00000060.h5", "r") as f:
    lost = f["schedule/stages_se"][()]
check(np.isnan(lost[1][:2]).all(), "the window resumed from the previous form reports no SE (its sums were not stored)")

H.finish("entprog")
