#!/usr/bin/python3
"""OpenBLAS core choice (src/core/blas_core.c). On a CPU OpenBLAS does not
know it falls back to SSE3 kernels ("Prescott"), ~3x slower; entprog then sets
OPENBLAS_CORETYPE and restarts itself. Checks: with OPENBLAS_CORETYPE unset the
core in use has the CPU's vector instructions (on a CPU that OpenBLAS
misdetects, as this project's development VM, the old build fails here); a
user's OPENBLAS_CORETYPE is kept; the core is stored in the checkpoint.
Usage: check_blas_core.py ENTPROG DECK WORKDIR"""
import os
import re
import shutil
import sys

import h5py
from e2e import Harness

ENTPROG, DECK, WORK = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3]
shutil.rmtree(WORK, ignore_errors=True)  # a rerun finds no earlier checkpoints
os.makedirs(WORK)
H = Harness(ENTPROG, WORK)
OLD = {"prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "katmai", "coppermine", "northwood", "banias",
       "sandybridge"}

with open("/proc/cpuinfo") as f:
    flags = set(next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), []))
has_avx2 = {"avx2", "fma"} <= flags
print(f"CPU: avx2+fma {has_avx2}, avx512 {'avx512f' in flags}")


def train(out, env):
    p = H.run("train", DECK, "--set", f"train.out_dir={out}", "--set", "train.steps=2", "--set", "train.val_every=0",
              env=env)
    m = re.search(r"OpenBLAS (\w+)", p.stdout)
    H.check(m is not None, f"{out}: the backend line names the OpenBLAS core")
    core = m.group(1) if m else "?"
    with h5py.File(os.path.join(WORK, out, "ckpt_00000002.h5")) as f:
        numerics = f["state"].attrs["numerics"]
        numerics = numerics.decode() if isinstance(numerics, bytes) else str(numerics)
    H.check(f"blas={core}" in numerics, f"{out}: checkpoint numerics '{numerics}' records blas={core}")
    return core


H.run("datagen", DECK)
os.environ.pop("OPENBLAS_CORETYPE", None)
core = train("auto", {})
if has_avx2:
    H.check(core.lower() not in OLD, f"OPENBLAS_CORETYPE unset on a CPU with AVX2: core {core} uses it")
else:
    print(f"(no AVX2 on this CPU: core {core} is OpenBLAS's own choice, nothing to correct)")
H.check(train("user", {"OPENBLAS_CORETYPE": "Prescott"}) == "Prescott", "a user's OPENBLAS_CORETYPE=Prescott is kept")
H.finish("OpenBLAS core")
