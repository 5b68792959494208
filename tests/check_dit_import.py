#!/usr/bin/python3
"""entprog import-dit against DiT itself (tests/reference/dit.py, written from
the DiT paper): a small random DiT (every tensor non-zero, learned sigma, 10
labels + null) goes through the .pt -> safetensors converter in tools/ and
import-dit; then entprog predict, with the reference and the pose dropped,
must give DiT's noise half for the same x, t and label.
  * image mode (F = 1): eps_hat == DiT(x, t, y)[:, :C] for labels 7 and null;
    with the pose given (not dropped) too, as the guider's last Linear is zero;
  * video (F = 4), frame by frame: with model.frame_embed = temporal (the
    frame embedding only enters the temporal attention, gated by zero),
    eps_hat[:, f] == DiT(x[:, f], t, y) itself; with the contract's default
    (input: the fixed embedding added to every token, not a parameter, so no
    initialisation can remove it) eps_hat[:, f] == DiT with the frame
    embedding of f added to its tokens, and != plain DiT;
tolerance: relative 2e-6 of max|eps|, entprog in fp32 against DiT in float64
(the tolerance of check_reference.py for the same operations). A deck whose
width does not fit is refused naming the tensor.
Usage: check_dit_import.py ENTPROG CONVERTER WORKDIR"""
import math
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "reference"))
import dit as ditref  # noqa: E402
from e2e import Harness  # noqa: E402

ENTPROG, CONVERT, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
DECK = os.path.join(HERE, "..", "inputs", "tiny.ini")
shutil.rmtree(WORK, ignore_errors=True)  # a fresh folder: a run's out_dir must not hold an earlier run's checkpoints
os.makedirs(WORK)
H = Harness(ENTPROG, WORK)
run, check = H.run, H.check
P = lambda n: os.path.join(WORK, n)  # noqa: E731
TOL = 2e-6
C, HW, p, D, NH, L, NCLS, Cp, s = 3, 16, 2, 32, 2, 3, 10, 3, 2  # inputs/tiny.ini's model

gen = torch.Generator().manual_seed(13)
net = ditref.randomize(ditref.DiT(input_size=HW, patch_size=p, in_channels=C, hidden_size=D, depth=L, num_heads=NH,
                                  num_classes=NCLS, learn_sigma=True), gen).double()
torch.save({k: v.float() for k, v in net.state_dict().items()}, P("dit.pt"))
subprocess.run([sys.executable, CONVERT, P("dit.pt"), P("dit.safetensors")], check=True)
out = run("import-dit", DECK, "--dit", P("dit.safetensors"), "--out", P("ep7.safetensors"), "--label", "7").stdout
check("learned sigma" in out, f"import-dit reports the learned-sigma DiT: {out.strip()}")
run("import-dit", DECK, "--dit", P("dit.safetensors"), "--out", P("epnull.safetensors"))


def frame_embed(f):
    """docs/model.md item 3: DiT's 1-D sin-cos helper on the frame index, D channels (sin half first)."""
    w = 1.0 / 10000.0 ** (np.arange(D // 2, dtype=np.float64) / (D / 2.0))
    return torch.from_numpy(np.concatenate([np.sin(f * w), np.cos(f * w)]))


def compare(label, weights, y, F, drop_pose, fe_mode="input"):
    B = 3
    g = torch.Generator().manual_seed(100 + F + drop_pose)
    x = torch.randn(B, F, C, HW, HW, generator=g)
    t = torch.tensor([0, 437, 999], dtype=torch.int32)
    inp = P(f"in_{label}.h5")
    with h5py.File(inp, "w") as f:
        f["x"] = x.numpy()
        f["t"] = t.numpy()
        f["ref"] = torch.randn(B, C, HW, HW, generator=g).numpy()
        f["pose"] = torch.rand(B, F, Cp, s * HW, s * HW, generator=g).numpy()
        f["drop_ref"] = np.ones(B, np.uint8)
        f["drop_pose"] = np.full(B, drop_pose, np.uint8)
    run("predict", "--weights", P(weights), "--inputs", inp, "--out", P(f"out_{label}.h5"))
    with h5py.File(P(f"out_{label}.h5"), "r") as f:
        got = f["eps_hat"][()]
    worst, plain = 0.0, 0.0
    with torch.no_grad():
        for fr in range(F):
            added = F > 1 and fe_mode == "input"
            extra = frame_embed(fr)[None, None].expand(B, (HW // p) ** 2, D) if added else None
            want = net(x[:, fr].double(), t.long(), torch.full((B,), y), extra)[:, :C].numpy()
            worst = max(worst, float(np.abs(got[:, fr] - want).max() / np.abs(want).max()))
            if added:
                dit = net(x[:, fr].double(), t.long(), torch.full((B,), y))[:, :C].numpy()
                plain = max(plain, float(np.abs(got[:, fr] - dit).max() / np.abs(dit).max()))
    note = f" (against DiT without the frame embedding: {plain:.2e})" if added else ""
    check(worst <= TOL, f"{label}: eps_hat vs DiT's noise half, frame by frame: rel err {worst:.2e} <= {TOL:g}{note}")
    if added:
        check(plain > 100 * TOL, f"{label}: the input frame embedding makes it differ from plain DiT ({plain:.2e})")


compare("image_label7", "ep7.safetensors", 7, 1, 1)
compare("image_null", "epnull.safetensors", NCLS, 1, 1)
compare("image_pose_kept", "ep7.safetensors", 7, 1, 0)
compare("video_label7", "ep7.safetensors", 7, 4, 1)

# model.frame_embed = temporal: recorded in the imported weights, plain DiT frame by frame
with open(DECK) as f:
    text = f.read().replace("[model]\n", "[model]\nframe_embed = temporal\n", 1)
with open(P("temporal.ini"), "w") as f:
    f.write(text)
run("import-dit", P("temporal.ini"), "--dit", P("dit.safetensors"), "--out", P("ep7t.safetensors"), "--label", "7")
compare("video_label7_frame_embed_temporal", "ep7t.safetensors", 7, 4, 1, "temporal")
compare("video_label7_frame_embed_temporal_pose_kept", "ep7t.safetensors", 7, 4, 0, "temporal")

# the imported weights train: train.init takes them (one step)
run("datagen", DECK)
run("train", DECK, "--set", f"train.init={P('ep7.safetensors')}", "--set", "train.steps=1", "--set",
    "train.out_dir=ft", "--set", "train.val_every=0")
check(os.path.exists(P("ft/ckpt_00000001.h5")), "train.init from the imported weights trains a step")

with open(DECK) as f:
    text = f.read().replace("D = 32", "D = 64", 1)
with open(P("wide.ini"), "w") as f:
    f.write(text)
pr = run("import-dit", P("wide.ini"), "--dit", P("dit.safetensors"), "--out", P("wide.safetensors"), ok=False)
check(pr.returncode != 0 and "'x_embedder.proj.weight'" in pr.stderr and "dit.safetensors" in pr.stderr
      and not os.path.exists(P("wide.safetensors")), f"a deck of another width is refused: {pr.stderr.strip()}")
pr = run("import-dit", DECK, "--dit", P("dit.safetensors"), "--out", P("l11.safetensors"), "--label", "11", ok=False)
check(pr.returncode != 0 and "label 11" in pr.stderr, "a label outside the table is refused")
H.finish("DiT import")
