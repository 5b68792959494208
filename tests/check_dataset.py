#!/usr/bin/python3
"""Checks of `entprog datagen` and of the dataset loader's input validation.

  check_dataset.py datagen  --entprog ENTPROG --work DIR [--mpiexec MPIEXEC]
      runs datagen on a tiny deck twice with one seed (identical files), once
      with another seed (different content), optionally on 2 MPI ranks
      (identical to the serial run), and checks the layout of docs/formats.md,
      value ranges, pose maps, motion and preview.png.
  check_dataset.py badinput --probe TEST_DATASET --work DIR
      writes good and broken dataset files with h5py and checks that
      `test_dataset open` accepts the good ones (same values as numpy) and
      refuses the broken ones with a non-zero exit and a message naming the
      problem.

Runs under /usr/bin/python3 (Debian's h5py and numpy).
"""
import argparse
import os
import shutil
import struct
import subprocess
import sys
import zlib

import h5py
import numpy as np

TINY_DECK = """[model]
F = 4
C = 3
H = 16
W = 16
p = 2
D = 32
NH = 2
L = 3
mlp_ratio = 4
Cp = 3
s = 2
Cg = 8
[data]
dir = data
n_train = 8
n_val = 2
n_test = 2
frames = 12
seed = {seed}
"""
SPLITS = {"train": 8, "val": 2, "test": 2}
T, C, H, W, CP, S = 12, 3, 16, 16, 3, 2

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg, file=sys.stderr)


def run_datagen(entprog, folder, seed, launcher=()):
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    with open(os.path.join(folder, "tiny.ini"), "w") as f:
        f.write(TINY_DECK.format(seed=seed))
    r = subprocess.run(list(launcher) + [entprog, "datagen", "tiny.ini"], cwd=folder,
                       capture_output=True, text=True, timeout=300)
    print(r.stdout, end="")
    if r.returncode != 0:
        print(r.stderr, file=sys.stderr)
        sys.exit(f"entprog datagen failed in {folder} (exit {r.returncode})")
    return os.path.join(folder, "data")


def file_bytes(path):
    with open(path, "rb") as f:
        return f.read()


def same_content(a, b):
    """Every dataset and root attribute equal."""
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        if sorted(fa.keys()) != sorted(fb.keys()) or sorted(fa.attrs.keys()) != sorted(fb.attrs.keys()):
            return False
        for k in fa.attrs:
            if np.any(np.asarray(fa.attrs[k]) != np.asarray(fb.attrs[k])):
                return False
        return all(np.array_equal(fa[k][()], fb[k][()]) for k in fa.keys())


def attr_str(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def check_layout(path, n):
    with h5py.File(path, "r") as f:
        for name, dtype, shape in [("latents", np.float32, (n, T, C, H, W)),
                                   ("pose", np.uint8, (n, T, CP, S * H, S * W)),
                                   ("frames", np.uint8, (n, T, 3, H, W))]:
            check(name in f, f"{path}: no /{name}")
            if name not in f:
                continue
            check(f[name].dtype == dtype, f"{path}: /{name} has dtype {f[name].dtype}, expected {np.dtype(dtype)}")
            check(f[name].shape == shape, f"{path}: /{name} has shape {f[name].shape}, expected {shape}")
        a = f.attrs
        check(int(a.get("format_version", -1)) == 1, f"{path}: format_version {a.get('format_version')}")
        check(attr_str(a.get("latent_space", "")) == "pixel", f"{path}: latent_space {a.get('latent_space')}")
        check(float(a.get("latent_scale", 0)) == 1.0, f"{path}: latent_scale {a.get('latent_scale')}")
        check(float(a.get("fps", 0)) > 0, f"{path}: fps {a.get('fps')}")
        lat, pose, frames = f["latents"][()], f["pose"][()], f["frames"][()]
    check(np.isfinite(lat).all() and lat.min() >= -1 and lat.max() <= 1,
          f"{path}: latents outside [-1,1]: {lat.min()}..{lat.max()}")
    check(np.array_equal(lat, frames.astype(np.float32) / np.float32(127.5) - np.float32(1)),
          f"{path}: latents are not the frames mapped to [-1,1]")
    # Pose maps: some lit pixels in every frame, mostly black, several limb colours.
    lit = pose.max(axis=2) > 0
    frac = lit.reshape(n * T, -1).mean(axis=1)
    check(frac.min() > 0.01, f"{path}: a pose map is (almost) empty: lit fraction {frac.min():.4f}")
    check(frac.max() < 0.5, f"{path}: a pose map is mostly lit: {frac.max():.3f}")
    colours = {tuple(c) for c in pose[0, 0].reshape(3, -1).T[lit[0, 0].reshape(-1)] if c.max() == 255}
    check(len(colours) >= 8, f"{path}: only {len(colours)} saturated pose colours in the first map")
    # Frames: a picture, not flat.
    check(frames.reshape(n * T, -1).std(axis=1).min() > 5, f"{path}: a frame is nearly flat")
    # Motion: consecutive frames differ, but not by much (smooth motion, static backdrop).
    x = frames.astype(np.float32) / 255
    d = np.abs(np.diff(x, axis=1)).mean(axis=(2, 3, 4))  # [n, T-1]
    check(d.min() > 0, f"{path}: two consecutive frames are identical")
    check(d.mean() > 0.002, f"{path}: figures barely move (mean frame difference {d.mean():.4f})")
    check(d.max() < 0.15, f"{path}: jumpy motion (max frame difference {d.max():.4f})")
    far = np.abs(x[:, :1] - x[:, 1:]).mean(axis=(2, 3, 4)).max(axis=1)
    check((far > 1.5 * d.mean(axis=1)).mean() >= 0.5,
          f"{path}: frames far apart are not more different than neighbours (no coherent motion)")
    pd = np.abs(np.diff(pose.astype(np.float32) / 255, axis=1)).mean(axis=(2, 3, 4))
    check(pd.min() > 0, f"{path}: two consecutive pose maps are identical")
    return lat


def check_png(path):
    check(os.path.exists(path), f"{path} missing")
    if not os.path.exists(path):
        return
    data = file_bytes(path)
    check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path}: no PNG signature")
    check(data[12:16] == b"IHDR", f"{path}: first chunk is not IHDR")
    w, h, depth, ctype = struct.unpack(">IIBB", data[16:26])
    check(w >= 6 * W and h >= 6 * H and depth == 8 and ctype == 2, f"{path}: IHDR {w}x{h} depth {depth} type {ctype}")
    # Decode: walk the chunks, inflate IDAT, and check the size of the raw scanlines.
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw = zlib.decompress(idat)
    check(len(raw) == h * (1 + 3 * w), f"{path}: decoded {len(raw)} bytes, expected {h * (1 + 3 * w)}")


def datagen(args):
    work = os.path.abspath(args.work)
    a = run_datagen(args.entprog, os.path.join(work, "seed7_a"), 7)
    b = run_datagen(args.entprog, os.path.join(work, "seed7_b"), 7)
    c = run_datagen(args.entprog, os.path.join(work, "seed8"), 8)
    for split, n in SPLITS.items():
        fa, fb, fc = (os.path.join(x, split + ".h5") for x in (a, b, c))
        check(file_bytes(fa) == file_bytes(fb), f"{split}: same seed gave different bytes")
        check(same_content(fa, fb), f"{split}: same seed gave different content")
        check(not same_content(fa, fc), f"{split}: seeds 7 and 8 gave the same content")
        lat = check_layout(fa, n)
        check(not np.array_equal(lat[0], lat[1]), f"{split}: videos 0 and 1 are identical")
    # Splits use different streams.
    with h5py.File(os.path.join(a, "train.h5"), "r") as ft, h5py.File(os.path.join(a, "val.h5"), "r") as fv:
        check(not np.array_equal(ft["latents"][0], fv["latents"][0]), "train and val start with the same video")
    check_png(os.path.join(a, "preview.png"))
    check(file_bytes(os.path.join(a, "preview.png")) == file_bytes(os.path.join(b, "preview.png")),
          "preview.png differs between equal seeds")
    if args.mpiexec:  # two ranks: rank 0 writes the same files
        m = run_datagen(args.entprog, os.path.join(work, "seed7_mpi2"), 7,
                        [args.mpiexec, "-n", "2", "--oversubscribe", "--allow-run-as-root"])
        for split in SPLITS:
            check(file_bytes(os.path.join(a, split + ".h5")) == file_bytes(os.path.join(m, split + ".h5")),
                  f"{split}: 2 MPI ranks wrote different bytes")


# ---- bad inputs ----

def write_ds(path, n=2, t=6, c=C, h=H, w=W, cp=CP, sh=S * H, sw=S * W, lat_dtype=np.float32,
             pose_dtype=np.uint8, skip=(), lat_rank5=True, version=1):
    rng = np.random.default_rng(0)
    lat = rng.uniform(-1, 1, (n, t, c, h, w)).astype(lat_dtype)
    if pose_dtype == np.uint8:
        pose = rng.integers(0, 256, (n, t, cp, sh, sw), dtype=np.uint8)
    else:
        pose = rng.uniform(0, 1, (n, t, cp, sh, sw)).astype(pose_dtype)
    with h5py.File(path, "w") as f:
        if "latents" not in skip:
            f["latents"] = lat if lat_rank5 else lat.reshape(n * t, c, h, w)
        if "pose" not in skip:
            f["pose"] = pose
        if version is not None:
            f.attrs["format_version"] = version
        f.attrs["latent_space"] = "pixel"
        f.attrs["latent_scale"] = 1.0
        f.attrs["fps"] = 8.0
    return lat, pose


def probe(args, path, F=4, stride=1):
    r = subprocess.run([args.probe, "open", path, str(F), str(stride)], capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def expect_ok(args, name, path, lat, pose, F=4, stride=1):
    rc, out = probe(args, path, F, stride)
    check(rc == 0 and out.startswith("ok"), f"{name}: refused a good file: {out.strip()}")
    if rc != 0:
        return
    n, t, sx, sp, sr = out.split()[1:6]
    x = lat[0, 0:(F - 1) * stride + 1:stride].astype(np.float64)
    p = pose[0, 0:(F - 1) * stride + 1:stride].astype(np.float64)
    p = p / 255 if pose.dtype == np.uint8 else p
    r = lat[0, -1].astype(np.float64)
    check(int(n) == lat.shape[0] and int(t) == lat.shape[1], f"{name}: N,T {n},{t}")
    for what, got, want in [("x0", sx, x.sum()), ("pose", sp, p.sum()), ("ref", sr, r.sum())]:
        check(abs(float(got) - want) < 1e-2 + 1e-5 * abs(want), f"{name}: sum of {what} {got}, numpy says {want:.6f}")
    print(f"  ok   {name}")


def expect_fail(args, name, path, words, F=4, stride=1):
    rc, out = probe(args, path, F, stride)
    check(rc != 0, f"{name}: accepted a bad file (exit 0): {out.strip()}")
    for wd in words:
        check(wd in out, f"{name}: message does not say '{wd}': {out.strip()}")
    print(f"  refused {name}: {out.strip().splitlines()[-1] if out.strip() else '(no message)'}")


def badinput(args):
    work = os.path.abspath(args.work)
    os.makedirs(work, exist_ok=True)
    p = lambda name: os.path.join(work, name)
    lat, pose = write_ds(p("good.h5"))
    expect_ok(args, "good uint8 pose", p("good.h5"), lat, pose)
    expect_ok(args, "good, frame_stride 2", p("good.h5"), lat, pose, F=3, stride=2)
    lat, pose = write_ds(p("f16.h5"), lat_dtype=np.float16, pose_dtype=np.float32)
    expect_ok(args, "float16 latents, float32 pose", p("f16.h5"), lat, pose)

    write_ds(p("wrong_h.h5"), h=12)
    expect_fail(args, "wrong H", p("wrong_h.h5"), [p("wrong_h.h5"), "H = 12", "model.H = 16"])
    write_ds(p("wrong_cp.h5"), cp=1)
    expect_fail(args, "wrong Cp", p("wrong_cp.h5"), ["Cp = 1", "model.Cp = 3"])
    write_ds(p("wrong_sw.h5"), sw=16)
    expect_fail(args, "wrong pose width", p("wrong_sw.h5"), ["sW = 16", "32"])
    write_ds(p("no_pose.h5"), skip=("pose",))
    expect_fail(args, "missing /pose", p("no_pose.h5"), [p("no_pose.h5"), "/pose"])
    write_ds(p("no_latents.h5"), skip=("latents",))
    expect_fail(args, "missing /latents", p("no_latents.h5"), ["/latents"])
    write_ds(p("rank4.h5"), lat_rank5=False)
    expect_fail(args, "wrong rank", p("rank4.h5"), ["/latents", "rank 4"])
    write_ds(p("no_version.h5"), version=None)
    expect_fail(args, "missing format_version", p("no_version.h5"), ["format_version"])
    write_ds(p("int_latents.h5"), lat_dtype=np.int16)
    expect_fail(args, "int16 latents", p("int_latents.h5"), ["/latents", "unsupported type"])
    write_ds(p("short.h5"), t=6)
    expect_fail(args, "T too short for the clip", p("short.h5"), ["T = 6", "frame_stride = 2"], F=4, stride=2)
    write_ds(p("empty.h5"), n=0)
    expect_fail(args, "no videos", p("empty.h5"), ["N = 0"])
    with open(p("not_hdf5.h5"), "w") as f:
        f.write("this is not an HDF5 file\n")
    expect_fail(args, "not HDF5", p("not_hdf5.h5"), [p("not_hdf5.h5"), "not an HDF5 file"])
    expect_fail(args, "missing file", p("does_not_exist.h5"), [p("does_not_exist.h5"), "no such file"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["datagen", "badinput"])
    ap.add_argument("--entprog")
    ap.add_argument("--probe")
    ap.add_argument("--mpiexec")
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    if args.mode == "datagen":
        datagen(args)
    else:
        badinput(args)
    if failures:
        print(f"check_dataset.py {args.mode}: {len(failures)} failure(s)", file=sys.stderr)
        sys.exit(1)
    print(f"check_dataset.py {args.mode}: ok")


if __name__ == "__main__":
    main()
