#!/usr/bin/env python3
"""Compares two training runs (tools/same_as_rev.sh): the deterministic
columns of metrics.csv, and every dataset of the last checkpoint, exactly.
The Ent-Prog progress record holds wall-clock seconds (train_s), so it is
compared without them; its format may differ between versions (a positional
vector before issue 11, named attributes after), so both forms are read."""
import csv, glob, os, sys
import h5py, numpy as np

name, a, b = sys.argv[1:4]
COLS = ["kind", "step", "loss", "grad_norm", "lr", "stage", "m"]

def rows(d):
    with open(os.path.join(d, "metrics.csv")) as f:
        return [[r[c] for c in COLS] for r in csv.DictReader(f)]

SCALARS = ["stage", "m", "searching", "search_end", "n_cand", "probe_last", "train_s"]
VECTORS = ["cand", "drop", "cost", "count"]

def progress(f):
    """The progress record by name, from either form; train_s (wall time) left out."""
    out = {}
    if "schedule/state" in f:
        for k in SCALARS + VECTORS:
            out[k] = np.asarray(f["schedule/state/" + k][()]).ravel()
    elif "schedule/progress" in f:
        v = f["schedule/progress"][0]
        for i, k in enumerate(SCALARS):
            out[k] = v[i:i + 1]
        for j, k in enumerate(VECTORS):
            out[k] = v[8 + j::4][:8]
    out.pop("train_s", None)
    return out

def datasets(path):
    out = {}
    with h5py.File(path, "r") as f:
        def visit(n, o):
            if isinstance(o, h5py.Dataset) and not n.startswith("schedule/progress") and not n.startswith("schedule/state"):
                out[n] = o[()]
        f.visititems(visit)
    return out

ra, rb = rows(a), rows(b)
bad = []
if len(ra) != len(rb):
    bad.append(f"metrics.csv: {len(ra)} rows against {len(rb)}")
for i, (x, y) in enumerate(zip(ra, rb)):
    if x != y:
        bad.append(f"metrics.csv row {i + 2}: {x} against {y}")
        break
ca, cb = sorted(glob.glob(os.path.join(a, "ckpt_*.h5"))), sorted(glob.glob(os.path.join(b, "ckpt_*.h5")))
if [os.path.basename(p) for p in ca] != [os.path.basename(p) for p in cb]:
    bad.append(f"checkpoints {[os.path.basename(p) for p in ca]} against {[os.path.basename(p) for p in cb]}")
else:
    da, db = datasets(ca[-1]), datasets(cb[-1])
    if sorted(da) != sorted(db):
        bad.append(f"datasets differ: {sorted(set(da) ^ set(db))}")
    for k in sorted(set(da) & set(db)):
        x, y = da[k], db[k]
        same = (x == y) if isinstance(x, bytes) else (np.shape(x) == np.shape(y) and np.array_equal(
            np.asarray(x).view(np.uint8), np.asarray(y).view(np.uint8)) if np.asarray(x).dtype == np.asarray(y).dtype
            else False)
        if not same:
            bad.append(f"{os.path.basename(ca[-1])}: /{k} differs")
    with h5py.File(ca[-1], "r") as fa, h5py.File(cb[-1], "r") as fb:
        pa, pb = progress(fa), progress(fb)
    if sorted(pa) != sorted(pb) or any(not np.array_equal(pa[k], pb[k]) for k in pa):
        bad.append(f"Ent-Prog progress differs: {pa} against {pb}")
if bad:
    print(f"{name}: DIFFERENT\n  " + "\n  ".join(bad))
    sys.exit(1)
print(f"{name}: same ({len(ra)} metrics rows: losses, gradient norms, lr, stage, m; "
      f"{len(da)} datasets and the Ent-Prog progress of {os.path.basename(ca[-1])} bit for bit)")
