#!/usr/bin/env python3
"""Compares the train-loss curves of two entprog metrics.csv files (the same
deck on two backends): prints the losses at a few steps and the worst
relative gap, exits 1 when the gap exceeds TOL or the curves differ in
length. Standard library only (it also runs on the GPU machine).

    check_curves.py REFERENCE.csv OTHER.csv TOL"""
import csv
import sys


def losses(path):
    with open(path) as f:
        return {int(r["step"]): float(r["loss"]) for r in csv.DictReader(f) if r["kind"] == "train"}


ref, other, tol = losses(sys.argv[1]), losses(sys.argv[2]), float(sys.argv[3])
if not ref or sorted(ref) != sorted(other):
    print(f"FAIL: steps differ ({len(ref)} vs {len(other)} train rows)")
    sys.exit(1)
worst = max(abs(other[s] - ref[s]) / ref[s] for s in ref)
steps = sorted(ref)
for s in steps[:: max(1, len(steps) // 6)] + [steps[-1]]:
    print(f"step {s:5d}  {ref[s]:.6f}  {other[s]:.6f}")
ok = worst <= tol
print(f"{'ok' if ok else 'FAIL'}: worst relative gap {worst:.2e} (tol {tol:.0e}); "
      f"loss {ref[steps[0]]:.4f} -> {ref[steps[-1]]:.4f} (reference), -> {other[steps[-1]]:.4f}")
sys.exit(0 if ok else 1)
