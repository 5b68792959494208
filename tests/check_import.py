#!/usr/bin/python3
"""Checks of `entprog import-video` (docs/data.md) on real MP4 files.

  check_import.py --entprog ENTPROG --work DIR [--mpiexec MPIEXEC]

The sources are synthetic dancers: `entprog datagen` renders frames and
keypoints at 32x32 and 64x64; Debian's ffmpeg (libx264) encodes them as H.264
MP4, one video stays a PNG frame folder, and the keypoints become OpenPose JSON
(COCO-18, one video BODY_25, a low-confidence decoy person, one joint below
--min-conf). Checked:
  * centre crop, 32x32 -> the tiny deck (16x16, pose maps 32x32): pose maps
    equal the source's bit for bit (same keypoints, same renderer), keypoints
    are the source's halved exactly, frames are the source's 2x2 block means
    (PNG: within 1 of rounding; MP4: the tolerance below), the left-out joint
    is not drawn, latents are frames/127.5 - 1, the split is by video;
  * person crop, 64x64 source: /crop equals the box rule recomputed here,
    frames equal an area resample of the source over it computed here;
  * fps resampling (a 16 fps video imported at 8 fps takes every other frame);
  * --pose-videos: the dancers' pose maps rendered to H.264 MP4 (at twice the
    videos' size) and one PNG pose-frame folder: no /keypoints, the crop is
    the pose-pixel box rule recomputed here, pose maps and frames are area
    resamples of the sources over it (PNG: within rounding; MP4: the PV_
    tolerances below), the reference has the most pose pixels, 2 ranks write
    the same files as 1; a pose video 4 frames short and a missing pose video
    are refused naming the file;
  * 2 MPI ranks write the same files as 1;
  * each bad input (truncated MP4, not a video, missing pose folder, missing
    pose files, bad JSON, too few frames, no person) stops the import naming
    the file with nothing left behind, and --skip-bad lists them all;
  * `entprog train` trains 3 steps on the imported folder.
Runs under /usr/bin/python3 (Debian's h5py and numpy).
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

# H.264 at CRF 12 in yuv420p: luma error is ~1 level, chroma is stored at half
# resolution, so a pixel's colour where clothes meet the wall is smeared over
# 2x2 source pixels. A 2x2 (or larger) block mean halves the noise, but a
# colour edge inside a block can still move the mean by tens of levels, and
# the smallest frames (32x32) are nearly all edges. Measured with Debian 12's
# libx264: mean 1.5-2.0 levels, 99th percentile 8.5-12.8, PSNR 38-41 dB. The
# bounds leave about 1.5x headroom for other encoder builds: mean absolute
# error below 3 levels, 99% of values within 16, PSNR above 34 dB. (A frame
# taken from the wrong time or place fails them by far: the dancer moves.)
MP4_MEAN_ABS, MP4_P99, MP4_PSNR = 3.0, 16.0, 34.0
POSE_INK = 64  # a pose-video pixel with a channel >= 64 is part of the pose (import_one.c)
# Pose videos (--pose-videos): saturated one-to-two-pixel lines on black, H.264 at CRF 12 in yuv420p at
# twice the pose maps' size, then 2x2 area means. The codec rings around every line and 4:2:0 smears its
# colour over 2x2 cells (at the pose maps' own size the lines are no wider than a chroma cell, and the error
# triples: PSNR 24.5 dB, seen while the test was written; real pose videos are hundreds of pixels wide).
# Measured with Debian 12's libx264: mean 1.4-1.8 levels, 99th percentile 17-22, PSNR 34.4-36.5 dB; the
# next frame's pose map instead of the right one is off by mean 5.8-9.5, p99 110-185, PSNR 17.6-21.6 dB.
# Bounds: mean below 3, 99% within 32, PSNR above 30 dB. The crop: the codec can move an edge pixel across
# the pose-pixel threshold, half a source pixel at this size, grown by the margin: measured within 0.15 px,
# bound 1 px. The reference frame: frames of a clip differ by a few pose pixels at the top (the least inked
# have 0.59-0.89 of the most), so the codec may swap near-equal ones: measured >= 0.94 of the most, bound
# 0.9; without compression (the PNG pose frames) it must be the exact argmax.
PV_MEAN_ABS, PV_P99, PV_PSNR, PV_CROP_PX, PV_REF_FRACTION = 3.0, 32.0, 30.0, 1.0, 0.9
T, H, W, S = 12, 16, 16, 2

DECK = """[model]
F = 4
C = 3
H = {h}
W = {w}
p = 2
D = 32
NH = 2
L = 3
mlp_ratio = 4
Cp = 3
s = {s}
Cg = 8
[data]
dir = {dir}
n_train = {n}
n_val = 0
n_test = 0
frames = {t}
seed = {seed}
fps = 8
[train]
out_dir = run
steps = 3
batch = 2
val_every = 0
ckpt_every = 0
log_every = 1
"""

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)
        print("FAIL:", msg, file=sys.stderr)
    return cond


def run(cmd, cwd, expect_ok=True):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    if expect_ok and r.returncode != 0:
        print(r.stdout, r.stderr, file=sys.stderr)
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited {r.returncode}")
    return r


def make_source(entprog, work, name, size, n, t, seed):
    d = os.path.join(work, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "deck.ini"), "w") as f:
        f.write(DECK.format(h=size, w=size, s=1, dir="data", n=n, t=t, seed=seed))
    run([entprog, "datagen", "deck.ini"], d)
    with h5py.File(os.path.join(d, "data", "train.h5"), "r") as f:
        return f["frames"][...], f["pose"][...], f["keypoints"][...]


def write_mp4(path, frames, fps):
    """frames [T,3,h,w] uint8 -> H.264 MP4 through Debian's ffmpeg."""
    t, _, h, w = frames.shape
    raw = np.ascontiguousarray(frames.transpose(0, 2, 3, 1)).tobytes()
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
                    "-r", str(fps), "-i", "-", "-c:v", "libx264", "-preset", "medium", "-crf", "12",
                    "-pix_fmt", "yuv420p", path], input=raw, check=True)


def write_pngs(folder, frames):
    os.makedirs(folder, exist_ok=True)
    for i, fr in enumerate(frames):
        raw = np.ascontiguousarray(fr.transpose(1, 2, 0)).tobytes()
        h, w = fr.shape[1:]
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
                        "-i", "-", os.path.join(folder, f"frame_{i:04d}.png")], input=raw, check=True)


COCO = 18
BODY25_OF = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14]  # our 14 joints in BODY_25


def write_poses(folder, kp, body25=False, conf=None, decoy=False):
    """kp [T,14,2] in raster pixels (centres at +0.5) -> OpenPose JSON (centres at integers)."""
    os.makedirs(folder, exist_ok=True)
    for i, k in enumerate(kp):
        n = 25 if body25 else COCO
        flat = [0.0] * (3 * n)
        for j in range(14):
            s = BODY25_OF[j] if body25 else j
            c = 0.9 if conf is None else float(conf[i][j])
            flat[3 * s:3 * s + 3] = [float(k[j, 0]) - 0.5, float(k[j, 1]) - 0.5, c]
        people = [{"person_id": [-1], "pose_keypoints_2d": flat}]
        if decoy:  # a bystander, found with less confidence: must not be taken
            people.insert(0, {"person_id": [-1], "pose_keypoints_2d": [1.0, 1.0, 0.2] * n})
        with open(os.path.join(folder, f"{i:012d}_keypoints.json"), "w") as f:
            json.dump({"version": 1.3, "people": people}, f)


def block_mean(frames, f):
    t, c, h, w = frames.shape
    return frames.reshape(t, c, h // f, f, w // f, f).astype(np.float64).mean(axis=(3, 5))


def compare_frames(got, want, what, lossy):
    err = np.abs(got.astype(np.float64) - want)
    if not lossy:
        return check(err.max() <= 1.0, f"{what}: frames differ from the source's block means by {err.max():.2f} > 1")
    mse = (err ** 2).mean()
    psnr = 10 * np.log10(255.0 ** 2 / max(mse, 1e-12))
    p99 = np.percentile(err, 99)
    print(f"  {what}: H.264 error mean {err.mean():.2f}, p99 {p99:.1f}, max {err.max():.0f}, PSNR {psnr:.1f} dB")
    return check(err.mean() < MP4_MEAN_ABS and p99 <= MP4_P99 and psnr > MP4_PSNR,
                 f"{what}: H.264 error mean {err.mean():.2f} p99 {p99:.1f} PSNR {psnr:.1f} beyond the tolerance")


def compare_pose(got, want, what, lossy):
    err = np.abs(got.astype(np.float64) - want)
    if not lossy:
        return check(err.max() <= 1.0, f"{what}: pose maps differ from the source's resample by {err.max():.2f} > 1")
    psnr = 10 * np.log10(255.0 ** 2 / max((err ** 2).mean(), 1e-12))
    p99 = np.percentile(err, 99)
    print(f"  {what}: pose maps' H.264 error mean {err.mean():.2f}, p99 {p99:.1f}, max {err.max():.0f}, "
          f"PSNR {psnr:.1f} dB")
    return check(err.mean() < PV_MEAN_ABS and p99 <= PV_P99 and psnr > PV_PSNR,
                 f"{what}: pose maps' H.264 error mean {err.mean():.2f} p99 {p99:.1f} PSNR {psnr:.1f} beyond the tolerance")


def read_split(path):
    with h5py.File(path, "r") as f:
        d = {k: f[k][...] for k in f.keys()}
        d["attrs"] = dict(f.attrs)
    d["source_video"] = [s.decode() for s in d["source_video"]]
    return d


def read_all(out):
    return {sp: read_split(os.path.join(out, sp + ".h5")) for sp in ("train", "val", "test")
            if os.path.exists(os.path.join(out, sp + ".h5"))}


def axis_weights(a, b, n, length):
    step = (b - a) / n
    w = np.zeros((n, length))
    for o in range(n):
        lo, hi = a + o * step, a + (o + 1) * step
        for i in range(int(np.floor(lo)), int(np.ceil(hi)) + 1):
            if 0 <= i < length:
                w[o, i] = max(0.0, min(hi, i + 1) - max(lo, i)) / step
    return w


def person_crop(kp, conf, w, h, margin=0.15, min_conf=0.3, aspect=1.0):
    """The crop rule of docs/data.md, recomputed: kp [n,14,2] raster pixels."""
    m = conf >= min_conf
    xs, ys = kp[..., 0][m], kp[..., 1][m]
    return box_crop(xs.min(), xs.max(), ys.min(), ys.max(), w, h, margin, aspect)


def ink_box(pose, ink=POSE_INK):
    """The box (pixel edges) of the pose pixels of pose maps [n,3,h,w]: a channel >= ink (docs/data.md)."""
    m = pose.max(axis=1) >= ink
    ys, xs = np.nonzero(m.any(axis=0))
    return xs.min(), xs.max() + 1, ys.min(), ys.max() + 1


def box_crop(x0, x1, y0, y1, w, h, margin=0.15, aspect=1.0):
    pad = margin * max(x1 - x0, y1 - y0, 1.0)
    cw, ch = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if cw < ch * aspect:
        cw = ch * aspect
    else:
        ch = cw / aspect
    if cw > w:
        cw, ch = w, w / aspect
    if ch > h:
        ch, cw = h, h * aspect
    x0 = min(max(cx - cw / 2, 0), w - cw)
    y0 = min(max(cy - ch / 2, 0), h - ch)
    return np.array([x0, y0, x0 + cw, y0 + ch])


def decode_mp4(path):
    """All frames of a video as [n,h,w,3] uint8, decoded by Debian's ffprobe/ffmpeg (not by entprog)."""
    wh = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                         "stream=width,height,codec_name", "-of", "csv=p=0", path],
                        capture_output=True, text=True, check=True).stdout.strip().split(",")
    codec, w, h = wh[0], int(wh[1]), int(wh[2])
    raw = subprocess.run(["ffmpeg", "-loglevel", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    return codec, np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


def zoom(planar, z):
    """[3,h,w] -> [h*z,w*z,3], nearest neighbour, as sample.c's blit."""
    return planar.transpose(1, 2, 0).repeat(z, axis=0).repeat(z, axis=1).astype(np.float64)


def check_mp4s(folder):
    """sample_0.mp4 = the generated frames; side_by_side_0.mp4 = reference | pose | generated | truth.
    Tolerance: H.264 at CRF 18 in 4:2:0 on the near-noise frames of a 3-step model (every 16x16 frame
    pixel a different colour, the hardest case for a codec); measured mean error 5.7 levels, bound 12. A
    wrong frame or panel is off by 30 to 145 levels on average (seen while the test was written)."""
    with h5py.File(os.path.join(folder, "samples.h5"), "r") as f:
        gen, truth, ref = f["generated_frames"][0], f["ground_truth_frames"][0], f["reference_frames"][0]
        pose = f["pose"][0]
    F, _, h, w = gen.shape
    z = -(-128 // min(h, w))  # SAMPLE_GIF_MIN_PX = 128
    codec, v = decode_mp4(os.path.join(folder, "sample_0.mp4"))
    check(codec == "h264" and v.shape == (F, h * z, w * z, 3), f"sample_0.mp4: {codec} {v.shape}")
    if v.shape == (F, h * z, w * z, 3):
        err = np.mean([np.abs(v[t] - zoom(gen[t], z)).mean() for t in range(F)])
        print(f"  sample_0.mp4: mean error {err:.2f} against /generated_frames")
        check(err < 12, f"sample_0.mp4: mean error {err:.2f} against the generated frames")
    codec, v = decode_mp4(os.path.join(folder, "side_by_side_0.mp4"))
    cw, ch, gap = w * z, h * z, 2
    check(codec == "h264" and v.shape == (F, ch + 2 * gap, 4 * (cw + gap) + gap, 3), f"side_by_side_0.mp4: {v.shape}")
    if v.shape[0] == F:
        pz, worst = cw // pose.shape[-1], 0.0
        for t in range(F):
            for c, want in enumerate([zoom(ref, z), zoom(pose[t], pz) if pz >= 1 else None, zoom(gen[t], z),
                                      zoom(truth[t], z)]):
                if want is None:
                    continue
                x0 = gap + c * (cw + gap)
                err = np.abs(v[t, gap:gap + ch, x0:x0 + cw] - want).mean()
                worst = max(worst, err)
                check(err < 12, f"side_by_side_0.mp4 frame {t} panel {c}: mean error {err:.2f}")
        print(f"  side_by_side_0.mp4: worst panel mean error {worst:.2f}")
    check(not glob.glob(os.path.join(folder, "*.tmp")), "sample: temporary files left")


def leftovers(out):
    return sorted(glob.glob(os.path.join(out, "*.h5")) + glob.glob(os.path.join(out, "*.tmp")))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entprog", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--mpiexec", default="")
    a = ap.parse_args()
    ep = os.path.abspath(a.entprog)
    work = os.path.abspath(a.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    with open(os.path.join(work, "tiny.ini"), "w") as f:
        f.write(DECK.format(h=H, w=W, s=S, dir="data", n=8, t=T, seed=1))

    # ---- sources: 5 dancers at 32x32 (24 frames), 3 at 64x64 (12 frames)
    fr32, pose32, kp32 = make_source(ep, work, "src32", 32, 5, 24, seed=7)
    fr64, _, kp64 = make_source(ep, work, "src64", 64, 3, 12, seed=9)
    vids, poses = os.path.join(work, "videos"), os.path.join(work, "poses")
    os.makedirs(vids)
    low = np.full((24, 14), 0.9)
    low[:, 7] = 0.1  # l_wrist below --min-conf: not drawn
    for i in range(4):
        write_mp4(os.path.join(vids, f"dance{i}.mp4"), fr32[i], 8)
        write_poses(os.path.join(poses, f"dance{i}"), kp32[i], body25=(i == 1), decoy=(i == 2),
                    conf=low if i == 3 else None)
    write_pngs(os.path.join(vids, "dance4"), fr32[4])  # a frame folder (lossless)
    write_poses(os.path.join(poses, "dance4"), kp32[4])

    # ---- centre crop into the tiny deck
    out = os.path.join(work, "out1")
    r = run([ep, "import-video", "tiny.ini", "--videos", vids, "--poses", poses, "--out", out, "--centre-crop",
             "--val", "1", "--test", "1", "--seed", "3", "--src-fps", "8"], work)
    print(r.stdout.strip())
    ds = read_all(out)
    check(sorted(ds) == ["test", "train", "val"], f"splits written: {sorted(ds)}")
    seen = {}
    for sp, d in ds.items():
        n = len(d["source_video"])
        check(d["latents"].shape == (n, T, 3, H, W) and d["pose"].shape == (n, T, 3, S * H, S * W), f"{sp}: shapes")
        check(d["frames"].dtype == np.uint8 and d["pose"].dtype == np.uint8, f"{sp}: dtypes")
        check(np.array_equal(d["latents"], d["frames"].astype(np.float32) / np.float32(127.5) - np.float32(1)),
              f"{sp}: latents are not frames/127.5 - 1")
        check(int(d["attrs"]["format_version"]) == 1 and d["attrs"]["latent_space"] in ("pixel", b"pixel")
              and float(d["attrs"]["fps"]) == 8.0, f"{sp}: root attributes")
        for j, name in enumerate(d["source_video"]):
            check(seen.get(name, sp) == sp, f"video {name} in two splits")
            seen[name] = sp
            i = int(name[-1])
            k = 0 if j == 0 or d["source_video"][j - 1] != name else 1
            src = d["source_frame"][j]
            check(np.array_equal(src, np.arange(k * T, (k + 1) * T)), f"{name} clip {k}: source frames {src}")
            check(np.allclose(d["crop"][j], [0, 0, 32, 32]), f"{name}: centre crop {d['crop'][j]}")
            check(np.array_equal(d["keypoints"][j], kp32[i][src] / 2), f"{name}: keypoints not the source's halved")
            check(0 <= d["ref_frame"][j] < T, f"{name}: ref_frame {d['ref_frame'][j]}")
            want_pose = pose32[i][src]
            if i != 3:
                check(np.array_equal(d["pose"][j], want_pose),
                      f"{name}: pose maps differ from the source's in {(d['pose'][j] != want_pose).sum()} values")
            else:  # l_wrist left out: its joint colour (hue 7/14: cyan) and its forearm are gone, the rest is there
                cyan = lambda p: ((p[:, 0] < 10) & (p[:, 1] > 245) & (p[:, 2] > 245)).sum()
                check(cyan(want_pose) > 0 and cyan(d["pose"][j]) == 0, f"{name}: the low-confidence wrist is drawn")
                check((d["pose"][j] > 0).sum() > 0.6 * (want_pose > 0).sum(), f"{name}: too little of the pose drawn")
            compare_frames(d["frames"][j], block_mean(fr32[i][src], 2), f"{name} clip {k}", lossy=(i != 4))
    check(sorted(seen) == [f"dance{i}" for i in range(5)], f"videos imported: {sorted(seen)}")
    check(sum(len(d["source_video"]) for d in ds.values()) == 10, "10 clips (5 videos x 24 frames / 12)")
    check(len(ds["val"]["source_video"]) == 2 and len(ds["test"]["source_video"]) == 2, "one video each in val, test")

    # ---- same seed, same files; 2 ranks, same files
    if a.mpiexec:
        out2 = os.path.join(work, "out2")
        r = run([a.mpiexec, "-n", "2", "--oversubscribe", ep, "import-video", "tiny.ini", "--videos", vids, "--poses",
                 poses, "--out", out2, "--centre-crop", "--val", "1", "--test", "1", "--seed", "3",
                 "--src-fps", "8"], work)
        ds2 = read_all(out2)
        for sp in ds:
            for key in ds[sp]:
                if key != "attrs":
                    check(np.array_equal(np.asarray(ds[sp][key]), np.asarray(ds2[sp][key])),
                          f"2 ranks: {sp} {key} differs from 1 rank")
        check(not glob.glob(os.path.join(out2, "*.tmp")), "2 ranks: temporary files left")

    # ---- person crop and fps resampling from 64x64: one 16 fps video, one 8 fps
    vids64, poses64 = os.path.join(work, "videos64"), os.path.join(work, "poses64")
    os.makedirs(vids64)
    write_pngs(os.path.join(vids64, "big0"), fr64[0])
    write_poses(os.path.join(poses64, "big0"), kp64[0])
    wide = np.concatenate([fr64[1], fr64[1]])  # 24 frames at 16 fps: 12 at 8 fps
    write_mp4(os.path.join(vids64, "big1.mp4"), wide, 16)
    write_poses(os.path.join(poses64, "big1"), np.concatenate([kp64[1], kp64[1]]))
    out3 = os.path.join(work, "out3")
    run([ep, "import-video", "tiny.ini", "--videos", vids64, "--poses", poses64, "--out", out3, "--val", "0",
         "--test", "0", "--folder-fps", "8"], work)
    d = read_split(os.path.join(out3, "train.h5"))
    check(d["source_video"] == ["big0", "big1"], f"64: videos {d['source_video']}")
    check(np.array_equal(d["source_frame"][1], np.arange(0, 24, 2)), f"16 -> 8 fps: source frames {d['source_frame'][1]}")
    for j, (frames, kp, lossy) in enumerate([(fr64[0], kp64[0], False), (wide, np.concatenate([kp64[1]] * 2), True)]):
        src = d["source_frame"][j]
        crop = person_crop(kp[src], np.full((T, 14), 0.9), 64, 64)
        check(np.allclose(d["crop"][j], crop, atol=1e-3), f"big{j}: crop {d['crop'][j]} != {crop}")
        c = d["crop"][j].astype(np.float64)
        wy, wx = axis_weights(c[1], c[3], H, 64), axis_weights(c[0], c[2], W, 64)
        want = np.einsum("oy,tcyx,px->tcop", wy, frames[src].astype(np.float64), wx)
        compare_frames(d["frames"][j], want, f"big{j} person crop", lossy)
        sc = W / (c[2] - c[0])
        got_kp = (kp[src] - c[:2]) * sc
        check(np.abs(d["keypoints"][j] - got_kp).max() < 1e-3, f"big{j}: keypoints not moved with the crop")

    # ---- rendered pose videos instead of keypoints (--pose-videos): the 32x32 dancers' pose maps as H.264
    # MP4 at twice the videos' size (nearest: the same maps; pose tools render at their own size, and the
    # lines stay wider than 4:2:0's chroma cells, as at real sizes), and, for the frame folder dance4, as
    # PNG frames at the video's size (lossless, so checked exactly)
    pvids = os.path.join(work, "pose-videos")
    os.makedirs(pvids)
    for i in range(4):
        write_mp4(os.path.join(pvids, f"dance{i}.mp4"), pose32[i].repeat(2, axis=2).repeat(2, axis=3), 8)
    write_pngs(os.path.join(pvids, "dance4"), pose32[4])
    pv_args = ["--videos", vids, "--pose-videos", pvids, "--val", "1", "--test", "1", "--seed", "3", "--src-fps", "8"]
    out_pv = os.path.join(work, "out-pv")
    run([ep, "import-video", "tiny.ini", "--out", out_pv] + pv_args, work)
    ds_pv = read_all(out_pv)
    worst = {"crop": 0.0, "ref": 1.0}
    for sp, d in ds_pv.items():
        check("keypoints" not in d and "keypoint_conf" not in d, f"pose videos, {sp}: keypoint columns written")
        check(d["attrs"].get("pose_input") in ("pose videos", b"pose videos"), f"pose videos, {sp}: pose_input")
        for j, name in enumerate(d["source_video"]):
            i, lossy = int(name[-1]), name != "dance4"
            k = 0 if j == 0 or d["source_video"][j - 1] != name else 1
            src = d["source_frame"][j]
            what = f"pose video {name} clip {k}"
            check(np.array_equal(src, np.arange(k * T, (k + 1) * T)), f"{what}: source frames {src}")
            # the crop: the box of the pose pixels over the video's frames used (all 24), the margin rule
            want_crop = box_crop(*ink_box(pose32[i]), 32, 32)
            c = d["crop"][j].astype(np.float64)
            err = np.abs(c - want_crop).max()
            if lossy:
                worst["crop"] = max(worst["crop"], err)
            check(err <= (PV_CROP_PX if lossy else 1e-3), f"{what}: crop {c} != {want_crop}")
            # pose maps and frames: area resamples of the sources over the stored crop
            wy, wx = axis_weights(c[1], c[3], S * H, 32), axis_weights(c[0], c[2], S * W, 32)
            want = np.einsum("oy,tcyx,px->tcop", wy, pose32[i][src].astype(np.float64), wx)
            compare_pose(d["pose"][j], want, what, lossy)
            wy, wx = axis_weights(c[1], c[3], H, 32), axis_weights(c[0], c[2], W, 32)
            want = np.einsum("oy,tcyx,px->tcop", wy, fr32[i][src].astype(np.float64), wx)
            compare_frames(d["frames"][j], want, what, lossy)
            # the reference: the frame with the most pose pixels
            ink = (pose32[i][src].max(axis=1) >= POSE_INK).sum(axis=(1, 2))
            ref = int(d["ref_frame"][j])
            if lossy:
                worst["ref"] = min(worst["ref"], ink[ref] / ink.max())
                check(ink[ref] >= PV_REF_FRACTION * ink.max(), f"{what}: ref_frame {ref} has {ink[ref]} pose "
                      f"pixels, the most is {ink.max()}")
            else:
                check(ref == int(np.argmax(ink)), f"{what}: ref_frame {ref}, want {int(np.argmax(ink))}")
    print(f"  pose videos: crop within {worst['crop']:.2f} px of the lossless rule, reference frames with "
          f">= {worst['ref']:.3f} of the most pose pixels")
    check(sum(len(d["source_video"]) for d in ds_pv.values()) == 10, "pose videos: 10 clips")
    if a.mpiexec:
        out_pv2 = os.path.join(work, "out-pv2")
        run([a.mpiexec, "-n", "2", "--oversubscribe", ep, "import-video", "tiny.ini", "--out", out_pv2] + pv_args,
            work)
        ds2 = read_all(out_pv2)
        for sp in ds_pv:
            for key in ds_pv[sp]:
                if key != "attrs":
                    check(key in ds2[sp] and np.array_equal(np.asarray(ds_pv[sp][key]), np.asarray(ds2[sp][key])),
                          f"pose videos, 2 ranks: {sp} {key} differs from 1 rank")
            check(sorted(ds2[sp]) == sorted(ds_pv[sp]), f"pose videos, 2 ranks: {sp} columns {sorted(ds2[sp])}")
    r = run([ep, "import-video", "tiny.ini", "--videos", vids, "--poses", poses, "--pose-videos", pvids], work,
            expect_ok=False)
    check(r.returncode != 0 and "give one of --poses" in r.stderr, f"--poses with --pose-videos: {r.stderr!r}")

    # ---- bad inputs: each alone with a good video, without and with --skip-bad
    def bad_case(name, make, expect, pose_videos=False):
        bv, bp = os.path.join(work, f"bad-{name}", "videos"), os.path.join(work, f"bad-{name}", "poses")
        os.makedirs(bv)
        write_mp4(os.path.join(bv, "good.mp4"), fr32[0], 8)
        if pose_videos:
            os.makedirs(bp)
            write_mp4(os.path.join(bp, "good.mp4"), pose32[0], 8)
        else:
            write_poses(os.path.join(bp, "good"), kp32[0])
        culprit = make(bv, bp)
        bo = os.path.join(work, f"bad-{name}", "out")
        base = [ep, "import-video", "tiny.ini", "--videos", bv, "--poses" if not pose_videos else "--pose-videos", bp,
                "--out", bo, "--val", "0", "--test", "0"]
        r = run(base, work, expect_ok=False)
        check(r.returncode != 0, f"{name}: exit 0 on a bad input")
        msg = r.stderr.replace(work, "WORK")  # the case's folder name must not make the message match
        check(culprit in msg and expect in msg, f"{name}: message lacks '{culprit}' / '{expect}': {r.stderr!r}")
        check(leftovers(bo) == [], f"{name}: left behind {leftovers(bo)}")
        r = run(base + ["--skip-bad"], work, expect_ok=False)
        check(r.returncode == 0, f"{name} --skip-bad: exit {r.returncode}: {r.stderr}")
        out_msg = r.stdout.replace(work, "WORK")
        check("skipped:" in out_msg and culprit in out_msg and expect in out_msg,
              f"{name} --skip-bad: skip list lacks it: {r.stdout!r}")
        if os.path.exists(os.path.join(bo, "train.h5")):
            got = read_split(os.path.join(bo, "train.h5"))["source_video"]
            check(got == ["good", "good"], f"{name} --skip-bad: clips {got}")
        else:
            check(False, f"{name} --skip-bad: no train.h5")
        print(f"  bad input '{name}': {r.stdout.strip().splitlines()[-1]}")

    def truncated(bv, bp):
        p = os.path.join(bv, "cut.mp4")
        write_mp4(p, fr32[1], 8)
        data = open(p, "rb").read()
        open(p, "wb").write(data[:len(data) // 2])
        write_poses(os.path.join(bp, "cut"), kp32[1])
        return "cut.mp4"

    def cut_frames(bv, bp):  # moov atom first: the demuxer opens it, the frames run out early
        p = os.path.join(bv, "cut.mp4")
        raw = np.ascontiguousarray(fr32[1].transpose(0, 2, 3, 1)).tobytes()
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "32x32",
                        "-r", "8", "-i", "-", "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p",
                        "-movflags", "+faststart", p], input=raw, check=True)
        data = open(p, "rb").read()
        open(p, "wb").write(data[:len(data) * 2 // 3])
        write_poses(os.path.join(bp, "cut"), kp32[1])
        return "cut.mp4"

    def not_video(bv, bp):
        open(os.path.join(bv, "noise.mp4"), "wb").write(os.urandom(5000))
        write_poses(os.path.join(bp, "noise"), kp32[1])
        return "noise.mp4"

    def no_pose_folder(bv, bp):
        write_mp4(os.path.join(bv, "lonely.mp4"), fr32[1], 8)
        return "lonely"

    def missing_poses(bv, bp):
        write_mp4(os.path.join(bv, "gaps.mp4"), fr32[1], 8)
        write_poses(os.path.join(bp, "gaps"), kp32[1][:20])
        return "gaps.mp4"

    def bad_json(bv, bp):
        write_mp4(os.path.join(bv, "garbled.mp4"), fr32[1], 8)
        write_poses(os.path.join(bp, "garbled"), kp32[1])
        open(os.path.join(bp, "garbled", "000000000005_keypoints.json"), "w").write('{"people": [')
        return "000000000005_keypoints.json"

    def too_short(bv, bp):
        write_mp4(os.path.join(bv, "short.mp4"), fr32[1][:8], 8)
        write_poses(os.path.join(bp, "short"), kp32[1][:8])
        return "short.mp4"

    def nobody(bv, bp):
        write_mp4(os.path.join(bv, "empty.mp4"), fr32[1], 8)
        write_poses(os.path.join(bp, "empty"), kp32[1], conf=np.zeros((24, 14)))
        return "empty.mp4"

    def pose_video_short(bv, bp):  # a pose video 4 frames short of its video
        write_mp4(os.path.join(bv, "jumpy.mp4"), fr32[1], 8)
        write_mp4(os.path.join(bp, "jumpy.mp4"), pose32[1][:20], 8)
        return "poses/jumpy.mp4"

    def no_pose_video(bv, bp):
        write_mp4(os.path.join(bv, "lonely.mp4"), fr32[1], 8)
        write_mp4(os.path.join(bp, "lonesome.mp4"), pose32[1], 8)  # a near name is no match
        return "poses/lonely"

    bad_case("pose-video-count", pose_video_short, "24 frames decoded but 20 in the pose video", pose_videos=True)
    bad_case("no-pose-video", no_pose_video, "no pose video or pose frame folder", pose_videos=True)
    bad_case("truncated", truncated, "cannot open as a video")
    bad_case("truncated-faststart", cut_frames, "corrupt or truncated video data")
    bad_case("not-a-video", not_video, "cannot open as a video")
    bad_case("no-pose-folder", no_pose_folder, "no pose folder")
    bad_case("missing-poses", missing_poses, "24 frames decoded but 20 pose files")
    bad_case("bad-json", bad_json, "not valid JSON")
    bad_case("too-short", too_short, "too few frames")
    bad_case("no-person", nobody, "no person found")

    # ---- train on the imported folder (the command of docs/data.md)
    r = run([ep, "train", "tiny.ini", "--set", "data.dir=out1", "--set", "train.out_dir=run-import"], work)
    check(os.path.exists(os.path.join(work, "run-import", "metrics.csv")), "train on the import: no metrics.csv")
    print("  train on the import:", r.stdout.strip().splitlines()[-1] if r.stdout.strip() else "")

    # ---- MP4 out: entprog sample on the imported test split writes H.264 next to the GIFs
    ck = os.path.join(work, "run-import", "ckpt_00000003.h5")
    r = run([ep, "sample", "tiny.ini", "--ckpt", ck, "--input", os.path.join(out, "test.h5"), "--n", "1",
             "--steps", "2", "--out", "samples"], work)
    check_mp4s(os.path.join(work, "samples"))

    if failures:
        print(f"{len(failures)} failure(s)", file=sys.stderr)
        return 1
    print("import-video: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
