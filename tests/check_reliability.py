#!/usr/bin/python3
"""What goes wrong in a long run, caused on purpose on the tiny deck, and what
entprog must do: a diverging run stops with an error and keeps its newest
good checkpoint; weights and data with NaN are refused with their name; a
full disk (an injected ENOSPC, tests/fault/enospc.c) ends the run with one
line naming the file and the cause, on every rank, with no temporary left
and earlier checkpoints intact; SIGTERM stops like SIGUSR1 and resumes the
same curve; a second SIGINT stops at once.
Usage: check_reliability.py ENTPROG DECK WORKDIR FAULT_LIB"""
import glob
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
from e2e import Harness

ENTPROG, DECK, WORK, FAULT = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3], sys.argv[4]
H = Harness(ENTPROG, WORK)
run, check = H.run, H.check
S = lambda kv: ["--set", kv]


def last_line(p):
    return p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""


def finite_ckpt(path):
    """Every float tensor of a checkpoint is finite."""
    bad = []
    with h5py.File(path, "r") as f:
        def visit(n, o):
            if isinstance(o, h5py.Dataset) and o.dtype.kind == "f" and n.split("/")[0] in ("model", "optimizer", "ema"):
                if not np.all(np.isfinite(o[()])):
                    bad.append(n)
        f.visititems(visit)
    return not bad


def ckpts(d):
    return sorted(glob.glob(f"{WORK}/{d}/ckpt_*.h5"))


def loads(ck):
    """A checkpoint loads and trains on: one more step from it."""
    step = int(ck[-11:-3])
    out = "load_" + os.path.basename(os.path.dirname(ck)) + "_" + str(step)
    p = run("train", DECK, "--resume", os.path.relpath(ck, WORK), *S(f"train.out_dir={out}"),
            *S(f"train.steps={step + 1}"), *S("train.val_every=0"), ok=False)
    return p.returncode == 0


def rows(path, kinds=("train",)):
    with open(path) as f:
        return [l.split(",")[:4] for l in f.read().splitlines()[1:] if l.split(",")[0] in kinds]


shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
run("datagen", DECK)
BASE = [*S("train.steps=20"), *S("train.ckpt_every=10"), *S("train.val_every=10"), *S("train.log_every=100")]
run("train", DECK, *BASE, *S("train.out_dir=a"))
A20 = f"{WORK}/a/ckpt_00000020.h5"

# 1. divergence: resumed into its own folder with a learning rate that blows up, checkpoints every 2 steps and
# only the newest kept. The run must stop with an error, log the skipped steps, never write a non-finite
# checkpoint and keep the newest good one.
DIV = [*S("train.lr=1e4"), *S("train.grad_clip=0"), *S("train.steps=60"), *S("train.ckpt_every=2"),
       *S("train.keep_ckpts=1"), *S("train.val_every=0"), *S("train.log_every=100")]
shutil.copytree(f"{WORK}/a", f"{WORK}/div")
p = run("train", DECK, "--resume", "div/ckpt_00000020.h5", *S("train.out_dir=div"), *DIV, ok=False)
skipped = rows(f"{WORK}/div/metrics.csv", ("skipped",))
check(p.returncode == 1 and "diverged" in p.stderr and "train.max_bad_steps = 5" in p.stderr,
      f"divergence: exit {p.returncode}, '{last_line(p)[:160]}'")
check(len(skipped) == 5 and all(r[2] in ("nan", "-nan", "inf", "-inf") or r[3] in ("nan", "-nan", "inf", "-inf")
                                for r in skipped),
      f"divergence: the 5 skipped steps are logged as such ({[r[1] for r in skipped]})")
left = ckpts("div")
check(len(left) >= 1 and all(finite_ckpt(c) for c in left) and loads(left[-1]),
      f"divergence: the checkpoints left ({[os.path.basename(c) for c in left]}) are finite and the newest loads")
check(not glob.glob(f"{WORK}/div/*.tmp"), "divergence: no temporary file left")
# the streak is in the checkpoint: resumed from the newest one, the run stops after the rest of the 5 bad steps
with h5py.File(left[-1], "r") as f:
    k = int(f["state"].attrs.get("bad_steps", -1))
shutil.copytree(f"{WORK}/div", f"{WORK}/div_r")
p = run("train", DECK, "--resume", f"div_r/{os.path.basename(left[-1])}", *S("train.out_dir=div_r"), *DIV, ok=False)
again = rows(f"{WORK}/div_r/metrics.csv", ("skipped",))
check(0 < k < 5 and p.returncode == 1 and "5 steps in a row" in p.stderr and len(again) - len(skipped) == 5 - k,
      f"divergence: the newest checkpoint holds the streak ({k} bad steps) and the resumed run stops after "
      f"{len(again) - len(skipped)} more (want {5 - k}): '{last_line(p)[:120]}'")
p = run("train", DECK, "--resume", "a/ckpt_00000020.h5", *S("train.out_dir=div_b"), *DIV, *S("train.max_bad_steps=2"),
        ok=False)
check(p.returncode == 1 and "2 steps in a row" in p.stderr, "train.max_bad_steps = 2 stops after 2 bad steps")

# 2. non-finite values in what is loaded: weights (train.init and --resume) and data, refused with their name
shutil.copy(A20, f"{WORK}/nan_w.h5")
with h5py.File(f"{WORK}/nan_w.h5", "a") as f:
    w = f["model/final.linear.weight"]
    x = w[()]
    x.flat[3] = np.nan
    w[...] = x
for how in (["--resume", "nan_w.h5"], [*S("train.init=nan_w.h5")]):
    p = run("train", DECK, *how, *S("train.out_dir=nan_w_run"), *S("train.steps=30"), ok=False)
    check(p.returncode != 0 and "final.linear.weight" in p.stderr and "non-finite" in p.stderr,
          f"NaN in weights ({how[0]}): refused naming the tensor: '{last_line(p)[:160]}'")
os.makedirs(f"{WORK}/nan_data")
for split in ("train", "val", "test"):
    shutil.copy(f"{WORK}/data/{split}.h5", f"{WORK}/nan_data/{split}.h5")
with h5py.File(f"{WORK}/nan_data/train.h5", "a") as f:
    lat = f["latents"][()]
    lat[:, :, 0, 0, 0] = np.inf
    f["latents"][...] = lat
p = run("train", DECK, *S("data.dir=nan_data"), *S("train.out_dir=nan_d_run"), *S("train.steps=5"), ok=False)
check(p.returncode != 0 and "train.h5" in p.stderr and "/latents" in p.stderr and "non-finite" in p.stderr,
      f"Inf in the training data: refused naming the file and dataset: '{last_line(p)[:160]}'")
check(not ckpts("nan_d_run"), "Inf in the data: no checkpoint written")

# 2a. the settings that change results are recorded: in every checkpoint and on the first metrics row of each
# process; resuming under other settings says so
p = run("train", DECK, "--resume", "a/ckpt_00000020.h5", *S("train.out_dir=numerics"), *S("train.steps=22"),
        env={"ENTPROG_GEMM": "fp32"})
with h5py.File(f"{WORK}/a/ckpt_00000020.h5", "r") as f:
    recorded = f["state"].attrs["numerics"]
recorded = recorded.decode() if isinstance(recorded, bytes) else recorded
with open(f"{WORK}/numerics/metrics.csv") as f:
    first = f.read().splitlines()[1].split(",")
check("ENTPROG_GEMM=;" in recorded and "was written with" in p.stderr and "ENTPROG_GEMM=fp32" in p.stderr
      and "ENTPROG_GEMM=fp32" in first[-1], f"numerics recorded ('{recorded}'), a resume under ENTPROG_GEMM=fp32 "
      f"warns and logs it")

# 2b. a run that cannot fit in memory is refused at start, with the plan, the limit and the keys that shrink it
p = run("train", DECK, *S("train.out_dir=huge"), *S("train.batch=200000"), ok=False)
check(p.returncode == 1 and "GiB" in p.stderr and "train.batch" in p.stderr and "train.recompute" in p.stderr
      and not ckpts("huge"), f"too big for the memory: refused at start: '{last_line(p)[:200]}'")

# 3. a full disk, injected: writes to the run's checkpoints fail with ENOSPC after 1.5 checkpoints' worth of
# bytes, so the first checkpoint is written and the second is not
size = os.path.getsize(f"{WORK}/a/ckpt_00000010.h5")
# the sanitizer build's runtime wants to be loaded first; the preloaded library is not instrumented
ASAN = {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
for ranks in (1, 2):
    d = f"full{ranks}"
    # each rank writes its share of every checkpoint: 1.5 checkpoints in all
    env = {"LD_PRELOAD": FAULT, "FAULT_PATH": f"{d}/ckpt_", "FAULT_BYTES": str(int(size * 1.5 / ranks)), **ASAN}
    cmd = ["mpirun", "--oversubscribe", "-n", str(ranks), ENTPROG] if ranks > 1 else [ENTPROG]
    q = subprocess.run([*cmd, "train", DECK, *BASE, *S("train.steps=30"), *S(f"train.out_dir={d}"), *S("train.keep_ckpts=1")],
                       cwd=WORK, capture_output=True, text=True, env={**os.environ, **env}, timeout=300)
    err = [l for l in q.stderr.splitlines() if l.startswith("entprog: error")]
    check(q.returncode not in (0, 139, -11) and err and "ckpt_00000020.h5.tmp" in err[0] and "No space left" in err[0],
          f"full disk, {ranks} rank(s): exit {q.returncode}, '{err[0][:170] if err else q.stderr[-300:]}'")
    check(not glob.glob(f"{WORK}/{d}/*.tmp"), f"full disk, {ranks} rank(s): no temporary file left")
    left = [os.path.basename(c) for c in ckpts(d)]
    check(left == ["ckpt_00000010.h5"] and loads(f"{WORK}/{d}/ckpt_00000010.h5"),
          f"full disk, {ranks} rank(s): the earlier checkpoint is intact and loads ({left})")
env = {"LD_PRELOAD": FAULT, "FAULT_PATH": "gen_full/", "FAULT_BYTES": "20000", **ASAN}
with open(DECK) as f, open(f"{WORK}/gen_full.ini", "w") as g:
    g.write(f.read().replace("dir = data ", "dir = gen_full "))
q = subprocess.run([ENTPROG, "datagen", "gen_full.ini"], cwd=WORK, capture_output=True, text=True,
                   env={**os.environ, **env}, timeout=300)
check(q.returncode == 1 and "gen_full/train.h5" in q.stderr and "No space left" in q.stderr
      and not os.listdir(f"{WORK}/gen_full"), f"full disk in datagen: exit {q.returncode}, nothing left in the folder, "
      f"'{last_line(q)[:160]}'")

# 3b. a real full disk: a 600 KiB tmpfs, where this machine lets us mount one (root in a sandbox that allows it)
mnt = f"{WORK}/tmpfs"
os.makedirs(mnt)
if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", mnt], capture_output=True).returncode == 0:
    try:
        p = run("train", DECK, *BASE, *S(f"train.out_dir={mnt}/run"), ok=False)
        check(p.returncode == 1 and "no space left on" in p.stderr.lower() and
              not glob.glob(f"{mnt}/run/*.tmp"), f"a real full tmpfs: exit {p.returncode}, '{last_line(p)[:170]}', "
              "no temporary left")
    finally:
        subprocess.run(["umount", mnt])
else:
    print("SKIPPED (not counted): a real tmpfs cannot be mounted here; the injected ENOSPC above stands for it")

# 4. SIGTERM (scancel, preemption) stops like SIGUSR1: a checkpoint at the stop step, exit 0, and resuming gives
# the uninterrupted curve; a second SIGINT stops at once
N = 120
common = [*S(f"train.steps={N}"), *S("train.ckpt_every=1000"), *S("train.val_every=0"), *S("train.log_every=100")]


def start_and_wait(out):
    p = subprocess.Popen([ENTPROG, "train", DECK, *S(f"train.out_dir={out}"), *common], cwd=WORK,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.time()
    while time.time() - t0 < 60 and p.poll() is None:
        m = f"{WORK}/{out}/metrics.csv"
        if os.path.exists(m) and len(rows(m)) >= 5:
            break
        time.sleep(0.02)
    return p


p = start_and_wait("term")
p.send_signal(signal.SIGTERM)
out, err = p.communicate(timeout=120)
ck = ckpts("term")
stop = int(ck[-1][-11:-3]) if ck else -1
check(p.returncode == 0 and f"SIGTERM at step {stop}" in out and 5 <= stop < N,
      f"SIGTERM stops with exit 0 and a checkpoint at the stop step ({stop} of {N}; rc {p.returncode})")
if 0 < stop < N:
    run("train", DECK, "--resume", os.path.relpath(ck[-1], WORK), *S("train.out_dir=term2"), *common)
    run("train", DECK, *S("train.out_dir=term_ref"), *common)
    got = rows(f"{WORK}/term/metrics.csv") + rows(f"{WORK}/term2/metrics.csv")
    check(got == rows(f"{WORK}/term_ref/metrics.csv"), "SIGTERM + resume = the uninterrupted loss curve (all digits)")

# the two SIGINTs raised by rank 0 itself at the 5th step (ENTPROG_FAULT_SIGNAL_AT), so the second surely
# arrives while the first is being acted on
p = run("train", DECK, *S("train.out_dir=int2"), *common, env={"ENTPROG_FAULT_SIGNAL_AT": "5:INT,INT"}, ok=False)
check(p.returncode == -signal.SIGINT and "stopped after writing" not in p.stdout and not ckpts("int2"),
      f"a second SIGINT stops at once (rc {p.returncode}, no stop checkpoint)")
p = run("train", DECK, *S("train.out_dir=int1"), *common, env={"ENTPROG_FAULT_SIGNAL_AT": "5:INT"}, ok=False)
check(p.returncode == 0 and "SIGINT at step 6" in p.stdout and [os.path.basename(c) for c in ckpts("int1")] ==
      ["ckpt_00000006.h5"], f"one SIGINT stops at the step boundary with a checkpoint (rc {p.returncode})")

H.finish("reliability")
