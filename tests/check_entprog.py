#!/usr/bin/python3
"""End-to-end checks of Ent-Prog fine-tuning on the tiny deck: frozen blocks
stay bit-identical and own no optimizer moments, the schedule only grows,
every method runs, and resuming in the middle of a stage or of a supernet
search window continues bit for bit (timing = cost makes the search itself
deterministic). Usage: check_entprog.py ENTPROG DECK WORKDIR"""
import os
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
        return {k: f[g][k][()] for k in f[g]}


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

# 2. every method runs; the schedule grows and its rows are well formed
for method in ("entprog", "linear", "random", "depth", "temporal", "full"):
    run("train", DECK, *FT, *S(f"train.out_dir={method}"), *S(f"entprog.method={method}"), *S("train.ckpt_every=0"))
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
    check(all("attn_t" in k for k in f["optimizer/m"].keys()), "temporal: only attn_t tensors train")

# 3. resume bit-exactly: in the middle of a supernet window (step 23, window 20..25) and of a stage (step 46)
for search in ("supernet", "trials"):
    base = [*FT, *S("entprog.method=entprog"), *S(f"entprog.search={search}"), *S("train.ckpt_every=23"),
            *S("train.keep_ckpts=0")]
    run("train", DECK, *base, *S(f"train.out_dir={search}_a"))
    for at in (23, 46):
        ck = f"{search}_a/ckpt_{at:08d}.h5"
        if not os.path.exists(f"{WORK}/{ck}"):
            check(search == "trials", f"{search}: checkpoint at step {at} exists")
            continue
        out = f"{search}_r{at}"
        run("train", DECK, *base, "--resume", ck, *S(f"train.out_dir={out}"))
        a, b = rows(f"{WORK}/{search}_a/metrics.csv"), rows(f"{WORK}/{out}/metrics.csv")
        tail = [r for r in a if int(r[1]) > at]
        check(tail == b and len(b) > 0, f"{search}: resumed at step {at}, the loss curve continues bit for bit")
        fa, fb = f"{WORK}/{search}_a/ckpt_00000060.h5", f"{WORK}/{out}/ckpt_00000060.h5"
        same = all(np.array_equal(x, y) for x, y in zip(group(fa, "model").values(), group(fb, "model").values()))
        sa, sb = group(fa, "schedule"), group(fb, "schedule")
        check(same and np.array_equal(sa["stages"], sb["stages"], equal_nan=True),
              f"{search}: resumed at step {at}, final weights and schedule identical")

H.finish("entprog")
