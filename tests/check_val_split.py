#!/usr/bin/python3
"""Validation (issue 15): the validation samples (clips, t, noise) depend on
the data only, not on train.seed, so runs of different seeds are validated on
the same set; and a run that keeps EMA weights (train.ema > 0) validates the
EMA weights. Usage: check_val_split.py ENTPROG DECK WORKDIR"""
import os
import shutil
import sys

from e2e import Harness

ENTPROG, DECK, WORK = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
H = Harness(ENTPROG, WORK)
run, check = H.run, H.check
S = lambda kv: ["--set", kv]


def val_losses(folder):
    with open(os.path.join(WORK, folder, "metrics.csv")) as f:
        head = f.readline().strip().split(",")
        return [r.split(",")[head.index("loss")] for r in f.read().splitlines() if r.startswith("val,")]


shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
run("datagen", DECK)
# a trained start, with EMA weights that differ from the live ones
run("train", DECK, *S("train.out_dir=start"), *S("train.steps=6"), *S("train.ema=0.5"), *S("train.val_every=6"),
    *S("train.ckpt_every=0"))
start = "start/ckpt_00000006.h5"
check(os.path.exists(os.path.join(WORK, start)), "the start checkpoint exists")

# 1. (almost) the same weights (lr = 1e-30: the updates vanish against the weights), seeds 1, 2 and 7: the
# same validation losses (the old set, drawn with train.seed, differed by percents)
frozen = [*S(f"train.init={start}"), *S("train.lr=1e-30"), *S("train.ema=0"), *S("train.steps=2"),
          *S("train.val_every=1"), *S("train.ckpt_every=0"), *S("train.val_batches=2")]
losses = {}
for seed in (1, 2, 7):
    run("train", DECK, *frozen, *S(f"train.out_dir=seed{seed}"), *S(f"train.seed={seed}"))
    losses[seed] = val_losses(f"seed{seed}")
close = lambda a, b: abs(float(a) - float(b)) <= 1e-6 * abs(float(b))
check(len(losses[1]) == 2 and close(losses[1][0], losses[1][1]), f"lr = 1e-30: the validation loss does not move {losses[1]}")
check(all(close(a, b) for s in (2, 7) for a, b in zip(losses[s], losses[1])) and len(losses[2]) == len(losses[7]) == 2,
      f"train.seed 1, 2, 7 validate on the same samples: {losses}")

# 2. the start run validated its EMA weights: the EMA exported and validated as live weights gives the same loss
run("export", "--ckpt", start, "--out", "ema.safetensors", "--ema")
run("export", "--ckpt", start, "--out", "live.safetensors")
for name in ("ema", "live"):
    run("train", DECK, *frozen, *S(f"train.out_dir=as_{name}"), *S(f"train.init={name}.safetensors"),
        *S("train.val_batches=1"))
start_val, ema_val, live_val = val_losses("start")[-1], val_losses("as_ema")[0], val_losses("as_live")[0]
check(not close(ema_val, live_val), f"the EMA and the live weights differ in loss ({ema_val} vs {live_val})")
check(close(start_val, ema_val), f"train.ema > 0 validates the EMA weights: {start_val} (run) == {ema_val} (its EMA)")
H.finish("validation split")
