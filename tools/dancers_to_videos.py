#!/usr/bin/python3
"""A folder that `entprog import-video` reads, made from a datagen split file:
each synthetic dancer becomes an H.264 MP4 (Debian's ffmpeg, libx264) and its
keypoints per-frame OpenPose JSON (COCO-18, pixel centres at integers,
confidence 0.9), the layout of docs/data.md:

    OUT/videos/dancer000.mp4 ...
    OUT/poses/dancer000/000000000000_keypoints.json ...

  dancers_to_videos.py --data data/train.h5 --out DIR [--fps 8] [--crf 18] [--n N] [--scale K]

--scale K enlarges the videos K times (ffmpeg's bicubic scaler) and the
keypoints with them, for sources the size of real ones.
"""
import argparse
import json
import os
import subprocess

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="a dataset file written by entprog datagen")
    ap.add_argument("--out", required=True)
    ap.add_argument("--fps", type=float, default=8)
    ap.add_argument("--crf", type=int, default=18, help="libx264 quality (0 lossless, 18 near transparent)")
    ap.add_argument("--n", type=int, default=0, help="videos to write (0: all)")
    ap.add_argument("--scale", type=int, default=1, help="enlarge videos and keypoints K times")
    a = ap.parse_args()
    with h5py.File(a.data, "r") as f:
        frames, kp = f["frames"], f["keypoints"][...]
        n = frames.shape[0] if a.n <= 0 else min(a.n, frames.shape[0])
        for v in range(n):
            clip = frames[v]  # [T,3,h,w]
            t, _, h, w = clip.shape
            path = os.path.join(a.out, "videos", f"dancer{v:03d}.mp4")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            raw = np.ascontiguousarray(clip.transpose(0, 2, 3, 1)).tobytes()
            subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
                            "-s", f"{w}x{h}", "-r", str(a.fps), "-i", "-", "-vf", f"scale={w * a.scale}:{h * a.scale}", "-c:v", "libx264", "-crf", str(a.crf),
                            "-pix_fmt", "yuv420p", path], input=raw, check=True)
            pdir = os.path.join(a.out, "poses", f"dancer{v:03d}")
            os.makedirs(pdir, exist_ok=True)
            for i in range(t):
                flat = [0.0] * 54  # eyes and ears (14..17) not found
                for j in range(14):
                    flat[3 * j:3 * j + 3] = [float(kp[v, i, j, 0]) * a.scale - 0.5,
                                              float(kp[v, i, j, 1]) * a.scale - 0.5, 0.9]
                with open(os.path.join(pdir, f"{i:012d}_keypoints.json"), "w") as g:
                    json.dump({"version": 1.3, "people": [{"person_id": [-1], "pose_keypoints_2d": flat}]}, g)
    print(f"dancers_to_videos: {n} videos -> {a.out}/videos, {a.out}/poses")


if __name__ == "__main__":
    main()
