#!/usr/bin/python3
"""kill -9 at random moments: a 2-rank Ent-Prog fine-tune (supernet search,
timing = cost, a checkpoint every 3 steps) is killed at no fewer than 5
moments drawn from a seeded generator - one of them while a checkpoint is
being written, at least one inside a search window - by SIGKILL to one of
its ranks, and resumed from its newest checkpoint each time. The whole job
must end within seconds of the kill with a message, the newest checkpoint
must load, and the final weights and optimizer moments must equal those of
the run that was never stopped, bit for bit.
Usage: check_kill.py ENTPROG DECK WORKDIR"""
import glob
import os
import random
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
S = lambda kv: ["--set", kv]
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
run("datagen", DECK)
run("train", DECK, *S("train.out_dir=pre"), *S("train.steps=20"), *S("train.val_every=0"))
STEPS = 60
FT = [*S("train.init=pre/ckpt_00000020.h5"), *S(f"train.steps={STEPS}"), *S("entprog.method=entprog"),
      *S("entprog.search_steps=6"), *S("entprog.cei_n=8"), *S("entprog.timing=cost"), *S("train.val_every=10"),
      *S("train.log_every=100"), *S("entprog.probe_batches=1"), *S("train.ckpt_every=3"), *S("train.keep_ckpts=0")]
MPI = ["mpirun", "--oversubscribe", "-n", "2"]


def tensors(path, group):
    with h5py.File(path, "r") as f:
        out = {}
        f[group].visititems(lambda n, o: out.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
        return out


def newest(d):
    c = sorted(glob.glob(f"{WORK}/{d}/ckpt_*.h5"))
    return c[-1] if c else None


t0 = time.time()
subprocess.run([*MPI, ENTPROG, "train", DECK, *FT, *S("train.out_dir=ref")], cwd=WORK, check=True,
               capture_output=True)
T = time.time() - t0
print(f"the uninterrupted run took {T:.1f} s")

# windows of the search: steps logged as `search` by the reference run
with open(f"{WORK}/ref/metrics.csv") as f:
    search_steps = {int(l.split(",")[1]) for l in f.read().splitlines()[1:] if l.startswith("search,")}

# the kill moments: 4 steps drawn at random, one step inside a search window, and one checkpoint write (the
# first `.tmp` seen); each attempt runs until its moment comes (the metrics row of that step appears, or the
# temporary), then one of its ranks gets SIGKILL
rng = random.Random(20261203)
inside = sorted(s for s in search_steps if 4 <= s < STEPS - 3)
moments = sorted(rng.sample(range(4, STEPS - 3), 4) + ([rng.choice(inside)] if inside else []))
moments.insert(rng.randrange(len(moments) + 1), "write")
kills, attempts = [], 0
for moment in moments + ["end"]:
    attempts += 1
    ck = newest("k")
    args = [*FT, *S("train.out_dir=k")] + (["--resume", os.path.relpath(ck, WORK)] if ck else [])
    metrics = f"{WORK}/k/metrics.csv"
    seen = os.path.getsize(metrics) if os.path.exists(metrics) else 0
    p = subprocess.Popen([*MPI, ENTPROG, "train", DECK, *args], cwd=WORK, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    victim, step = None, -1
    while p.poll() is None and victim is None and moment != "end":
        if moment == "write":
            due = bool(glob.glob(f"{WORK}/k/*.h5.tmp"))
        elif not os.path.exists(metrics):
            due = False
        else:
            with open(metrics) as f:
                f.seek(seen)
                new = [l.split(",") for l in f.read().splitlines() if l.startswith(("train,", "search,"))]
            due = any(int(r[1]) >= moment for r in new)
        if due:
            ranks = subprocess.run(["pgrep", "-P", str(p.pid), "-f", "entprog"], capture_output=True,
                                   text=True).stdout.split()
            if ranks:
                victim = int(rng.choice(ranks))
                os.kill(victim, signal.SIGKILL)
                killed_at = time.time()
                break
        time.sleep(0.002)
    if victim is None:
        out, err = p.communicate(timeout=300)
        check(p.returncode == 0 and moment == "end", f"attempt {attempts} ({moment}): ran to the end (rc {p.returncode})")
        continue
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
    took = time.time() - killed_at
    with open(metrics) as f:
        last = [l.split(",") for l in f.read().splitlines()[1:] if l.startswith(("train,", "search,"))][-1:]
    step = int(last[0][1]) if last else 0
    where = "checkpoint write" if moment == "write" else ("search window" if step in search_steps else "training step")
    kills.append((step, where))
    check(p.returncode != 0 and took < 15 and ("killed" in (err + out).lower() or "signal 9" in err + out),
          f"kill {len(kills)} (rank pid {victim}, at step {step}, {where}): the job ended in {took:.1f} s "
          f"with a message (rc {p.returncode})")
    ck = newest("k")
    if ck:  # it must load: the next attempt resumes from it (and fails the test if it cannot)
        with h5py.File(ck, "r") as f:
            ok = "model" in f and "checksum" in f.attrs
        check(ok, f"kill {len(kills)}: the newest checkpoint {os.path.basename(ck)} is whole")
    if moment == "write":
        check(bool(glob.glob(f"{WORK}/k/*.h5.tmp")), f"kill {len(kills)}: the killed write left its temporary")

check(len(kills) >= 5, f"{len(kills)} kills: {kills}")
check(not glob.glob(f"{WORK}/k/*.h5.tmp"), "the resumed run removed the temporaries of killed checkpoint writes")
check(any(w == "checkpoint write" for _, w in kills), "one kill landed inside a checkpoint write")
check(any(w == "search window" for _, w in kills), "a kill landed inside a search window")
fa, fb = f"{WORK}/ref/ckpt_{STEPS:08d}.h5", f"{WORK}/k/ckpt_{STEPS:08d}.h5"
if os.path.exists(fb):
    same = True
    for g in ("model", "optimizer"):
        a, b = tensors(fa, g), tensors(fb, g)
        same &= sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)
    check(same, f"after {len(kills)} kills and resumes: final weights and moments equal the uninterrupted run's bit for bit")
else:
    check(False, "the killed run reached its final checkpoint")
H.finish("kill -9")
