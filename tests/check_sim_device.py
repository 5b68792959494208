#!/usr/bin/python3
"""The host <-> device staging of the model (parameters uploaded, inputs
staged, gradients moved back, forward-only models uploading once) checked on
the CPU: with ENTPROG_SIM_DEVICE=1 the CPU backend keeps its own copies of
everything as the CUDA backend does, so every upload/download path runs; the
results must be bit-identical to the plain CPU run. Covered: pre-training,
Ent-Prog fine-tuning with the supernet and the trials search (trainable sets
changing, snapshots), a resume, CEI and sampling with guidance.
Also on 2 MPI ranks (the gradients and the updated shards cross through the
host; the trials search gathers and scatters moments).
Usage: check_sim_device.py ENTPROG DECK WORKDIR MPIEXEC"""
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
from e2e import Harness

ENTPROG, DECK, WORK, MPIEXEC = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3], sys.argv[4]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
H = Harness(ENTPROG, WORK)
run, check = H.run, H.check
S = lambda kv: ["--set", kv]


def sim(*args):
    os.environ["ENTPROG_SIM_DEVICE"] = "1"
    try:
        return run(*args)
    finally:
        del os.environ["ENTPROG_SIM_DEVICE"]


def rows(path):  # everything but the timing and memory columns
    with open(path) as f:
        return [l.split(",")[:5] + l.split(",")[8:10] for l in f.read().splitlines()[1:]]


def same_h5(a, b, names):
    """Every dataset under the named groups (or the named datasets) equal, bit for bit (NaN = NaN)."""
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        out = []

        def same(x, y):
            x, y = np.asarray(x), np.asarray(y)
            return x.shape == y.shape and (np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f"
                                           else np.array_equal(x, y))
        for g in names:
            if isinstance(fa[g], h5py.Dataset):
                out.append(same(fa[g][()], fb[g][()]))
                continue
            fa[g].visititems(lambda n, o: out.append(same(o[()], fb[g][n][()]))
                             if isinstance(o, h5py.Dataset) else None)
        return len(out) > 0 and all(out)


run("datagen", DECK)
PRE = [*S("train.steps=12"), *S("train.val_every=6"), *S("train.ckpt_every=6")]
run("train", DECK, *PRE, *S("train.out_dir=pre"))
sim("train", DECK, *PRE, *S("train.out_dir=pre_sim"))
check(rows(f"{WORK}/pre/metrics.csv") == rows(f"{WORK}/pre_sim/metrics.csv"),
      "pre-training: the same losses, gradient norms and validation losses, all digits")
check(same_h5(f"{WORK}/pre/ckpt_00000012.h5", f"{WORK}/pre_sim/ckpt_00000012.h5", ["model", "optimizer"]),
      "pre-training: identical final weights and moments")

FT = [*S("train.init=pre/ckpt_00000012.h5"), *S("train.steps=40"), *S("entprog.search_steps=4"),
      *S("entprog.cei_n=4"), *S("entprog.timing=cost"), *S("train.val_every=0"), *S("entprog.probe_batches=1"),
      *S("entprog.method=entprog"), *S("train.ckpt_every=20")]
for search in ("supernet", "trials"):
    run("train", DECK, *FT, *S(f"entprog.search={search}"), *S(f"train.out_dir={search}"))
    sim("train", DECK, *FT, *S(f"entprog.search={search}"), *S(f"train.out_dir={search}_sim"))
    check(rows(f"{WORK}/{search}/metrics.csv") == rows(f"{WORK}/{search}_sim/metrics.csv"),
          f"Ent-Prog with the {search} search: the same curve, stages and m, all digits")
    check(same_h5(f"{WORK}/{search}/ckpt_00000040.h5", f"{WORK}/{search}_sim/ckpt_00000040.h5",
                  ["model", "optimizer", "schedule/stages"]), f"Ent-Prog ({search}): identical final checkpoint")
sim("train", DECK, *FT, *S("entprog.search=supernet"), "--resume", "supernet/ckpt_00000020.h5",
    *S("train.out_dir=resumed_sim"))
plain = rows(f"{WORK}/supernet/metrics.csv")  # from the row after step 20's step (probe rows come between steps)
after = next(i for i, r in enumerate(plain) if r[0] in ("train", "search") and r[1] == "20") + 1
check(plain[after:] == rows(f"{WORK}/resumed_sim/metrics.csv"),
      "a resume with separate device copies continues the plain CPU curve")

# activation recomputation with separate device copies (the GPU's memory path:
# device-to-device copies of each block's input) gives the plain supernet run
sim("train", DECK, *FT, *S("entprog.search=supernet"), *S("train.recompute=1"), *S("train.out_dir=recompute_sim"))
check(rows(f"{WORK}/supernet/metrics.csv") == rows(f"{WORK}/recompute_sim/metrics.csv"),
      "Ent-Prog (supernet) with train.recompute=1 and device copies: the plain curve, all digits")
check(same_h5(f"{WORK}/supernet/ckpt_00000040.h5", f"{WORK}/recompute_sim/ckpt_00000040.h5",
              ["model", "optimizer", "schedule/stages"]), "and the same final checkpoint")

shutil.copy(f"{WORK}/pre/ckpt_00000012.h5", f"{WORK}/cei.h5")
shutil.copy(f"{WORK}/pre/ckpt_00000012.h5", f"{WORK}/cei_sim.h5")
run("cei", DECK, "--ckpt", "cei.h5", "--n", "4", "--out", "cei")
sim("cei", DECK, "--ckpt", "cei_sim.h5", "--n", "4", "--out", "cei_sim")
check(open(f"{WORK}/cei/cei.csv").read() == open(f"{WORK}/cei_sim/cei.csv").read(), "CEI: identical scores")

SAMPLE = ["--ckpt", "pre/ckpt_00000012.h5", "--steps", "3", "--n", "2", "--guidance", "2"]
run("sample", DECK, *SAMPLE, "--out", "s")
sim("sample", DECK, *SAMPLE, "--out", "s_sim")
check(same_h5(f"{WORK}/s/samples.h5", f"{WORK}/s_sim/samples.h5", ["/"]),
      "sampling with guidance (forward-only, parameters uploaded once): identical samples")


def mpi2(sim_on, *args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if sim_on:
        env["ENTPROG_SIM_DEVICE"] = "1"
    p = subprocess.run([MPIEXEC, "--oversubscribe", "-n", "2", ENTPROG, *args], cwd=WORK, env=env,
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"FAILED: mpiexec -n 2 entprog {' '.join(args)}\n{p.stdout}\n{p.stderr}")


for name, extra in (("mpi_pre", PRE), ("mpi_trials", [*FT, *S("entprog.search=trials")])):
    mpi2(0, "train", DECK, *extra, *S(f"train.out_dir={name}"))
    mpi2(1, "train", DECK, *extra, *S(f"train.out_dir={name}_sim"))
    check(rows(f"{WORK}/{name}/metrics.csv") == rows(f"{WORK}/{name}_sim/metrics.csv"),
          f"2 ranks, {name[4:]}: the same curve, all digits")
H.finish("separate-device-copy")
