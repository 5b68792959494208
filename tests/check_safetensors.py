#!/usr/bin/python3
"""safetensors in and out (src/io/safetensors.c, weights.c; docs/weights.md):
  * export writes the reference's names: the file loads into tests/reference/epvdit.py
    with strict=True and gives entprog predict's eps_hat (rel 2e-6: the C model in
    fp32 against the reference in float64, the tolerance of check_reference.py);
  * export -> train.init (and -> predict --weights) is bit-identical, fp32 and bf16
    (bf16: round to nearest even, checked against numpy), --ema exports /ema;
  * bad files are refused with the file's and the tensor's name and nothing is
    written: wrong shape, dtype, missing or extra tensor, truncated data, lying
    offsets (overlap, out of range, wrong size), huge or too long header, bad
    JSON, NaN/Inf, metadata shape disagreeing with the model.
Usage: check_safetensors.py ENTPROG FIXTURES DECK WORKDIR"""
import json
import os
import shutil
import struct
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
import epvdit  # noqa: E402
import safetensors_np as stnp  # noqa: E402
from e2e import Harness  # noqa: E402

ENTPROG, FIX, DECK, WORK = sys.argv[1], os.path.abspath(sys.argv[2]), os.path.abspath(sys.argv[3]), sys.argv[4]
shutil.rmtree(WORK, ignore_errors=True)  # a fresh folder: a run's out_dir must not hold an earlier run's checkpoints
os.makedirs(WORK)
H = Harness(ENTPROG, WORK)
run, check = H.run, H.check
W_H5 = f"{FIX}/tiny_weights.h5"
TOL_OUT = 2e-6
P = lambda name: os.path.join(WORK, name)  # noqa: E731


def h5_model(path, group="model"):
    with h5py.File(path, "r") as f:
        return {k: f[group][k][()] for k in f[group]}


def shape_of(path):
    with h5py.File(path, "r") as f:
        return {k: int(f.attrs[k]) for k in ("C", "H", "W", "p", "D", "NH", "L", "mlp_ratio", "Cp", "s", "Cg")}


# 1. export -> the PyTorch reference, strict, same prediction as entprog predict
run("export", "--ckpt", W_H5, "--out", P("w.safetensors"))
sd, meta = stnp.load(P("w.safetensors"))
h5w = h5_model(W_H5)
check(list(sd) == list(epvdit.expected_param_shapes({**shape_of(W_H5)})) or set(sd) == set(h5w),
      "export names every parameter as docs/model.md does")
check(all(np.array_equal(sd[k], h5w[k]) for k in h5w), "fp32 export holds the weights bit for bit")
cfg = {k: int(meta[k]) for k in ("F", "C", "H", "W", "p", "D", "NH", "L", "mlp_ratio", "Cp", "s", "Cg")}
check(cfg == {**shape_of(W_H5), "F": cfg["F"]}, f"metadata holds the model shape: {cfg}")
model = epvdit.EPVDiT(**cfg).double()
res = model.load_state_dict({k: torch.from_numpy(v).double() for k, v in sd.items()}, strict=True)
check(not res.missing_keys and not res.unexpected_keys, "load_state_dict(strict=True) accepts the export")
for case in ("video", "video_drop", "image"):
    inp = f"{FIX}/{case}_in.h5"
    run("predict", "--weights", P("w.safetensors"), "--inputs", inp, "--out", P(f"pred_{case}.h5"))
    run("predict", "--weights", W_H5, "--inputs", inp, "--out", P(f"pred_{case}_h5.h5"))
    with h5py.File(inp, "r") as f:
        x, t, ref, pose = (torch.from_numpy(f[k][()]) for k in ("x", "t", "ref", "pose"))
        dr, dp = (torch.from_numpy(f[k][()].astype(bool)) for k in ("drop_ref", "drop_pose"))
    m = epvdit.EPVDiT(**{**cfg, "F": x.shape[1]}).double()
    m.load_state_dict({k: torch.from_numpy(v).double() for k, v in sd.items()}, strict=True)
    with torch.no_grad():
        want = m(x.double(), t.long(), ref.double(), pose.double(), dr, dp).numpy()
    with h5py.File(P(f"pred_{case}.h5"), "r") as f, h5py.File(P(f"pred_{case}_h5.h5"), "r") as g:
        got, got_h5 = f["eps_hat"][()], g["eps_hat"][()]
    rel = float(np.abs(got - want).max() / np.abs(want).max())
    check(rel <= TOL_OUT, f"{case}: entprog predict from the export vs the reference on it: rel err {rel:.2e} <= {TOL_OUT:g}")
    check(np.array_equal(got, got_h5), f"{case}: predict --weights .safetensors == .h5, bit for bit")

# 2. round trips: export -> train.init -> checkpoint, bit for bit (fp32; bf16 as rounded)
run("datagen", DECK)


def init_from(path, out):
    run("train", DECK, "--set", f"train.init={path}", "--set", "train.steps=0", "--set", f"train.out_dir={out}",
        "--set", "train.val_every=0")
    return h5_model(P(f"{out}/ckpt_00000000.h5"))


got = init_from(P("w.safetensors"), "rt32")
check(all(np.array_equal(got[k], h5w[k]) for k in h5w), "export -> train.init: every weight bit-identical (fp32)")


def bf16_round(a):
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return (u.astype(np.uint32) << 16).view(np.float32)


run("export", "--ckpt", W_H5, "--out", P("w16.safetensors"), "--dtype", "bf16")
with open(P("w16.safetensors"), "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    hdr = json.loads(f.read(n))
check(all(e["dtype"] == "BF16" for k, e in hdr.items() if k != "__metadata__"), "--dtype bf16 writes BF16 tensors")
sd16, _ = stnp.load(P("w16.safetensors"))
check(all(np.array_equal(sd16[k], bf16_round(h5w[k])) for k in h5w), "bf16 export is fp32 rounded to nearest even")
got = init_from(P("w16.safetensors"), "rt16")
check(all(np.array_equal(got[k], sd16[k]) for k in h5w), "bf16 export -> train.init: bit-identical to the bf16 values")
run("export", "--ckpt", P("w.safetensors"), "--out", P("w_again.safetensors"))
check(open(P("w.safetensors"), "rb").read() == open(P("w_again.safetensors"), "rb").read(),
      "safetensors -> export -> the same bytes")

# --ema: a checkpoint with EMA weights exports them
run("train", DECK, "--set", "train.steps=2", "--set", "train.ema=0.5", "--set", "train.out_dir=ema",
    "--set", "train.val_every=0")
run("export", "--ckpt", P("ema/ckpt_00000002.h5"), "--out", P("ema.safetensors"), "--ema")
ema, _ = stnp.load(P("ema.safetensors"))
want = h5_model(P("ema/ckpt_00000002.h5"), "ema")
check(all(np.array_equal(ema[k], want[k]) for k in want), "--ema exports /ema bit for bit")
p = run("export", "--ckpt", W_H5, "--out", P("noema.safetensors"), "--ema", ok=False)
check(p.returncode != 0 and "no /ema" in p.stderr and not os.path.exists(P("noema.safetensors")),
      "--ema on a file without EMA is refused")

# 3. bad files: refused with the file's and the tensor's name, nothing written
good = {k: sd[k] for k in sd}
names = list(good)
last = names[-1]


def bad(label, path, needles, via="export"):
    if via == "export":
        out = P("bad_out.safetensors")
        p = run("export", "--ckpt", path, "--out", out, ok=False)
        written = os.path.exists(out) or os.path.exists(out + ".tmp")
    else:  # train.init: no checkpoint may appear
        p = run("train", DECK, "--set", f"train.init={path}", "--set", "train.steps=0", "--set",
                "train.out_dir=bad_run", "--set", "train.val_every=0", ok=False)
        written = os.path.exists(P("bad_run/ckpt_00000000.h5"))
    msg = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
    missing = [n for n in needles + [os.path.basename(path)] if n not in p.stderr]
    check(p.returncode != 0 and not missing and not written, f"{label}: refused ({msg}){' MISSING ' + str(missing) if missing else ''}")


def write(name, tensors=None, meta=None, dtypes=None, edit=None, header_len=None, cut=0):
    h, d = stnp.header_and_data(tensors if tensors is not None else good, meta if meta is not None else meta0, dtypes)
    if edit:
        edit(h)
    path = P(name)
    stnp.dump_raw(path, h, d[:len(d) - cut] if cut else d, header_len)
    return path


meta0 = dict(meta)
wrong = dict(good)
wrong["x_embed.proj.weight"] = good["x_embed.proj.weight"].reshape(good["x_embed.proj.weight"].shape[0], -1)
bad("wrong shape", write("b_shape.safetensors", wrong), ["'x_embed.proj.weight'", "shape"])
bad("wrong dtype", write("b_dtype.safetensors", {**good, "final.ada.bias": good["final.ada.bias"].astype(np.int32)},
                         dtypes={"final.ada.bias": "I32"}), ["'final.ada.bias'", "dtype I32"])
bad("missing tensor", write("b_missing.safetensors", {k: v for k, v in good.items() if k != "blocks.1.mlp.fc2.bias"}),
    ["lacks tensor 'blocks.1.mlp.fc2.bias'"])
bad("extra tensor", write("b_extra.safetensors", {**good, "blocks.3.ada.weight": good["blocks.0.ada.weight"]}),
    ["'blocks.3.ada.weight'", "not a parameter"])
bad("truncated data", write("b_trunc.safetensors", cut=16), [f"'{last}'", "truncated"])


def overlap(h):
    b, e = h[names[5]]["data_offsets"]
    h[names[6]]["data_offsets"] = [b + 4, b + 4 + (h[names[6]]["data_offsets"][1] - h[names[6]]["data_offsets"][0])]


bad("overlapping offsets", write("b_overlap.safetensors", edit=overlap), [f"'{names[5]}'", f"'{names[6]}'", "overlap"])


def out_of_range(h):
    b, e = h[names[3]]["data_offsets"]
    h[names[3]]["data_offsets"] = [b + 10 ** 9, e + 10 ** 9]


bad("offsets out of range", write("b_range.safetensors", edit=out_of_range), [f"'{names[3]}'", "past the end"])


def wrong_size(h):
    b, e = h[names[2]]["data_offsets"]
    h[names[2]]["data_offsets"] = [b, e - 4]


bad("offsets of the wrong size", write("b_size.safetensors", edit=wrong_size), [f"'{names[2]}'", "data_offsets"])
bad("huge header length", write("b_huge.safetensors", header_len=1 << 40), ["header length", "limit"])
bad("header longer than the file", write("b_long.safetensors", header_len=50 << 20), ["header length", "does not fit"])
with open(P("b_json.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", 16) + b'{"a": [1, 2,  }' + b"\0" * 8)
bad("header not JSON", P("b_json.safetensors"), ["not valid JSON"])
nan = {k: v.copy() for k, v in good.items()}
nan[last][-1] = np.nan
bad("NaN in the last tensor", write("b_nan.safetensors", nan), [f"'{last}'", "NaN"])
bad("NaN: train.init loads nothing and writes no checkpoint", P("b_nan.safetensors"), [f"'{last}'", "NaN"], via="train")
inf = {k: v.copy() for k, v in good.items()}
inf["blocks.2.attn_t.qkv.weight"][3, 1] = -np.inf
bad("Inf", write("b_inf.safetensors", inf), ["'blocks.2.attn_t.qkv.weight'", "Inf"])
bad("metadata shape disagrees (train.init)", write("b_meta.safetensors", meta={**meta0, "NH": "4"}), ["NH = 4"], via="train")
p = run("predict", "--weights", write("b_nometa.safetensors", meta={}), "--inputs", f"{FIX}/video_in.h5", "--out",
        P("nometa.h5"), ok=False)
check(p.returncode != 0 and "no __metadata__" in p.stderr, "predict needs the shape in the metadata, and says so")
H.finish("safetensors")
