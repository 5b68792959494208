#!/usr/bin/python3
"""End-to-end checks of `entprog sample` and `entprog eval` on the tiny deck.

datagen + 3 training steps, then sampling; samples.h5 is checked against the
test split, the GIFs are decoded by the pure-Python GIF/LZW reader below (and
by PIL when it imports) and compared with /generated_frames upscaled and
quantised to the documented 6x7x6 cube, grid.png is decoded with matplotlib
and compared cell by cell, eval's JSON/CSV are recomputed with numpy, and
bad invocations must fail with a message.

Usage: check_media.py --entprog E --test-sample T --deck DECK --work DIR [--mpiexec M]"""
import argparse
import csv
import json
import math
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


# ---------------------------------------------------------------- GIF reader

class Bits:
    """LSB-first bit reader over the concatenated data sub-blocks."""

    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, width):
        v = 0
        for k in range(width):
            byte = self.data[(self.pos + k) >> 3] if (self.pos + k) >> 3 < len(self.data) else 0
            v |= ((byte >> ((self.pos + k) & 7)) & 1) << k
        self.pos += width
        return v


def lzw_decode(data, min_size, npix):
    """GIF LZW: clear = 2^min, end = clear + 1, widths min+1..12, no early change."""
    clear, end = 1 << min_size, (1 << min_size) + 1
    bits = Bits(data)
    out = bytearray()
    table, width, prev = None, min_size + 1, None
    while True:
        code = bits.read(width)
        if code == clear:
            table = [bytes([i]) for i in range(clear)] + [b"", b""]
            width, prev = min_size + 1, None
            continue
        if code == end:
            break
        if table is None:
            raise ValueError("GIF data does not start with a clear code")
        if prev is None:
            entry = table[code]
        else:
            if code < len(table):
                entry = table[code]
                new = table[prev] + entry[:1]
            elif code == len(table):  # the KwKwK case
                new = table[prev] + table[prev][:1]
                entry = new
            else:
                raise ValueError(f"LZW code {code} beyond the table ({len(table)})")
            if len(table) < 4096:
                table.append(new)
                if len(table) == (1 << width) and width < 12:
                    width += 1
        out += entry
        prev = code
    if len(out) != npix:
        raise ValueError(f"LZW stream gave {len(out)} pixels, expected {npix}")
    return np.frombuffer(bytes(out), np.uint8)


def sub_blocks(buf, pos):
    data = bytearray()
    while True:
        n = buf[pos]
        pos += 1
        if n == 0:
            return bytes(data), pos
        data += buf[pos:pos + n]
        pos += n


def read_gif(path):
    """-> dict(w, h, palette [256,3], loop, frames [list of index arrays [h,w]], delays)."""
    buf = open(path, "rb").read()
    if buf[:6] != b"GIF89a":
        raise ValueError(f"{path}: not GIF89a")
    w, h, packed = int.from_bytes(buf[6:8], "little"), int.from_bytes(buf[8:10], "little"), buf[10]
    pos, pal = 13, None
    if packed & 0x80:
        n = 2 << (packed & 7)
        pal = np.frombuffer(buf[pos:pos + 3 * n], np.uint8).reshape(n, 3)
        pos += 3 * n
    g = {"w": w, "h": h, "palette": pal, "loop": None, "frames": [], "delays": []}
    delay = None
    while True:
        b = buf[pos]
        if b == 0x3B:
            return g
        if b == 0x21:
            label = buf[pos + 1]
            data, pos = sub_blocks(buf, pos + 2)
            if label == 0xF9:
                delay = int.from_bytes(data[1:3], "little")
            elif label == 0xFF and data[:11] == b"NETSCAPE2.0":
                g["loop"] = int.from_bytes(data[13:15], "little")
            continue
        if b != 0x2C:
            raise ValueError(f"{path}: unexpected block 0x{b:02x} at byte {pos}")
        x, y = int.from_bytes(buf[pos + 1:pos + 3], "little"), int.from_bytes(buf[pos + 3:pos + 5], "little")
        fw, fh, fp = int.from_bytes(buf[pos + 5:pos + 7], "little"), int.from_bytes(buf[pos + 7:pos + 9], "little"), buf[pos + 9]
        if (x, y, fw, fh) != (0, 0, w, h) or fp & 0xC0:
            raise ValueError(f"{path}: frame {x},{y} {fw}x{fh} flags {fp:#x}: expected full-screen, no local table")
        min_size = buf[pos + 10]
        data, pos = sub_blocks(buf, pos + 11)
        g["frames"].append(lzw_decode(data, min_size, w * h).reshape(h, w))
        g["delays"].append(delay)


def cube_palette():
    pal = np.zeros((256, 3), np.uint8)
    for r in range(6):
        for gg in range(7):
            for b in range(6):
                pal[42 * r + 6 * gg + b] = ((255 * r + 2) // 5, (255 * gg + 3) // 6, (255 * b + 2) // 5)
    return pal


def cube_index(rgb):
    """rgb [..., 3] uint8 -> the documented 6x7x6 cube index."""
    r, g, b = (rgb[..., k].astype(np.int64) for k in range(3))
    return (42 * ((5 * r + 127) // 255) + 6 * ((6 * g + 127) // 255) + (5 * b + 127) // 255).astype(np.uint8)


def upscale(planar, ch, cw):
    """[3,h,w] -> [ch,cw,3] by nearest neighbour: cell pixel (x, y) shows (x*w//cw, y*h//ch)."""
    _, h, w = planar.shape
    ys, xs = (np.arange(ch) * h) // ch, (np.arange(cw) * w) // cw
    return planar[:, ys][:, :, xs].transpose(1, 2, 0)


def zoom(h, w, min_px):
    return max(1, -(-min_px // min(h, w)))


# ---------------------------------------------------------------- metrics in numpy

def gauss(n):
    k = np.arange(n) - (n - 1) / 2
    g = np.exp(-k * k / (2 * 1.5 ** 2))
    return g / g.sum()


def ssim_channel(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    H, W = a.shape
    wy, wx = min(11, H), min(11, W)
    win = np.outer(gauss(wy), gauss(wx))
    view = lambda x: np.lib.stride_tricks.sliding_window_view(x, (wy, wx))
    mean = lambda x: np.einsum("ijkl,kl->ij", view(x), win)
    ma, mb = mean(a), mean(b)
    va, vb, cov = mean(a * a) - ma ** 2, mean(b * b) - mb ** 2, mean(a * b) - ma * mb
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    return float(np.mean((2 * ma * mb + c1) * (2 * cov + c2) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))))


def clip_metrics(g, r):
    """g, r: [F,3,H,W] uint8 -> dict of the documented metrics."""
    F = g.shape[0]
    gi, ri = g.astype(np.float64), r.astype(np.float64)
    ssim = np.mean([np.mean([ssim_channel(g[f, c], r[f, c]) for c in range(3)]) for f in range(F)])
    mse = [np.mean((gi[f] - ri[f]) ** 2) for f in range(F)]
    psnr = np.mean([math.inf if m == 0 else 10 * math.log10(255 ** 2 / m) for m in mse])
    l1 = np.mean(np.abs(gi - ri)) / 255
    if F < 2:
        return dict(ssim=ssim, psnr=psnr, l1=l1, tdiff_gen=None, tdiff_gt=None, tdiff_err=None)
    dg, dr = np.diff(gi, axis=0), np.diff(ri, axis=0)
    return dict(ssim=ssim, psnr=psnr, l1=l1, tdiff_gen=np.mean(np.abs(dg)) / 255, tdiff_gt=np.mean(np.abs(dr)) / 255,
                tdiff_err=np.mean(np.abs(dg - dr)) / 255)


def close(a, b, tol=1e-7):
    if a is None or b is None:
        return a is b
    if isinstance(a, str) or isinstance(b, str):
        return a == b
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= tol * max(1.0, abs(b))


# ---------------------------------------------------------------- an independent DDIM

MASK = (1 << 64) - 1


def splitmix(x):
    x = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return x, z ^ (z >> 31)


class Xoshiro:
    """src/core/rng.c in Python: rng_seed_stream, xoshiro256**, Box-Muller normals."""

    def __init__(self, seed, stream):
        _, x = splitmix((seed ^ ((stream * 0xD1B54A32D192ED03) & MASK)) & MASK)
        self.s = []
        for _ in range(4):
            x, v = splitmix(x)
            self.s.append(v)

    def next(self):
        s = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & MASK
        out = (rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return out

    def normal(self):
        u1 = ((self.next() >> 11) + 1) * (1.0 / 9007199254740992.0)
        u2 = (self.next() >> 11) * (1.0 / 9007199254740992.0)
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(6.283185307179586 * u2)


def reference_ddim(r, ckpt, data, N, F, S, w, clip, seed):
    """DDIM (eta 0) of docs/sampling.md in numpy, the network through `entprog predict`."""
    beta = 1e-4 + (0.02 - 1e-4) * np.arange(1000) / 999
    abar = np.cumprod(1 - beta)
    with h5py.File(data, "r") as d:
        ref = d["latents"][:N, 0]
        pose = d["pose"][:N, :F].astype(np.float32) / np.float32(255)
        shape = d["latents"].shape[2:]
    x = np.zeros((N, F) + shape, np.float32)
    for i in range(N):
        g = Xoshiro(seed, (1 << 40) + i)
        x[i] = np.array([g.normal() for _ in range(x[i].size)], np.float32).reshape(x[i].shape)
    ts = [(2 * j * 999 + S - 1) // (2 * (S - 1)) for j in range(S - 1, -1, -1)]

    def predict(x, t, drop):
        with h5py.File(os.path.join(r.work, "ddim_in.h5"), "w") as f:
            f["x"], f["t"], f["ref"], f["pose"] = x, np.full(N, t, np.int32), ref, pose
            f["drop_ref"] = f["drop_pose"] = np.full(N, drop, np.uint8)
        r.run("predict", "--weights", ckpt, "--inputs", "ddim_in.h5", "--out", "ddim_out.h5")
        with h5py.File(os.path.join(r.work, "ddim_out.h5"), "r") as f:
            return f["eps_hat"][:].astype(np.float64)

    for k, t in enumerate(ts):
        ec, eu = predict(x, t, 0), predict(x, t, 1)
        e = (eu + w * (ec - eu)).astype(np.float32).astype(np.float64)
        ab, abp = abar[t], (abar[ts[k + 1]] if k + 1 < S else 1.0)
        x0 = (x - math.sqrt(1 - ab) * e) / math.sqrt(ab)
        hit = np.abs(x0) > clip
        x0 = np.where(hit, np.sign(x0) * clip, x0)
        e = np.where(hit, (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab), e)
        x = (math.sqrt(abp) * x0 + math.sqrt(1 - abp) * e).astype(np.float32)
    return x


def check_reference_ddim(r, deck):
    """entprog sample against the numpy DDIM above: same noise, same network, guidance 2, clip 1."""
    r.run("sample", deck, "--ckpt", "run/ckpt_00000003.h5", "--steps", "4", "--n", "2", "--guidance", "2",
          "--out", "s_ref")
    want = reference_ddim(r, "run/ckpt_00000003.h5", os.path.join(r.work, "data/test.h5"), 2, 4, 4, 2.0, 1.0, 1)
    with h5py.File(os.path.join(r.work, "s_ref/samples.h5"), "r") as f:
        got = f["generated"][:]
        clip = attr(f, "clip")
    d = np.abs(got - want).max()
    check(clip == 1.0 and d < 1e-4 and np.abs(want).max() > 0.5,
          f"entprog sample = numpy DDIM (rng.c's streams, entprog predict, guidance 2, clip {clip}): max difference {d:.1e}")


# ---------------------------------------------------------------- the runs

class Runner:
    def __init__(self, args):
        self.entprog, self.work, self.mpiexec = args.entprog, args.work, args.mpiexec
        self.env = dict(os.environ, OMP_NUM_THREADS="1")

    def run(self, *a, ok=True, prefix=()):
        p = subprocess.run([*prefix, self.entprog, *a], cwd=self.work, capture_output=True, text=True, env=self.env)
        if ok and p.returncode != 0:
            sys.exit(f"FAILED: entprog {' '.join(a)}\n{p.stdout}\n{p.stderr}")
        return p

    def expect_error(self, args, needle, what):
        p = self.run(*args, ok=False)
        last = p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ""
        check(p.returncode != 0 and needle in p.stderr, f"{what}: exit {p.returncode}, '{last}'")


def attr(f, name):
    v = f.attrs[name]
    return v.decode() if isinstance(v, bytes) else v


def check_samples_file(path, data, F, N):
    with h5py.File(path, "r") as f, h5py.File(data, "r") as d:
        shapes = {k: f[k].shape for k in f}
        lat = d["latents"]
        C, H, W = lat.shape[2:]
        want = {"generated": (N, F, C, H, W), "generated_frames": (N, F, 3, H, W), "ground_truth": (N, F, C, H, W),
                "ground_truth_frames": (N, F, 3, H, W), "reference": (N, C, H, W), "reference_frames": (N, 3, H, W),
                "pose": (N, F) + d["pose"].shape[2:], "video": (N,), "timesteps": (5,)}
        check(all(shapes.get(k) == v for k, v in want.items()), f"samples.h5 datasets and shapes {shapes}")
        check(f["generated"].dtype == np.float32 and f["generated_frames"].dtype == np.uint8
              and f["pose"].dtype == np.uint8, "dtypes: /generated float32, frames and pose uint8")
        a = {k: attr(f, k) for k in f.attrs}
        check(a.get("format_version") == 1 and a.get("steps") == 5 and a.get("eta") == 0.0 and a.get("guidance") == 1.0
              and a.get("seed") == 1 and a.get("checkpoint") == "run/ckpt_00000003.h5" and a.get("weights") == "model"
              and a.get("input") == "data/test.h5" and a.get("reference_frame") == 0,
              f"root attributes {a}")
        check(list(f["timesteps"][:]) == [999, 749, 500, 250, 0], f"/timesteps {list(f['timesteps'][:])}")
        check(list(f["video"][:]) == list(range(N)), "/video is 0..N-1")
        gen = f["generated"][:]
        check(np.isfinite(gen).all() and gen.std() > 0, "/generated is finite and not constant")
        # the documented byte map: float32 (x + 1) * 127.5, rounded half away from zero, clamped
        v = (gen + np.float32(1)) * np.float32(127.5)
        fl = np.floor(v)
        byte = np.clip(fl + (v - fl >= 0.5), 0, 255).astype(np.uint8)
        check(np.array_equal(byte[:, :, :3], f["generated_frames"][:]),
              "/generated_frames = clamp(round((x + 1) * 127.5)) of /generated, every byte")
        check(np.array_equal(f["ground_truth"][:], lat[:N, :F]), "/ground_truth = the test split's first F latents")
        check(np.array_equal(f["reference"][:], lat[:N, 0]), "/reference = frame 0's latent")
        check(np.array_equal(f["ground_truth_frames"][:], d["frames"][:N, :F]),
              "/ground_truth_frames = the test split's /frames (pixel-space latents decode exactly)")
        check(np.array_equal(f["reference_frames"][:], d["frames"][:N, 0]), "/reference_frames = /frames of frame 0")
        check(np.array_equal(f["pose"][:], d["pose"][:N, :F]), "/pose = the test split's pose maps of the clip")
        return {k: f[k][:] for k in ("generated", "generated_frames", "ground_truth_frames", "reference_frames", "pose")}


def check_gifs(folder, s, fps):
    N, F, _, H, W = s["generated_frames"].shape
    z = zoom(H, W, 128)
    pal = cube_palette()
    try:
        from PIL import Image
    except ImportError:
        Image = None
    for i in range(N):
        path = os.path.join(folder, f"sample_{i}.gif")
        g = read_gif(path)
        check(g["w"] == W * z and g["h"] == H * z and g["loop"] == 0 and len(g["frames"]) == F,
              f"sample_{i}.gif: {g['w']}x{g['h']} (zoom {z}), loops forever, {len(g['frames'])} frames")
        check(g["palette"] is not None and np.array_equal(g["palette"], pal), f"sample_{i}.gif: the 6x7x6 cube palette")
        want_delay = max(2, int(math.floor(100 / fps + 0.5)))
        check(all(d == want_delay for d in g["delays"]), f"sample_{i}.gif: delays {g['delays']} = round(100/fps)")
        same = all(np.array_equal(g["frames"][f], cube_index(upscale(s["generated_frames"][i, f], H * z, W * z)))
                   for f in range(F))
        check(same, f"sample_{i}.gif: decoded indices = cube quantisation of /generated_frames upscaled {z}x")
        if Image is not None:
            im = Image.open(path)
            ok = im.n_frames == F
            for f in range(min(F, im.n_frames)):
                im.seek(f)
                ok &= np.array_equal(np.array(im.convert("RGB")), pal[g["frames"][f]])
            check(ok, f"sample_{i}.gif: PIL decodes the same pixels")


def check_grid(path, s):
    import matplotlib.image as mpimg
    img = mpimg.imread(path)
    img = np.round(img[..., :3] * 255).astype(np.uint8) if img.dtype != np.uint8 else img[..., :3]
    N, F, _, H, W = s["generated_frames"].shape
    z, gap = zoom(H, W, 64), 2
    ch, cw = H * z, W * z
    cols = 1 + 3 * F
    check(img.shape == (N * (ch + gap) + gap, cols * (cw + gap) + gap, 3), f"grid.png is {img.shape[1]}x{img.shape[0]}")
    cell = lambda i, c: img[gap + i * (ch + gap):gap + i * (ch + gap) + ch, gap + c * (cw + gap):gap + c * (cw + gap) + cw]
    ok = {"reference": True, "pose": True, "generated": True, "ground truth": True}
    for i in range(N):
        ok["reference"] &= np.array_equal(cell(i, 0), upscale(s["reference_frames"][i], ch, cw))
        for f in range(F):
            pose = s["pose"][i, f]
            pose3 = pose[:3] if pose.shape[0] >= 3 else np.repeat(pose[:1], 3, 0)
            ok["pose"] &= np.array_equal(cell(i, 1 + f), upscale(pose3, ch, cw))
            ok["generated"] &= np.array_equal(cell(i, 1 + F + f), upscale(s["generated_frames"][i, f], ch, cw))
            ok["ground truth"] &= np.array_equal(cell(i, 1 + 2 * F + f), upscale(s["ground_truth_frames"][i, f], ch, cw))
    for k, v in ok.items():
        check(v, f"grid.png: the {k} cells equal the stored frames upscaled {z}x")
    mask = np.ones(img.shape[:2], bool)
    for i in range(N):
        for c in range(cols):
            mask[gap + i * (ch + gap):gap + i * (ch + gap) + ch, gap + c * (cw + gap):gap + c * (cw + gap) + cw] = False
    check((img[mask] == 32).all(), "grid.png: the gaps are grey 32")


def check_eval(json_path, csv_path, s):
    j = json.load(open(json_path))
    N = s["generated_frames"].shape[0]
    keys = ("ssim", "psnr", "l1", "tdiff_gen", "tdiff_gt", "tdiff_err")
    check(j["n"] == N and j["frames"] == s["generated_frames"].shape[1] and len(j["per_sample"]) == N
          and j["steps"] == 5 and j["checkpoint"] == "run/ckpt_00000003.h5" and all(k in j["mean"] for k in keys),
          f"eval JSON fields: {sorted(j)}")
    ok, worst = True, ""
    per = [clip_metrics(s["generated_frames"][i], s["ground_truth_frames"][i]) for i in range(N)]
    for i in range(N):
        for k in keys:
            if not close(j["per_sample"][i][k], per[i][k]):
                ok, worst = False, f"sample {i} {k}: {j['per_sample'][i][k]} vs numpy {per[i][k]}"
    for k in keys:
        if not close(j["mean"][k], float(np.mean([p[k] for p in per]))):
            ok, worst = False, f"mean {k}: {j['mean'][k]}"
    check(ok, "eval JSON = numpy recomputation (SSIM 11x11 Gaussian sigma 1.5, PSNR, L1, temporal) " + worst)
    rows = list(csv.DictReader(open(csv_path)))
    check(len(rows) == N + 1 and rows[-1]["sample"] == "mean" and close(float(rows[-1]["ssim"]), j["mean"]["ssim"], 1e-9),
          f"eval CSV: {N} sample rows and a mean row")


def check_identical_eval(r, src):
    """generated = ground truth: SSIM 1, PSNR inf (written as the string "inf"), L1 0."""
    dst = os.path.join(r.work, "ident.h5")
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        g["generated_frames"] = f["ground_truth_frames"][:]
        g["ground_truth_frames"] = f["ground_truth_frames"][:]
    r.expect_error(["eval", "--samples", "ident.h5", "--out", "ident/metrics.json"], "ident/metrics.json",
                   "eval --out into a missing folder")
    os.makedirs(os.path.join(r.work, "ident"), exist_ok=True)
    r.run("eval", "--samples", "ident.h5", "--out", "ident/metrics.json")
    j = json.load(open(os.path.join(r.work, "ident/metrics.json")))
    m = j["mean"]
    check(m["ssim"] == 1 and m["psnr"] == "inf" and m["l1"] == 0 and m["tdiff_err"] == 0,
          f"identical videos: SSIM 1, PSNR \"inf\", L1 0, tdiff_err 0 ({m})")
    rows = list(csv.DictReader(open(os.path.join(r.work, "ident/metrics.csv"))))
    check(rows[-1]["psnr"] == "inf", "identical videos: CSV psnr 'inf'")


def check_gif_fixtures(test_sample, work):
    folder = os.path.join(work, "gif")
    os.makedirs(folder, exist_ok=True)
    subprocess.run([test_sample, "gif", folder], check=True, capture_output=True)
    s = 2024

    def lcg():
        nonlocal s
        s = (s * 1103515245 + 12345) & 0xFFFFFFFF
        return (s >> 16) & 0x7FFF

    g = read_gif(os.path.join(folder, "noise.gif"))
    ok = g["w"] == 97 and g["h"] == 61 and len(g["frames"]) == 3 and g["delays"] == [7, 8, 9]
    for f in range(3):
        want = np.array([lcg() & 255 for _ in range(97 * 61)], np.uint8).reshape(61, 97)
        ok &= np.array_equal(g["frames"][f], want)
    check(ok, "noise.gif: 3 frames of random indices (LZW table full and cleared) decode exactly")
    g = read_gif(os.path.join(folder, "ramp.gif"))
    ok = g["w"] == 300 and g["h"] == 5 and len(g["frames"]) == 2
    for f in range(2):
        want = ((np.arange(1500) // 37 + 3 * f) % 252).astype(np.uint8).reshape(5, 300)
        ok &= np.array_equal(g["frames"][f], want)
    check(ok, "ramp.gif: long runs decode exactly")


def check_mpi_and_batch(r, ref, deck):
    # a deck with batch 1: each sample alone in its batch
    text = open(deck).read()
    lines = [("batch = 1" if l.split(";")[0].strip().replace(" ", "") == "batch=2" else l) for l in text.splitlines()]
    open(os.path.join(r.work, "b1.ini"), "w").write("\n".join(lines) + "\n")
    r.run("sample", "b1.ini", "--ckpt", "run/ckpt_00000003.h5", "--steps", "5", "--n", "2", "--out", "s_b1")
    with h5py.File(os.path.join(r.work, "s_b1/samples.h5"), "r") as f:
        d = np.abs(f["generated"][:] - ref).max()
    check(d < 1e-4, f"batch 1 gives the batch-2 samples (max difference {d:.2e})")
    if r.mpiexec:
        r.run("sample", deck, "--ckpt", "run/ckpt_00000003.h5", "--steps", "5", "--n", "2", "--out", "s_mpi",
              prefix=(r.mpiexec, "-n", "2", "--oversubscribe", "--allow-run-as-root"))
        with h5py.File(os.path.join(r.work, "s_mpi/samples.h5"), "r") as f:
            d = np.abs(f["generated"][:] - ref).max()
        check(d < 1e-4, f"2 MPI ranks (one sample each) give the 1-rank samples (max difference {d:.2e})")


def check_options(r, deck, ref):
    r.run("sample", deck, "--ckpt", "run/ckpt_00000003.h5", "--steps", "5", "--n", "2", "--out", "s_again")
    with h5py.File(os.path.join(r.work, "s_again/samples.h5"), "r") as f:
        check(np.array_equal(f["generated"][:], ref), "the same seed gives bit-identical samples")
    r.run("sample", deck, "--ckpt", "run/ckpt_00000003.h5", "--steps", "5", "--n", "1", "--seed", "9", "--eta", "0.5",
          "--guidance", "2.5", "--out", "s_opts")
    with h5py.File(os.path.join(r.work, "s_opts/samples.h5"), "r") as f:
        a = {k: attr(f, k) for k in f.attrs}
        g = f["generated"][:]
        check(g.shape[0] == 1 and a["seed"] == 9 and a["eta"] == 0.5 and a["guidance"] == 2.5 and np.isfinite(g).all()
              and not np.array_equal(g[0], ref[0]), f"--n 1 --seed 9 --eta 0.5 --guidance 2.5 recorded and used ({a})")
    r.run("sample", deck, "--ckpt", "run_ema/ckpt_00000003.h5", "--steps", "5", "--n", "1", "--ema", "--out", "s_ema")
    r.run("sample", deck, "--ckpt", "run_ema/ckpt_00000003.h5", "--steps", "5", "--n", "1", "--out", "s_noema")
    with h5py.File(os.path.join(r.work, "s_ema/samples.h5"), "r") as f, \
            h5py.File(os.path.join(r.work, "s_noema/samples.h5"), "r") as g:
        check(attr(f, "weights") == "ema" and not np.array_equal(f["generated"][:], g["generated"][:]),
              "--ema samples with the EMA weights (other samples than the raw weights)")
    r.run("sample", deck, "--ckpt", "run/ckpt_00000003.h5", "--steps", "5", "--n", "1", "--input", "data/val.h5",
          "--out", "s_val")
    with h5py.File(os.path.join(r.work, "s_val/samples.h5"), "r") as f, h5py.File(os.path.join(r.work, "data/val.h5")) as d:
        check(attr(f, "input") == "data/val.h5" and np.array_equal(f["ground_truth"][:], d["latents"][:1, :4]),
              "--input data/val.h5 samples that file's videos")
    r.run("sample", deck, "--ckpt", "run/ckpt_00000003.h5", "--steps", "2", "--n", "1")
    check(os.path.exists(os.path.join(r.work, "run/samples/samples.h5")), "default --out: <checkpoint folder>/samples")


def check_errors(r, deck):
    ck = ["--ckpt", "run/ckpt_00000003.h5"]
    e = r.expect_error
    e(["sample", deck], "--ckpt is required", "sample without --ckpt")
    e(["sample", deck, "--ckpt", "run/missing.h5"], "missing.h5", "sample with a missing checkpoint")
    e(["sample", deck, *ck, "--steps", "0"], "--steps", "sample --steps 0")
    e(["sample", deck, *ck, "--steps", "1001"], "--steps", "sample --steps 1001")
    e(["sample", deck, *ck, "--eta", "-1"], "--eta", "sample --eta -1")
    e(["sample", deck, *ck, "--guidance", "nan"], "--guidance", "sample --guidance nan")
    e(["sample", deck, *ck, "--clip", "-1"], "--clip", "sample --clip -1")
    e(["sample", deck, *ck, "--n", "3"], "holds only 2 videos", "sample --n beyond the test split")
    e(["sample", deck, *ck, "--ema"], "no /ema", "sample --ema on a checkpoint without EMA")
    e(["sample", deck, *ck, "--input", "nope.h5"], "nope.h5", "sample --input of a missing file")
    e(["sample", deck, *ck, "--steps"], "needs a value", "sample --steps without a value")
    e(["sample", deck, *ck, "--bogus"], "unknown option", "sample with an unknown option")
    e(["sample", "missing.ini", *ck], "missing.ini", "sample with a missing deck")
    e(["eval"], "--samples is required", "eval without --samples")
    e(["eval", "--samples", "none.h5"], "none.h5", "eval of a missing file")
    e(["eval", "--samples", "data/test.h5"], "/generated_frames", "eval of a file without /generated_frames")


def check_plot_report(work):
    tool = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools", "plot_report.py")
    cei = os.path.join(work, "cei.csv")
    with open(cei, "w") as f:
        f.write("block,pi,rank\n0,0.5,2\n1,0.9,1\n2,-0.1,3\n")
    p = subprocess.run([sys.executable, tool, os.path.join(work, "run/metrics.csv"), "--cei", cei, "--out",
                        os.path.join(work, "report")], capture_output=True, text=True)
    made = sorted(os.listdir(os.path.join(work, "report"))) if p.returncode == 0 else []
    check(made == ["cei.png", "loss_step.png", "loss_time.png", "m_stage.png"],
          f"tools/plot_report.py draws the run's metrics.csv and a cei.csv: {made} {p.stderr.strip()[-200:]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entprog", required=True)
    ap.add_argument("--test-sample", required=True)
    ap.add_argument("--deck", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--mpiexec")
    args = ap.parse_args()
    args.deck = os.path.abspath(args.deck)
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    r = Runner(args)
    deck = args.deck
    S = lambda kv: ["--set", kv]

    check_gif_fixtures(args.test_sample, args.work)
    r.run("datagen", deck)
    r.run("train", deck, *S("train.steps=3"), *S("train.out_dir=run"))
    r.run("train", deck, *S("train.steps=3"), *S("train.out_dir=run_ema"), *S("train.ema=0.5"))
    p = r.run("sample", deck, "--ckpt", "run/ckpt_00000003.h5", "--steps", "5", "--n", "2", "--out", "s")
    check("ETA" in p.stdout and "wrote s/samples.h5" in p.stdout, "sample prints progress lines with an ETA")
    p = r.run("eval", "--samples", "s/samples.h5")
    check("mean" in p.stdout and "SSIM" in p.stdout, "eval prints a table")
    s = check_samples_file(os.path.join(args.work, "s/samples.h5"), os.path.join(args.work, "data/test.h5"), 4, 2)
    check_gifs(os.path.join(args.work, "s"), s, 8.0)
    check_grid(os.path.join(args.work, "s/grid.png"), s)
    check_eval(os.path.join(args.work, "s/eval.json"), os.path.join(args.work, "s/eval.csv"), s)
    check_identical_eval(r, os.path.join(args.work, "s/samples.h5"))
    check_reference_ddim(r, deck)
    check_mpi_and_batch(r, s["generated"], deck)
    check_options(r, deck, s["generated"])
    check_errors(r, deck)
    check_plot_report(args.work)
    print(f"{len(failures)} failure(s)" if failures else "all checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
