#!/usr/bin/python3
"""Time one training step of the PyTorch reference EP-VDiT in float32 on CPU.

A step is forward (video pass + reference pass) + MSE loss + backward + AdamW
(torch.optim.AdamW, lr 1e-4, wd 0.01). Random inputs, docs/model.md initialisation
followed by a small random perturbation of every tensor so that the
zero-initialised ones are non-zero (otherwise autograd would still do the same
work, but the numbers would be degenerate). Prints `torch_step_ms <median>`.

    /usr/bin/python3 benchmarks/torch_step.py --threads 2 --steps 10 [--json out.json]

Defaults are the `small` shape: B=4 F=8 C=3 H=W=32 p=4 D=128 NH=4 L=6
mlp_ratio=4 Cp=3 s=2 Cg=16.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import epvdit as E  # noqa: E402

SMALL = dict(B=4, F=8, C=3, H=32, W=32, p=4, D=128, NH=4, L=6, mlp_ratio=4, Cp=3, s=2, Cg=16)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for k, v in SMALL.items():
        ap.add_argument(f"--{k}", type=int, default=v)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--steps", type=int, default=10, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the result as JSON to this file")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    gen = torch.Generator().manual_seed(a.seed)
    cfg = {k: getattr(a, k) for k in SMALL if k != "B"}
    model = E.EPVDiT(**cfg).float()
    E.init_model_md(model, gen)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1e-3 * torch.randn(p.shape, generator=gen))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)

    B, F, C, H, W = a.B, a.F, a.C, a.H, a.W
    x0 = torch.randn(B, F, C, H, W, generator=gen)
    eps = torch.randn(B, F, C, H, W, generator=gen)
    t = torch.randint(0, E.T_STEPS, (B,), generator=gen)
    x = E.q_sample(x0, t, eps).float()
    ref = torch.randn(B, C, H, W, generator=gen)
    pose = torch.rand(B, F, a.Cp, a.s * H, a.s * W, generator=gen)
    drop_ref = torch.zeros(B, dtype=torch.bool)
    drop_pose = torch.zeros(B, dtype=torch.bool)

    def step():
        opt.zero_grad(set_to_none=False)
        loss = E.loss_fn(model(x, t, ref, pose, drop_ref, drop_pose), eps)
        loss.backward()
        opt.step()
        return loss.item()

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append((time.perf_counter() - t0) * 1e3)
    med = statistics.median(times)
    print(f"torch_step_ms {med:.3f}")
    if a.json:
        res = dict(torch_step_ms=med, times_ms=times, threads=a.threads, steps=a.steps, warmup=a.warmup,
                   shape=dict(B=B, **cfg), last_loss=loss, torch=torch.__version__,
                   params=sum(p.numel() for p in model.parameters()), machine=platform.processor() or platform.machine())
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
