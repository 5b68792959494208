#!/usr/bin/python3
"""entprog encode / decode against diffusers' AutoencoderKL (docs/vae.md),
with random weights built offline (nothing is downloaded):
  A. a small VAE (block_out_channels 32,64,64: factor 4; layers_per_block 1;
     norm_num_groups 8, read from the config.json save_pretrained writes):
     encode == the posterior mean * scaling_factor, decode == decode(z / s);
  B. an SD-shaped one (4 levels: factor 8, layers_per_block 2, 32 groups,
     channels 32,32,64,64) saved under the older attention names
     (query/key/value/proj_attn) with the settings in __metadata__ instead;
  C. refusals naming the tensor: wrong shape, missing tensor, extra tensor.
diffusers runs in float64 on the same float32 inputs and weights, so the
difference is entprog's fp32 rounding alone: TOL relative to max|reference|
(measured 0.5e-6 to 1.8e-6: fp32 rounding of sums over up to 9*64 products
through ~20 layers; 2e-5 leaves 10x for other BLAS kernels and thread counts).
Usage (the venv's python, tests/vae.cmake): check_vae.py ENTPROG WORKDIR"""
import os
import shutil
import sys

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from e2e import Harness  # noqa: E402

try:
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file  # also what save_pretrained needs imported (diffusers 0.30)
except Exception as e:  # noqa: BLE001
    sys.exit(f"FAILED: diffusers is not importable ({e!r}); tests/vae_venv.sh makes the venv this test runs in")

ENTPROG, WORK = sys.argv[1], sys.argv[2]
shutil.rmtree(WORK, ignore_errors=True)  # a fresh folder: a run's out_dir must not hold an earlier run's checkpoints
os.makedirs(WORK)
H = Harness(ENTPROG, WORK)
run, check = H.run, H.check
P = lambda *n: os.path.join(WORK, *n)  # noqa: E731
TOL = 2e-5


def make_vae(seed, channels, layers, groups):
    torch.manual_seed(seed)
    n = len(channels)
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
                        up_block_types=("UpDecoderBlock2D",) * n, block_out_channels=channels,
                        layers_per_block=layers, norm_num_groups=groups, latent_channels=4, sample_size=32)
    with torch.no_grad():  # PyTorch's random init, and random GroupNorm affines (theirs start at 1, 0)
        for name, p in vae.named_parameters():
            if "norm" in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.2 * torch.randn_like(p))
    return vae.eval()


def rel_err(got, ref):
    return float(np.abs(got - ref).max() / np.abs(ref).max())


def parity(tag, vae, path, N, Hh, W, scale):
    f = 2 ** (len(vae.config.block_out_channels) - 1)
    g = torch.Generator().manual_seed(7)
    x = (torch.rand(N, 3, Hh, W, generator=g) * 2 - 1).float()
    ref = vae.double()
    with torch.no_grad():
        z_ref = (ref.encode(x.double()).latent_dist.mean * scale)
        x_ref = ref.decode(z_ref.float().double() / scale).sample
    with h5py.File(P(f"{tag}_x.h5"), "w") as h:
        h["images"] = x.numpy()
    out = run("encode", "--vae", path, "--in", P(f"{tag}_x.h5"), "--out", P(f"{tag}_z.h5")).stdout
    print(out.strip())
    with h5py.File(P(f"{tag}_z.h5"), "r") as h:
        z = h["latents"][...]
        s_attr = float(h.attrs["scaling_factor"])
    check(z.shape == (N, 4, Hh // f, W // f), f"{tag}: latents are {z.shape}, [N, 4, H/{f}, W/{f}]")
    e = rel_err(z, z_ref.numpy())
    check(e < TOL, f"{tag}: encode == diffusers mean * {scale}: max|diff|/max|ref| = {e:.2e} < {TOL}")
    check(abs(s_attr - scale) < 1e-6, f"{tag}: scaling_factor attribute {s_attr}")
    with h5py.File(P(f"{tag}_zin.h5"), "w") as h:
        h["latents"] = z_ref.float().numpy()
    out = run("decode", "--vae", path, "--in", P(f"{tag}_zin.h5"), "--out", P(f"{tag}_y.h5")).stdout
    print(out.strip())
    with h5py.File(P(f"{tag}_y.h5"), "r") as h:
        y = h["images"][...]
    check(y.shape == (N, 3, Hh, W), f"{tag}: decoded images are {y.shape}")
    e = rel_err(y, x_ref.numpy())
    check(e < TOL, f"{tag}: decode == diffusers decode(z / {scale}): max|diff|/max|ref| = {e:.2e} < {TOL}")


# A: diffusers' own files (config.json + diffusion_pytorch_model.safetensors)
vae_a = make_vae(1, (32, 64, 64), 1, 8)
vae_a.save_pretrained(P("vae_a"), safe_serialization=True)
parity("A", vae_a, P("vae_a", "diffusion_pytorch_model.safetensors"), 2, 40, 24, 0.18215)

# B: SD's shape (factor 8), older attention names, settings in __metadata__, no config.json
vae_b = make_vae(2, (32, 32, 64, 64), 2, 32)
old = {".to_q.": ".query.", ".to_k.": ".key.", ".to_v.": ".value.", ".to_out.0.": ".proj_attn."}
sd = {}
for k, v in vae_b.state_dict().items():
    for a, b in old.items():
        k = k.replace(a, b)
    sd[k] = v.float().contiguous()
check(any(".query." in k for k in sd), "B: the file uses the older attention names")
os.makedirs(P("vae_b"), exist_ok=True)
save_file(sd, P("vae_b", "vae.safetensors"), metadata={"norm_num_groups": "32", "scaling_factor": "0.13025"})
parity("B", vae_b, P("vae_b", "vae.safetensors"), 1, 32, 48, 0.13025)

# C: refusals, each naming the tensor
base = {k: v.float().contiguous() for k, v in vae_a.state_dict().items()}
with h5py.File(P("C_x.h5"), "w") as h:
    h["images"] = np.zeros((1, 3, 16, 16), np.float32)
bad_name = "decoder.up_blocks.1.resnets.0.conv1.weight"
cases = {
    "wrong shape": ({**base, bad_name: base[bad_name][:, :-1].contiguous()}, bad_name),
    "missing tensor": ({k: v for k, v in base.items() if k != bad_name}, bad_name),
    "extra tensor": ({**base, "encoder.extra.weight": torch.zeros(3)}, "encoder.extra.weight"),
}
for what, (d, name) in cases.items():
    os.makedirs(P("C"), exist_ok=True)
    save_file(d, P("C", "bad.safetensors"), metadata={"norm_num_groups": "8"})
    p = run("encode", "--vae", P("C", "bad.safetensors"), "--in", P("C_x.h5"), "--out", P("C_z.h5"), ok=False)
    check(p.returncode != 0 and name in p.stderr and not os.path.exists(P("C_z.h5")),
          f"C: {what} refused naming {name}: {p.stderr.strip()}")
p = run("encode", "--vae", P("vae_a", "diffusion_pytorch_model.safetensors"), "--in", P("A_x.h5"), "--out",
        P("C_z.h5"), "--dataset", "nothing", ok=False)
check(p.returncode != 0 and "nothing" in p.stderr, f"C: a missing dataset is named: {p.stderr.strip()}")
H.finish("VAE")
