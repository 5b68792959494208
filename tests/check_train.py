#!/usr/bin/python3
"""End-to-end checks of `entprog train` on the tiny deck: learning happens,
resume is bit-exact (also with EMA and SGD), image mode trains, and every bad
input ends with a clear error and a non-zero exit without touching earlier
checkpoints. Usage: check_train.py ENTPROG DECK WORKDIR"""
import glob
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
from e2e import Harness

ENTPROG, DECK, WORK = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
H = Harness(ENTPROG, WORK)
run, check = H.run, H.check


def expect_error(args, needle, what):
    p = run(*args, ok=False)
    msg = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
    check(p.returncode != 0 and needle in p.stderr, f"{what}: exit {p.returncode}, '{msg}'")


def rows(path, kind="train"):
    with open(path) as f:
        return [l.split(",")[:3] for l in f.read().splitlines()[1:] if l.startswith(kind + ",")]


def tensors(path, group):
    with h5py.File(path, "r") as f:
        out = {}
        f[group].visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
        return out


def same_tensors(a, b, group):
    ta, tb = tensors(a, group), tensors(b, group)
    return ta.keys() == tb.keys() and all(np.array_equal(ta[k], tb[k]) for k in ta)


def digest(folder):
    h = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        if name.endswith(".h5"):
            h.update(name.encode())
            h.update(open(os.path.join(folder, name), "rb").read())
    return h.hexdigest()


shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
run("datagen", DECK)
S = lambda kv: ["--set", kv]

# 1. a run learns: validation loss falls from the zero-output start (~1.0)
run("train", DECK, *S("train.out_dir=a"), *S("train.steps=20"), *S("train.ckpt_every=10"), *S("train.val_every=10"))
val = rows(f"{WORK}/a/metrics.csv", "val")
check(len(val) == 2 and float(val[-1][2]) < 0.95, f"validation loss after 20 steps below 0.95: {val}")

# 2. resume from step 10 reproduces steps 11..20 bit for bit
run("train", DECK, "--resume", "a/ckpt_00000010.h5", *S("train.out_dir=b"), *S("train.steps=20"),
    *S("train.ckpt_every=10"), *S("train.val_every=10"))
ra, rb = rows(f"{WORK}/a/metrics.csv"), rows(f"{WORK}/b/metrics.csv")
check(ra[10:] == rb and len(rb) == 10, "resumed loss curve equals the uninterrupted one (steps 11-20, all digits)")
for g in ("model", "optimizer"):
    check(same_tensors(f"{WORK}/a/ckpt_00000020.h5", f"{WORK}/b/ckpt_00000020.h5", g),
          f"final /{g} tensors identical after resume")

# 2a. activation recomputation (train.recompute = 1) trains bit-identically: resumed from
# the same checkpoint it reproduces steps 11..20 and the final weights and moments
run("train", DECK, "--resume", "a/ckpt_00000010.h5", *S("train.out_dir=rc"), *S("train.steps=20"),
    *S("train.ckpt_every=10"), *S("train.val_every=10"), *S("train.recompute=1"))
check(ra[10:] == rows(f"{WORK}/rc/metrics.csv"), "train.recompute=1: the same loss curve (steps 11-20, all digits)")
for g in ("model", "optimizer"):
    check(same_tensors(f"{WORK}/a/ckpt_00000020.h5", f"{WORK}/rc/ckpt_00000020.h5", g),
          f"train.recompute=1: final /{g} tensors identical")
expect_error(["train", DECK, *S("train.out_dir=rc2"), *S("train.recompute=2")], "train.recompute", "recompute = 2")
# only some blocks recompute (train.recompute_blocks; tiny has 3 blocks): the same curve again, and the
# refusals name the key: more than L - 1 blocks, or without train.recompute = 1
run("train", DECK, "--resume", "a/ckpt_00000010.h5", *S("train.out_dir=rcb"), *S("train.steps=20"),
    *S("train.ckpt_every=10"), *S("train.val_every=10"), *S("train.recompute=1"), *S("train.recompute_blocks=1"))
check(ra[10:] == rows(f"{WORK}/rcb/metrics.csv"), "train.recompute_blocks=1: the same loss curve (all digits)")
check(same_tensors(f"{WORK}/a/ckpt_00000020.h5", f"{WORK}/rcb/ckpt_00000020.h5", "model"),
      "train.recompute_blocks=1: final /model tensors identical")
expect_error(["train", DECK, *S("train.out_dir=rcb2"), *S("train.recompute=1"), *S("train.recompute_blocks=3")],
             "train.recompute_blocks", "at most 2")
expect_error(["train", DECK, *S("train.out_dir=rcb3"), *S("train.recompute_blocks=1")], "train.recompute_blocks",
             "needs train.recompute = 1")

# 2b. SIGUSR1 (Slurm's time-limit warning, forwarded by jobs/common.sh): the
# run stops at a step boundary with a checkpoint there, and resuming from it
# continues the uninterrupted curve
N = 300
common = [*S("train.steps=%d" % N), *S("train.ckpt_every=1000"), *S("train.val_every=0"), *S("train.log_every=100")]
p = subprocess.Popen([ENTPROG, "train", DECK, *S("train.out_dir=u"), *common], cwd=WORK, stdout=subprocess.PIPE,
                     stderr=subprocess.PIPE, text=True)
t0 = time.time()
while time.time() - t0 < 60 and p.poll() is None:
    m = f"{WORK}/u/metrics.csv"
    if os.path.exists(m) and len(rows(m)) >= 5:
        break
    time.sleep(0.02)
p.send_signal(signal.SIGUSR1)
out, err = p.communicate(timeout=120)
ck = sorted(glob.glob(f"{WORK}/u/ckpt_*.h5"))
stop = int(ck[-1][-11:-3]) if ck else -1
check(p.returncode == 0 and "SIGUSR1 at step %d" % stop in out and 5 <= stop < N,
      f"SIGUSR1 stops the run with exit 0 and a checkpoint at the stop step ({stop} of {N}; rc {p.returncode}, "
      f"{err.strip()[-200:]})")
if 0 < stop < N:
    run("train", DECK, "--resume", os.path.relpath(ck[-1], WORK), *S("train.out_dir=u2"), *common)
    run("train", DECK, *S("train.out_dir=v"), *common)
    check(rows(f"{WORK}/u/metrics.csv") + rows(f"{WORK}/u2/metrics.csv") == rows(f"{WORK}/v/metrics.csv"),
          "stopped at the signal + resumed = the uninterrupted loss curve (all digits)")

# 3. EMA + SGD + cosine schedule resume bit-exactly too
extra = [*S("train.optimizer=sgd"), *S("train.lr=0.01"), *S("train.ema=0.9"), *S("train.lr_schedule=cosine"),
         *S("train.warmup=3"), *S("train.steps=12"), *S("train.ckpt_every=6"), *S("train.val_every=0")]
run("train", DECK, *S("train.out_dir=c"), *extra)
run("train", DECK, "--resume", "c/ckpt_00000006.h5", *S("train.out_dir=d"), *extra)
check(rows(f"{WORK}/c/metrics.csv")[6:] == rows(f"{WORK}/d/metrics.csv"), "SGD+EMA+cosine resume is bit-exact")
check(same_tensors(f"{WORK}/c/ckpt_00000012.h5", f"{WORK}/d/ckpt_00000012.h5", "ema"), "EMA weights identical after resume")

# 4. image mode (F = 1) trains
run("train", DECK, *S("train.out_dir=img"), *S("model.F=1"), *S("train.steps=4"), *S("train.val_every=2"))
check(len(rows(f"{WORK}/img/metrics.csv")) == 4, "image mode (F=1) runs")

# 5. starting from a checkpoint's weights (train.init)
run("train", DECK, *S("train.out_dir=e"), *S("train.init=a/ckpt_00000020.h5"), *S("train.steps=2"))
check(float(rows(f"{WORK}/e/metrics.csv")[0][2]) < 0.95, "train.init starts from the trained weights")

# 6. bad inputs: clear error, non-zero exit, earlier checkpoints untouched
before = digest(f"{WORK}/a")
expect_error(["train", DECK, *S("train.out_dir=a")], "already holds checkpoints", "fresh run into a used out_dir")
expect_error(["train", DECK, "--resume", "a/ckpt_00000010.h5", *S("train.out_dir=a"), *S("train.steps=20")],
             "overwrite", "resume where a later checkpoint exists")
check(digest(f"{WORK}/a") == before, "no checkpoint in a/ changed or vanished")
expect_error(["train"], "no input deck", "no deck")
expect_error(["train", "missing.ini"], "missing.ini", "missing deck file")
expect_error(["train", DECK, "--bogus"], "--bogus", "unknown option")
expect_error(["train", DECK, "--resume"], "--resume needs a value", "--resume without a value")
expect_error(["train", DECK, "--resume", "nope.h5", *S("train.out_dir=f")], "nope.h5", "missing checkpoint")
with open(f"{WORK}/notes.h5", "w") as f:
    f.write("not hdf5")
expect_error(["train", DECK, "--resume", "notes.h5", *S("train.out_dir=f")], "not an HDF5 file", "non-HDF5 checkpoint")
blob = open(f"{WORK}/a/ckpt_00000020.h5", "rb").read()
open(f"{WORK}/trunc.h5", "wb").write(blob[: len(blob) // 2])
expect_error(["train", DECK, "--resume", "trunc.h5", *S("train.out_dir=f")], "trunc.h5", "truncated checkpoint")
shutil.copy(f"{WORK}/a/ckpt_00000020.h5", f"{WORK}/flip.h5")
with h5py.File(f"{WORK}/flip.h5", "r+") as f:
    w = f["model/final.linear.bias"]
    w[0] = w[0] + 1.0
expect_error(["train", DECK, "--resume", "flip.h5", *S("train.out_dir=f")], "checksum", "checkpoint with a changed tensor")
expect_error(["train", DECK, "--resume", "a/ckpt_00000020.h5", *S("train.out_dir=f"), *S("model.D=64")],
             "D", "checkpoint of another shape")
expect_error(["train", DECK, *S("data.dir=nowhere"), *S("train.out_dir=f")], "nowhere/train.h5", "missing dataset")
expect_error(["train", DECK, *S("train.steps=-3")], "train.steps", "negative steps")
# predict / grad command lines and inspection files
expect_error(["predict", "--weights", "a/ckpt_00000020.h5"], "required", "predict without --inputs/--out")
expect_error(["grad", "--weights", "a/ckpt_00000020.h5", "--inputs", "none.h5", "--out", "o.h5"], "none.h5",
             "grad with a missing inputs file")
with h5py.File(f"{WORK}/bad_in.h5", "w") as f:
    f["x"] = np.zeros((1, 2, 3, 8, 8), np.float32)
expect_error(["predict", "--weights", "a/ckpt_00000020.h5", "--inputs", "bad_in.h5", "--out", "o.h5"], "H=16",
             "inputs of the wrong latent size")
expect_error(["predict", "--weights", "a/ckpt_00000020.h5", "--inputs", "bad_in.h5", "--out", "o.h5", "--x"],
             "--x", "unknown predict argument")
check(not os.path.exists(f"{WORK}/f") or not any(n.endswith(".h5") for n in os.listdir(f"{WORK}/f")),
      "failed starts wrote no checkpoint")

H.finish("train")
