#!/usr/bin/python3
"""The gradient exchange overlapped with backward (ENTPROG_COMM_OVERLAP=1, the
default: every rank's slice leaves for its owner as soon as backward has
finished it) gives the same bits as the exchange after backward
(ENTPROG_COMM_OVERLAP=0), on 2 and 3 ranks: full training, then an Ent-Prog
trials search (rank groups, frozen blocks: holes in the packed gradients)
from its checkpoint. Every loss, gradient norm, learning rate, stage, m and
cost of metrics.csv and every tensor of the final checkpoints are compared
bit for bit. On 2 ranks also with ENTPROG_SIM_DEVICE=1 (the CPU backend
keeps its memory apart, as a GPU: each finished part of the gradients is
downloaded before it leaves). Usage: check_overlap.py ENTPROG MPIEXEC DECK WORKDIR"""
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

ENTPROG, MPIEXEC, DECK, WORK = sys.argv[1], sys.argv[2], os.path.abspath(sys.argv[3]), sys.argv[4]
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", HDF5_USE_FILE_LOCKING="FALSE",
           OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
failures = []


def run(n, overlap, *args, sim="0"):
    cmd = [ENTPROG, *args] if n == 0 else [MPIEXEC, "-n", str(n), "--oversubscribe", ENTPROG, *args]
    env = dict(ENV, ENTPROG_COMM_OVERLAP=overlap, ENTPROG_SIM_DEVICE=sim)
    p = subprocess.run(cmd, cwd=WORK, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"FAILED: ENTPROG_COMM_OVERLAP={overlap} {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    return p.stdout


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


# the columns that do not depend on the clock
SAME = ("kind", "step", "loss", "grad_norm", "lr", "stage", "m", "cost")


def rows(path):
    with open(path) as f:
        lines = f.read().splitlines()
    head = lines[0].split(",")
    idx = [head.index(c) for c in SAME]
    return [tuple(r.split(",")[i] for i in idx) for r in lines[1:]]


def tensors(path):
    """Every numeric dataset but the training wall time (schedule/state/train_s)."""
    out = {}
    with h5py.File(path, "r") as f:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "fiu" and not name.endswith("train_s"):
                out[name] = np.ascontiguousarray(obj[()]).tobytes()
        f.visititems(visit)
    return out


def last_ckpt(d):
    return sorted(x for x in os.listdir(d) if x.startswith("ckpt_") and x.endswith(".h5"))[-1]


S = lambda kv: ["--set", kv]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
run(0, "0", "datagen", DECK)
FULL = [*S("train.steps=8"), *S("train.val_every=4"), *S("train.ckpt_every=4"), *S("train.keep_ckpts=0")]
for n in (2, 3):
    for ov in ("0", "1"):
        run(n, ov, "train", DECK, *FULL, *S(f"train.out_dir=full{n}_{ov}"))
    if n == 2:
        run(n, "1", "train", DECK, *FULL, *S("train.out_dir=full2_sim"), sim="1")
        sim = tensors(f"{WORK}/full2_sim/ckpt_00000008.h5")
        check(rows(f"{WORK}/full2_sim/metrics.csv") == rows(f"{WORK}/full2_0/metrics.csv") and
              sim == tensors(f"{WORK}/full2_0/ckpt_00000008.h5"),
              "2 ranks, full, simulated device memory with overlap: the same metrics and checkpoint bits")
    # the search starts from the same weights on both sides: the 1-overlap run's (checked equal just below)
    FT = [*S(f"train.init=full{n}_1/ckpt_00000008.h5"), *S("train.steps=24"), *S("entprog.stages=2"), *S("entprog.method=entprog"),
          *S("entprog.search=trials"), *S("entprog.timing=cost"), *S("entprog.search_steps=3"), *S("entprog.cei_n=8"),
          *S("train.val_every=0"), *S("entprog.probe_batches=2"), *S("train.ckpt_every=0"), *S("train.ema=0.9")]
    for ov in ("0", "1"):
        out = run(n, ov, "train", DECK, *FT, *S(f"train.out_dir=ft{n}_{ov}"))
    check("search:" in out and "group" in out, f"{n} ranks: the fine-tune ran a trials search on rank groups")
    for kind in ("full", "ft"):
        a, b = f"{WORK}/{kind}{n}_0", f"{WORK}/{kind}{n}_1"
        ra, rb = rows(f"{a}/metrics.csv"), rows(f"{b}/metrics.csv")
        check(len(ra) > 5 and ra == rb, f"{n} ranks, {kind}: metrics.csv the same with and without overlap ({len(ra)} rows)")
        ta, tb = tensors(f"{a}/{last_ckpt(a)}"), tensors(f"{b}/{last_ckpt(b)}")
        diff = [k for k in ta if ta[k] != tb.get(k)]
        check(len(ta) > 10 and ta.keys() == tb.keys() and not diff,
              f"{n} ranks, {kind}: final checkpoint the same bit for bit ({len(ta)} datasets{', differ: ' + ' '.join(diff[:4]) if diff else ''})")

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print("all checks passed")
