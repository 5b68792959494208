#!/usr/bin/python3
"""Memory plans of Ent-Prog stages at the paper shape (issue 15, item 5): for
each m, the top-m blocks of a real CEI ranking next to the contiguous best
case (the m deepest blocks, bench_step --freeze L-m), as planned by
`bench_step --plan` (no step is run, nothing is allocated: plans, not
measurements). Writes benchmarks/results/entprog_plan.md.

  benchmarks/entprog_plan.py BUILD_DIR [--ckpt CKPT] [--backend cpu|cuda] [--deck inputs/paper.ini]

The ranking is /schedule/order of CKPT (a checkpoint of a model with the
deck's L blocks, e.g. one `entprog cei` or an Ent-Prog run wrote). Without
--ckpt it is made here: a narrow model with the paper's L (the tiny deck's
width) pre-trained briefly on the tiny synthetic data, then scored by
`entprog cei`; that ranking is real for that model, not the paper model's,
and the page says so."""
import argparse
import os
import re
import subprocess
import sys
import tempfile

import h5py

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("build")
ap.add_argument("--ckpt")
ap.add_argument("--backend", default="cpu")
ap.add_argument("--deck", default=os.path.join(ROOT, "inputs/paper.ini"))
ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks/results/entprog_plan.md"))
a = ap.parse_args()
entprog, bench = os.path.join(a.build, "entprog"), os.path.join(a.build, "bench_step")


def sh(*args, cwd=None):
    p = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True)
    if p.returncode:
        sys.exit(f"failed: {' '.join(args)}\n{p.stdout}\n{p.stderr}")
    return p.stdout


L = int(re.search(r"L=(\d+)", sh(bench, a.deck, "--backend", a.backend, "--plan")).group(1))
if a.ckpt:
    source = f"`/schedule/order` of `{a.ckpt}`"
    ckpt = os.path.abspath(a.ckpt)
else:
    work = tempfile.mkdtemp(prefix="entprog_plan_")
    tiny = os.path.join(work, "deep.ini")  # the tiny deck with the paper's depth
    text = open(os.path.join(ROOT, "inputs/tiny.ini")).read()
    open(tiny, "w").write(re.sub(r"(?m)^L = \d+", f"L = {L}", text))
    steps = 200
    sets = ["--set", "train.out_dir=pre", "--set", f"train.steps={steps}", "--set", "train.val_every=0",
            "--set", "train.ckpt_every=0"]
    sh(entprog, "datagen", tiny, cwd=work)
    sh(entprog, "train", tiny, *sets, cwd=work)
    ckpt = os.path.join(work, f"pre/ckpt_{steps:08d}.h5")
    sh(entprog, "cei", tiny, "--n", "64", "--ckpt", ckpt, cwd=work)
    source = (f"CEI (64 probe tuples, `entprog cei`) of a narrow {L}-block model (`inputs/tiny.ini` with "
              f"model.L = {L}) pre-trained {steps} steps on the tiny synthetic data: a real ranking of a trained "
              f"model with the paper's depth, not of the paper model itself")
with h5py.File(ckpt, "r") as f:
    if "schedule/order" not in f:
        sys.exit(f"{ckpt} holds no /schedule/order (run entprog cei on it first)")
    order = [int(b) for b in f["schedule/order"][()]]
if len(order) != L:
    sys.exit(f"the ranking has {len(order)} blocks, the deck {L}")


def plan(*extra):
    out = sh(bench, a.deck, "--backend", a.backend, "--plan", *extra)
    return {k: v for k, v in re.findall(r"(\w+)=([^\s]+)", out)}


grid = sorted({(L * j + 3) // 4 for j in range(1, 5)} | {1, 2, 4})
rows = []
for m in grid:
    top = order[:m]
    c = plan("--blocks", ",".join(str(b) for b in range(L - m, L)))  # what --freeze L-m trains, input side frozen
    r = plan("--blocks", ",".join(map(str, top)))
    rows.append((m, sorted(top), r["first_bwd"], float(r["acts_gib"]), float(r["total_gib"]), c["first_bwd"],
                 float(c["acts_gib"]), float(c["total_gib"])))
full = plan()
with open(a.out, "w") as f:
    f.write(f"# Ent-Prog stage memory at the paper shape: plans, not measurements\n\n")
    f.write(f"Command: `benchmarks/entprog_plan.py {a.build} --backend {a.backend}"
            f"{' --ckpt ' + a.ckpt if a.ckpt else ''}` (writes this page).\n\n")
    f.write(f"Shape: `{os.path.relpath(a.deck, ROOT)}`, B={full['B']} F={full['F']} S={full['S']} D={full['D']} L={L}; "
            f"plans of `bench_step --plan --backend {a.backend}` (parameters, gradients, AdamW moments, activations, "
            f"backward scratch as the backend would allocate them; nothing is run). "
            + ("The CPU backend's plan: its attention keeps more state than the CUDA backend's, so the GiB differ "
               "from a GPU's (run with --backend cuda on a CUDA build for those); the comparison between the two "
               "columns holds for both. " if a.backend == "cpu" else "")
            + f"Full fine-tuning (every tensor trains): {float(full['total_gib']):.2f} GiB.\n\n")
    f.write(f"Ranking: {source}. Order, highest first: {order}.\n\n")
    f.write("Top-m of the ranking = what an Ent-Prog stage with m blocks trains (output layer too, input side "
            "frozen); contiguous = the m deepest blocks (as `--freeze L-m`, but with the input side frozen "
            "here too), the best case `bench_step --freeze` showed before. Backward keeps activations from the earliest trainable block on.\n\n")
    f.write("| m | top-m blocks (sorted) | backward from | acts GiB | total GiB | contiguous: backward from | acts GiB | "
            "total GiB | top-m / contiguous |\n|---|---|---|---|---|---|---|---|---|\n")
    for m, top, fb, ra, rt, cb, ca, ct in rows:
        f.write(f"| {m} | {','.join(map(str, top))} | {fb} | {ra:.2f} | {rt:.2f} | {cb} | {ca:.2f} | {ct:.2f} | "
                f"{rt / ct:.2f}x |\n")
print(open(a.out).read())
