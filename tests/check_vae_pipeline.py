#!/usr/bin/python3
"""The latent-space pipeline (docs/vae.md "A latent-space dataset"): a pixel
dataset from datagen (32x32 frames, s = 1) -> `entprog encode --dataset-in`
through a tiny random-weight SD-shaped VAE (tests/fixtures/vae_tiny.safetensors,
factor 8, made by tools/make_vae_tiny.py) -> train 3 steps on the 4x4x4
latents (model.C = 4, s = 8: the pose maps stay 32x32) -> sample with the
deck's data.vae -> decoded 32x32 frames. Checks:
  - the latents equal `entprog encode --in` (array mode) on the same frames
    mapped to [-1, 1], bit for bit; 2 MPI ranks write the same file bit for bit;
  - the attributes (latent_space, latent_scale, vae, pose_scale) and the
    copied datasets (pose and frames unchanged, keypoints / 8);
  - the sample's frames are the VAE's decodings of its latents, 32x32, and
    the GIF is 128x128 (the decoded size zoomed);
  - refusals: a latent dataset encoded again, a file without /frames,
    --in with --dataset-in, data.vae on pixel data, a VAE of another scale,
    a latent deck with the pixel deck's s.
Plain python3 (Debian's h5py): no diffusers needed.
Usage: check_vae_pipeline.py ENTPROG WORKDIR [MPIEXEC]"""
import os
import shutil
import struct
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from e2e import Harness  # noqa: E402

ENTPROG, WORK = sys.argv[1], sys.argv[2]
MPIEXEC = sys.argv[3] if len(sys.argv) > 3 else None
shutil.rmtree(WORK, ignore_errors=True)
os.makedirs(WORK)
os.environ["OMP_NUM_THREADS"] = "1"  # the VAE's row bands depend on the thread count; bit-for-bit needs the same
H = Harness(ENTPROG, WORK)
run, check = H.run, H.check
P = lambda *n: os.path.join(WORK, *n)  # noqa: E731
VAE = os.path.join(HERE, "fixtures", "vae_tiny.safetensors")

PIXEL_DECK = """[model]
H = 32
W = 32
s = 1
[data]
dir = px
n_train = 3
n_val = 1
n_test = 2
frames = 5
"""
LATENT_DECK = f"""[model]
F = 4
C = 4
H = 4
W = 4
D = 32
L = 2
s = 8
[data]
dir = lat
frames = 5
vae = {VAE}
[train]
out_dir = run
steps = 3
val_every = 0
ckpt_every = 3
"""
with open(P("px.ini"), "w") as f:
    f.write(PIXEL_DECK)
with open(P("lat.ini"), "w") as f:
    f.write(LATENT_DECK)


def refused(args, words, what, env=None):
    p = run(*args, ok=False, env=env)
    msg = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
    check(p.returncode != 0 and all(w in msg for w in words), f"refused: {what}: {msg}")


def s(v):
    return v.decode() if isinstance(v, bytes) else str(v)


run("datagen", "px.ini")
run("encode", "--vae", VAE, "--dataset-in", "px", "--out", "lat")
for split in ("train", "val", "test"):
    with h5py.File(P("px", f"{split}.h5"), "r") as a, h5py.File(P("lat", f"{split}.h5"), "r") as b:
        N, T = a["frames"].shape[:2]
        check(s(a.attrs["latent_space"]) == "pixel", f"{split}: the pixel dataset says latent_space 'pixel'")
        check(b["latents"].shape == (N, T, 4, 4, 4) and b["latents"].dtype == np.float32,
              f"{split}: /latents {b['latents'].shape} {b['latents'].dtype} == ({N}, {T}, 4, 4, 4) float32")
        check(s(b.attrs["latent_space"]) == "AutoencoderKL" and abs(b.attrs["latent_scale"] - 0.18215) < 1e-7
              and s(b.attrs["vae"]) == VAE and int(b.attrs["vae_factor"]) == 8,
              f"{split}: latent_space, latent_scale, vae, vae_factor attributes")
        check(int(b.attrs["pose_scale"]) == 8 * int(a.attrs["pose_scale"]), f"{split}: pose_scale 8 * the pixel s")
        check(all(s(b.attrs[k]) == s(a.attrs[k]) for k in ("format_version", "fps", "split", "seed", "generator")),
              f"{split}: the other root attributes copied")
        check(np.array_equal(a["pose"][...], b["pose"][...]) and np.array_equal(a["frames"][...], b["frames"][...]),
              f"{split}: /pose and /frames copied unchanged")
        check(np.array_equal(a["keypoints"][...] / np.float32(8), b["keypoints"][...]),
              f"{split}: /keypoints (latent pixels) divided by 8")

# the same frames through the array mode: the same latents, bit for bit
with h5py.File(P("px", "train.h5"), "r") as a:
    fr = a["frames"][...]
    img = fr.astype(np.float32) / np.float32(127.5) - np.float32(1)
    check(np.array_equal(img, a["latents"][...]), "datagen's pixel latents are frames / 127.5 - 1 in float32")
N, T = fr.shape[:2]
with h5py.File(P("img.h5"), "w") as f:
    f["images"] = img.reshape(N * T, 3, 32, 32)
run("encode", "--vae", VAE, "--in", "img.h5", "--out", "z.h5")
with h5py.File(P("z.h5"), "r") as f, h5py.File(P("lat", "train.h5"), "r") as b:
    z, lat = f["latents"][...], b["latents"][...]
check(np.array_equal(z.reshape(lat.shape), lat), "dataset latents == `encode --in` on the same frames, bit for bit")
check(np.abs(lat).max() > 0, "the latents are not all zero")

if MPIEXEC:
    r = subprocess.run([MPIEXEC, "-n", "2", "--oversubscribe", "--allow-run-as-root", ENTPROG, "encode", "--vae", VAE,
                        "--dataset-in", "px/train.h5", "--out", "lat2.h5"], cwd=WORK, capture_output=True, text=True)
    check(r.returncode == 0, f"mpirun -n 2 encode ran (rc {r.returncode}) {r.stderr.strip()[-300:]}")
    if r.returncode == 0:
        with h5py.File(P("lat", "train.h5"), "r") as a, h5py.File(P("lat2.h5"), "r") as b:
            same = set(a) == set(b) and all(np.array_equal(a[k][...], b[k][...]) for k in a)
            same = same and all(s(a.attrs[k]) == s(b.attrs[k]) for k in a.attrs) and set(a.attrs) == set(b.attrs)
        check(same, "2 ranks write the same file as 1, bit for bit")
        check(not os.path.exists(P("lat2.h5.tmp")), "no .tmp left behind")

# train on the latents, sample, decoded frames
run("train", "lat.ini")
run("sample", "lat.ini", "--ckpt", "run/ckpt_00000003.h5", "--steps", "3", "--n", "2", "--out", "smp")
with h5py.File(P("smp", "samples.h5"), "r") as f:
    gen, gf = f["generated"][...], f["generated_frames"][...]
    check(gen.shape == (2, 4, 4, 4, 4), f"/generated {gen.shape}: latents")
    check(gf.shape == (2, 4, 3, 32, 32) and f["ground_truth_frames"].shape == (2, 4, 3, 32, 32)
          and f["reference_frames"].shape == (2, 3, 32, 32), f"frames decoded to 32x32: {gf.shape}")
    check(s(f.attrs["vae"]) == VAE, "samples.h5 names the VAE")
with h5py.File(P("gen.h5"), "w") as f:
    f["latents"] = gen.reshape(-1, 4, 4, 4)
run("decode", "--vae", VAE, "--in", "gen.h5", "--out", "gen_img.h5")
with h5py.File(P("gen_img.h5"), "r") as f:
    x = f["images"][...]
want = np.clip(np.round((x + np.float32(1)) * np.float32(127.5)), 0, 255).astype(np.int16).reshape(gf.shape)
diff = np.abs(want - gf.astype(np.int16)).max()
check(diff <= 1, f"the generated frames are `entprog decode` of the generated latents (max byte diff {diff} <= 1)")
for name in ("grid.png", "sample_0.gif", "sample_0.mp4", "side_by_side_0.mp4"):
    check(os.path.getsize(P("smp", name)) > 0, f"smp/{name} written")
with open(P("smp", "sample_0.gif"), "rb") as f:
    w, h = struct.unpack("<HH", f.read(10)[6:10])
check((w, h) == (128, 128), f"sample_0.gif is {w}x{h}: 32x32 decoded frames zoomed 4x")

# refusals, each naming the file
refused(("encode", "--vae", VAE, "--dataset-in", "lat/test.h5", "--out", "again.h5"),
        ("lat/test.h5", "already in latent space"), "encoding a latent dataset")
with h5py.File(P("px", "test.h5"), "r") as a, h5py.File(P("noframes.h5"), "w") as b:
    for k in a.attrs:
        b.attrs[k] = a.attrs[k]
    b["latents"], b["pose"] = a["latents"][...], a["pose"][...]
refused(("encode", "--vae", VAE, "--dataset-in", "noframes.h5", "--out", "nf.h5"),
        ("noframes.h5", "no /frames"), "a dataset without /frames")
check(not os.path.exists(P("nf.h5")) and not os.path.exists(P("nf.h5.tmp")), "nothing written for it")
refused(("encode", "--vae", VAE, "--in", "img.h5", "--dataset-in", "px", "--out", "x"), ("--dataset-in", "both"),
        "--in with --dataset-in")
shutil.copy(P("lat", "test.h5"), P("pixel.h5"))
with h5py.File(P("pixel.h5"), "a") as f:
    f.attrs["latent_space"] = "pixel"
refused(("sample", "lat.ini", "--ckpt", "run/ckpt_00000003.h5", "--steps", "2", "--n", "1", "--input", "pixel.h5",
         "--out", "bad"), ("pixel.h5", "pixel space", "data.vae"), "data.vae on a pixel-space dataset")
shutil.copy(P("lat", "test.h5"), P("scaled.h5"))
with h5py.File(P("scaled.h5"), "a") as f:
    f.attrs["latent_scale"] = 0.5
refused(("sample", "lat.ini", "--ckpt", "run/ckpt_00000003.h5", "--steps", "2", "--n", "1", "--input", "scaled.h5",
         "--out", "bad"), ("scaled.h5", "latent_scale 0.5", "vae_tiny.safetensors"), "a VAE of another scale")
refused(("train", "lat.ini", "--set", "model.s=1", "--set", "train.out_dir=run_s1"), ("lat/train.h5", "model.s = 8"),
        "a latent deck with the pixel deck's s")
H.finish("latent-space pipeline")
