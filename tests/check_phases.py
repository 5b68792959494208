#!/usr/bin/python3
"""The three training phases of jobs/phases.sh on the tiny deck (docs/phases.md):
each phase starts from the previous phase's final checkpoint of its own arm
(the exported start weights equal it bit for bit, the run was initialised from
them, and what the phase cannot change is still the previous phase's), each
phase has its own setting (pose guider out in phase 1 and trained in phase 2,
image mode then video), phase 3's baseline trains only the temporal attention
and its modulation rows of ada (shift_t, scale_t, gate_t; gate_t leaves 0),
every Ent-Prog run scores CEI for its phase and writes its schedule, a rerun
skips what is done, an interrupted phase resumes bit for bit, and bad settings
stop with a message naming them.
Usage: check_phases.py ENTPROG REPO WORKDIR"""
import configparser
import hashlib
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
import safetensors_np as stnp  # noqa: E402
from e2e import Harness  # noqa: E402

ENTPROG, REPO, WORK = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3])
H = Harness(ENTPROG, WORK)
check = H.check
DECK = f"{REPO}/inputs/tiny.ini"
STEPS = 8
# grid 1,2 of 3 blocks: every Ent-Prog phase leaves at least one block frozen; timing = cost: a deterministic search
SETS = (f"train.steps={STEPS} train.val_every=0 train.ckpt_every=4 train.keep_ckpts=0 train.log_every=100 "
        "entprog.stages=2 entprog.grid=1,2 entprog.search_steps=2 entprog.cei_n=8 entprog.timing=cost "
        "entprog.probe_batches=1")
ARMS = ("entprog", "baseline")
RUNS = ["base"] + [f"p{k}-{a}" for k in (1, 2, 3) for a in ARMS]


def phases(ok=True, **env):
    """jobs/phases.sh on the tiny deck in WORK, one process per run (LAUNCHER=none); stdout + stderr."""
    # phase 3 with weight decay: ada's frozen rows must not decay (the optimizer skips them)
    e = {**os.environ, "ENTPROG": ENTPROG, "LAUNCHER": "none", "PIPE_DIR": "pipe", "SETS": SETS,
         "P3_SETS": "train.weight_decay=0.1", **env}
    p = subprocess.run(["bash", f"{REPO}/jobs/phases.sh", DECK], cwd=WORK, env=e, capture_output=True, text=True)
    if ok and p.returncode != 0:
        sys.exit(f"FAILED: jobs/phases.sh ({env})\n{p.stdout}\n{p.stderr}")
    return p.returncode, p.stdout + p.stderr


def final(run):
    return f"{WORK}/pipe/{run}/ckpt_{STEPS:08d}.h5"


def weights(path):
    if path.endswith(".safetensors"):
        return stnp.load(path)[0]
    with h5py.File(path, "r") as f:
        return {k: f["model"][k][()] for k in f["model"]}


def config(path):
    """The deck a checkpoint ran with (/config, the --set blocks appended), as a ConfigParser."""
    with h5py.File(path, "r") as f:
        text = f["config"][()].decode().rstrip("\0")
    c = configparser.ConfigParser(strict=False, inline_comment_prefixes=(";",), comment_prefixes=("#", ";"))
    c.read_string(text)
    return c


def same(a, b, names):
    return [k for k in names if not np.array_equal(a[k], b[k])]


def digests():
    out = {}
    for run in RUNS:
        d = f"{WORK}/pipe/{run}"
        for n in sorted(os.listdir(d)):
            with open(f"{d}/{n}", "rb") as f:
                out[f"{run}/{n}"] = hashlib.sha256(f.read()).hexdigest()
    return out


shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
_, log = phases()
prev_of = {f"p1-{a}": "base" for a in ARMS}
prev_of.update({f"p{k}-{a}": f"p{k - 1}-{a}" for k in (2, 3) for a in ARMS})
W = {run: weights(final(run)) for run in RUNS}
names = sorted(W["base"])
temporal = [k for k in names if ".attn_t." in k]
pose = [k for k in names if k.startswith("pose_guider.")]

# 1. the handover: each run starts from its own arm's previous final checkpoint
for run in RUNS[1:]:
    start = f"{WORK}/pipe/{run}/start.safetensors"
    S = weights(start)
    check(sorted(S) == names and not same(S, W[prev_of[run]], names),
          f"{run}: start.safetensors holds {prev_of[run]}'s final weights bit for bit")
    c = config(final(run))
    check(c.get("train", "init") == f"pipe/{run}/start.safetensors" and
          f"train: starting {DECK} into pipe/{run}" in log,
          f"{run}: trained from its start weights (train.init = {c.get('train', 'init')})")
    F = c.getint("model", "F")
    check(F == (4 if run.startswith("p3") else 1), f"{run}: model.F = {F} (image phases 1, 2; video phase 3)")
cb = config(final("base"))
check(cb.getfloat("train", "p_drop_ref") == 1 and cb.getfloat("train", "p_drop_pose") == 1 and
      cb.get("train", "init") == "" and cb.getint("model", "F") == 1, "base: image mode from scratch, reference and pose always dropped")

# 2. what each phase may not change is still the previous phase's (no temporal attention in image mode)
for a in ARMS:
    for k in (1, 2):
        run = f"p{k}-{a}"
        bad = same(W[run], W[prev_of[run]], temporal)
        check(not bad, f"{run}: the temporal attention is {prev_of[run]}'s (image mode){' changed: ' + str(bad) if bad else ''}")
    bad = same(W[f"p1-{a}"], W["base"], pose)
    check(not bad, f"p1-{a}: the pose guider is out (p_drop_pose = 1): bit-identical to the base {bad}")
    changed = same(W[f"p2-{a}"], W[f"p1-{a}"], ["pose_guider.zero.weight"])
    check(changed == ["pose_guider.zero.weight"], f"p2-{a}: the pose guider trains in the pose phase")
    check(config(final(f"p1-{a}")).getfloat("train", "p_drop_pose") == 1 and
          config(final(f"p2-{a}")).getfloat("train", "p_drop_pose") == 0.1, f"p1-{a}/p2-{a}: p_drop_pose 1, then the deck's")

# 3. phase 3's baseline (temporal): only attn_t and the temporal rows of each ada may change (chunks 3-5 of
# ada's 9: shift_t, scale_t, gate_t), and only they have optimizer moments. Image training never moves gate_t
# off 0, so without those rows the temporal attention would get a zero gradient and stay as it was.
ada = [k for k in names if k.endswith(".ada.weight") or k.endswith(".ada.bias")]
ada = [k for k in ada if k.startswith("blocks.")]
others = [k for k in names if k not in temporal and k not in ada]
bad = same(W["p3-baseline"], W["p2-baseline"], others)
check(not bad, f"p3-baseline: the {len(others)} non-temporal tensors are bit-identical to the phase start {bad[:3]}")
for k in ada:
    a, b = W["p3-baseline"][k], W["p2-baseline"][k]
    c = a.shape[0] // 9
    rest = np.array_equal(a[:3 * c], b[:3 * c]) and np.array_equal(a[6 * c:], b[6 * c:])
    check(rest and not np.array_equal(a[3 * c:6 * c], b[3 * c:6 * c]),
          f"p3-baseline: {k}: only its temporal rows [{3 * c}, {6 * c}) change (the other six chunks bit-identical)")
with h5py.File(final("p3-baseline"), "r") as f:
    moments = sorted(f["optimizer/m"].keys())
    m_ada = {k: f["optimizer/m"][k][()] for k in moments if k in ada}
check(moments and all(".attn_t." in k or k in ada for k in moments) and sorted(m_ada) == sorted(ada),
      f"p3-baseline: optimizer moments only for attn_t and the blocks' ada ({len(moments)})")
check(all(not v[:v.shape[0] // 9 * 3].any() and not v[v.shape[0] // 9 * 6:].any() for v in m_ada.values()),
      "p3-baseline: ada's moments are zero outside the temporal rows")
bad = same(W["p3-baseline"], W["p2-baseline"], temporal)
check(len(bad) == len(temporal), f"p3-baseline: the temporal attention trains ({len(bad)} of {len(temporal)} tensors changed)")
check(same(W["p3-entprog"], W["p2-entprog"], temporal), "p3-entprog: Ent-Prog's video phase trains temporal attention")

# 4. every Ent-Prog run scored CEI on its own phase and wrote its schedule; frozen blocks stayed
check(log.count("CEI: scoring 3 blocks") == 3, f"a fresh CEI in each of the 3 Ent-Prog phases ({log.count('CEI: scoring 3 blocks')})")
for k in (1, 2, 3):
    run = f"p{k}-entprog"
    with h5py.File(final(run), "r") as f:
        st = f["schedule/stages"][()] if "schedule/stages" in f else np.zeros((0, 5))
        has_cei = "schedule/cei" in f and f["schedule/cei"].shape == (3,)
        order = [int(b) for b in f["schedule/train_order"][()]] if "schedule/train_order" in f else []
    # a supernet window trains its largest candidate: the blocks past the largest m ever named never train
    m_max = int(np.nanmax(st[:, [2] + list(range(3, st.shape[1], 2))])) if len(st) else 3
    check(has_cei and len(st) == 2 and not np.isnan(st[0][4]) and m_max == 2,
          f"{run}: CEI stored, 2 stages, stage 1 searched (m* per stage {[int(r[2]) for r in st]})")
    frozen = [k2 for k2 in names if k2.startswith("blocks.") and int(k2.split(".")[1]) not in order[:m_max]]
    bad = same(W[run], W[prev_of[run]], frozen)
    check(order and frozen and not bad, f"{run}: the {len(frozen)} tensors of never-trained blocks are {prev_of[run]}'s")
    with open(f"{WORK}/pipe/{run}/metrics.csv") as f:
        check(any(l.startswith("probe,") for l in f), f"{run}: metrics.csv has the CE probe rows")

# 5. a rerun trains nothing and leaves every file as it was
before = digests()
_, log2 = phases()
check(log2.count("nothing left to train") == len(RUNS) and " run: " not in log2,
      f"rerun: all {len(RUNS)} runs skipped, no command launched")
check(digests() == before, "rerun: every checkpoint, metrics.csv and start file unchanged")

# 6. bad settings stop with a message naming them
rc, out = phases(ok=False, ARMS="entprog fancy")
check(rc != 0 and "ARMS item 'fancy'" in out, "ARMS=fancy: refused, named")
rc, out = phases(ok=False, P3_SETS="model.F=1")
check(rc != 0 and "phase 3 trains video: model.F = 1" in out, "P3_SETS=model.F=1: refused, named")
rc, out = phases(ok=False, INIT="nowhere.safetensors")
check(rc != 0 and "INIT 'nowhere.safetensors' not found" in out, "INIT that does not exist: refused, named")
st = os.stat(f"{WORK}/pipe/p2-baseline/start.safetensors")
os.utime(f"{WORK}/pipe/p2-baseline/start.safetensors", (st.st_atime, st.st_mtime - 3600))
rc, out = phases(ok=False)
check(rc != 0 and "p2-baseline/start.safetensors is older than" in out,
      "a phase redone after the next one began: refused, named")
os.utime(f"{WORK}/pipe/p2-baseline/start.safetensors", (st.st_atime, st.st_mtime))

# 7. an interrupted phase resumes: phase 2's Ent-Prog run lost its last checkpoint (killed after step 4), phase 3's
# Ent-Prog run never began; the rerun resumes the one, runs the other, and both end as the first time
os.remove(final("p2-entprog"))
shutil.rmtree(f"{WORK}/pipe/p3-entprog")
_, log3 = phases()
check("resuming from pipe/p2-entprog/ckpt_00000004.h5" in log3 and f"starting {DECK} into pipe/p3-entprog" in log3
      and log3.count("nothing left to train") == len(RUNS) - 2,
      "resume: phase 2 Ent-Prog resumed at step 4, phase 3 Ent-Prog started, the other 5 runs skipped")
for run in ("p2-entprog", "p3-entprog"):
    bad = same(weights(final(run)), W[run], names)
    check(not bad, f"{run}: after the resume, the final weights equal the uninterrupted run's {bad[:3]}")

H.finish("phases")
