#!/usr/bin/python3
"""Data-parallel entprog under mpirun (2 and 3 ranks, oversubscribed), on the
tiny deck: R ranks with batch B follow one rank with batch R*B (the same
global batch), the partitioned candidate search decides exactly what the
sequential one does, a checkpoint written by 2 ranks resumes on 1 and 3 ranks,
and killing a rank ends the job with an error while the last checkpoint stays
loadable. Usage: check_distributed.py ENTPROG MPIEXEC DECK WORKDIR"""
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

ENTPROG, MPIEXEC, DECK, WORK = sys.argv[1], sys.argv[2], os.path.abspath(sys.argv[3]), sys.argv[4]
failures = []
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", HDF5_USE_FILE_LOCKING="FALSE",
           OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")


def run(n, *args, ok=True):
    cmd = [ENTPROG, *args] if n == 0 else [MPIEXEC, "-n", str(n), "--oversubscribe", ENTPROG, *args]
    p = subprocess.run(cmd, cwd=WORK, capture_output=True, text=True, env=ENV)
    if ok and p.returncode != 0:
        sys.exit(f"FAILED: {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    return p


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def losses(path, kinds=("train",)):
    with open(path) as f:
        return [(int(r[1]), float(r[2])) for r in (l.split(",") for l in f.read().splitlines()[1:]) if r[0] in kinds]


def close(a, b, tol):
    return len(a) == len(b) and len(a) > 0 and all(x[0] == y[0] and abs(x[1] - y[1]) <= tol * abs(y[1]) for x, y in zip(a, b))


S = lambda kv: ["--set", kv]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
run(0, "datagen", DECK)
BASE = [*S("train.steps=12"), *S("train.val_every=6"), *S("train.ckpt_every=6"), *S("train.keep_ckpts=0")]

# 1. R ranks x batch B == 1 rank x batch R*B (same global batch; fp32 sums in another order: 1e-5)
run(0, "train", DECK, *BASE, *S("train.batch=6"), *S("train.out_dir=one"))
for n, b in ((2, 3), (3, 2)):
    run(n, "train", DECK, *BASE, *S(f"train.batch={b}"), *S(f"train.out_dir=r{n}"))
    check(close(losses(f"{WORK}/r{n}/metrics.csv"), losses(f"{WORK}/one/metrics.csv"), 1e-5),
          f"{n} ranks x batch {b} follow 1 rank x batch 6 (train losses within 1e-5)")
    check(close(losses(f"{WORK}/r{n}/metrics.csv", ("val",)), losses(f"{WORK}/one/metrics.csv", ("val",)), 1e-5),
          f"{n} ranks: the same validation losses")
    with h5py.File(f"{WORK}/one/ckpt_00000012.h5", "r") as a, h5py.File(f"{WORK}/r{n}/ckpt_00000012.h5", "r") as c:
        worst = max(float(np.max(np.abs(a["model"][k][()] - c["model"][k][()]))) for k in a["model"])
        moments = sorted(a["optimizer/m"].keys()) == sorted(c["optimizer/m"].keys())
        ws = int(c["state"].attrs["world_size"])
    check(worst < 1e-4 and moments and ws == n,
          f"{n} ranks: final weights within 1e-4 of 1 rank ({worst:.1e}), all moment shards written, world_size {ws}")

# 1b. the averaged gradient itself: one SGD step with no momentum and no clipping moves every weight by
#     -lr * gradient, so the weight change of R ranks x batch B must equal 1 rank x batch R*B. lr = 1e4
#     makes the change dwarf the weight, so reading it back loses no digits to the weight's rounding.
SGD = [*S("train.steps=1"), *S("train.optimizer=sgd"), *S("train.lr=10000"), *S("train.momentum=0"),
       *S("train.grad_clip=0"), *S("train.val_every=0"), *S("train.ckpt_every=1"), *S("train.init=one/ckpt_00000006.h5")]
run(0, "train", DECK, *SGD, *S("train.batch=6"), *S("train.out_dir=g1"))
with h5py.File(f"{WORK}/one/ckpt_00000006.h5", "r") as f0, h5py.File(f"{WORK}/g1/ckpt_00000001.h5", "r") as f1:
    g_one = {k: f0["model"][k][()] - f1["model"][k][()] for k in f0["model"]}
for n, b in ((2, 3), (3, 2)):
    run(n, "train", DECK, *SGD, *S(f"train.batch={b}"), *S(f"train.out_dir=g{n}"))
    with h5py.File(f"{WORK}/one/ckpt_00000006.h5", "r") as f0, h5py.File(f"{WORK}/g{n}/ckpt_00000001.h5", "r") as f1:
        rel = max(float(np.max(np.abs((f0["model"][k][()] - f1["model"][k][()]) - g_one[k])) /
                        max(float(np.max(np.abs(g_one[k]))), 1e-12)) for k in g_one)
    check(rel < 2e-5, f"{n} ranks: the averaged gradient of the split global batch equals the 1-rank gradient "
                      f"(worst tensor rel {rel:.1e}, tol 2e-5)")

# 2. a checkpoint of 2 ranks resumes on 1 and on 3 ranks (re-sharded) and continues the same run
for n, b in ((0, 6), (3, 2)):
    out = f"from2_on{max(n, 1)}"
    run(n, "train", DECK, *BASE, *S(f"train.batch={b}"), "--resume", "r2/ckpt_00000006.h5", *S(f"train.out_dir={out}"))
    ref = [x for x in losses(f"{WORK}/r2/metrics.csv") if x[0] > 6]
    check(close(losses(f"{WORK}/{out}/metrics.csv"), ref, 1e-5),
          f"the 2-rank checkpoint resumed on {max(n, 1)} rank(s) continues the 2-rank curve (1e-5)")

# 3. the partitioned search (each candidate on its own rank group) decides what the sequential one does
FT = [*S("train.init=one/ckpt_00000012.h5"), *S("train.steps=24"), *S("entprog.method=entprog"),
      *S("entprog.search=trials"), *S("entprog.timing=cost"), *S("entprog.search_steps=3"), *S("entprog.cei_n=8"),
      *S("train.val_every=0"), *S("entprog.probe_batches=2"), *S("train.batch=2"), *S("train.ckpt_every=0")]
run(0, "train", DECK, *FT, *S("train.out_dir=seq"))
for n in (2, 3):
    t0 = time.time()
    run(n, "train", DECK, *FT, *S(f"train.out_dir=part{n}"))
    with h5py.File(f"{WORK}/seq/ckpt_00000024.h5", "r") as a, h5py.File(f"{WORK}/part{n}/ckpt_00000024.h5", "r") as c:
        sa, sc = a["schedule/stages"][0], c["schedule/stages"][0]
    check(np.array_equal(sa, sc, equal_nan=True),
          f"partitioned search on {n} ranks: stage 1 CE(m) and m* equal the sequential search's ({sa[2]:.0f})")

# 4. killing a rank ends the job with an error; the last checkpoint stays good
p = subprocess.Popen([MPIEXEC, "-n", "2", "--oversubscribe", ENTPROG, "train", DECK, *S("train.steps=100000"),
                      *S("train.ckpt_every=5"), *S("train.val_every=0"), *S("train.out_dir=killed")],
                     cwd=WORK, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
deadline = time.time() + 60
while time.time() < deadline and not os.path.exists(f"{WORK}/killed/ckpt_00000010.h5"):
    time.sleep(0.2)
ranks = subprocess.run(["pgrep", "-f", f"{ENTPROG} train.*train.out_dir=killed"], capture_output=True, text=True)
pids = [int(x) for x in ranks.stdout.split() if int(x) != p.pid]
if pids:
    os.kill(pids[-1], signal.SIGKILL)
out, _ = p.communicate(timeout=60)
check(p.returncode != 0, f"killing one of 2 ranks ends the job with exit {p.returncode}")
check("signal 9" in out or "exited on signal" in out or "killed" in out.lower(), "and mpirun says a rank was killed")
ckpts = sorted(c for c in os.listdir(f"{WORK}/killed") if c.startswith("ckpt_") and c.endswith(".h5"))
step = int(ckpts[-1][5:13])
r = run(0, "train", DECK, "--resume", f"killed/{ckpts[-1]}", *S(f"train.steps={step}"), *S("train.out_dir=verify"),
        ok=False)
check(r.returncode == 0 and len(ckpts) >= 2,
      f"the last checkpoint under a final name, {ckpts[-1]}, loads (checksum verified)")

if failures:
    sys.exit(f"{len(failures)} check(s) failed: {failures}")
print("all distributed checks passed")
