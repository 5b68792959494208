#!/usr/bin/env python3
"""Attainable rates on this GPU, through PyTorch, at the `paper` deck's shapes
(B = 1: 16 frames x 1024 tokens, D = 1152, 16 heads x 72, MLP 4608), for
benchmarks/gpu_check.sh: what entprog's GEMMs and attention could reach.

  python3 benchmarks/torch_rates.py [--json out.json] [--quick]

- torch.matmul in bf16 at every GEMM shape of a block's forward and backward
  (16384 video tokens; the weight gradients as K = 16384 products);
- F.scaled_dot_product_attention in bf16 at the spatial+bank shape
  [16 frames x 16 heads x 1024 queries x 2048 keys x 72], forward and
  forward+backward, for each backend PyTorch offers (flash, cuDNN,
  memory-efficient); FLOPs: forward 4 Sq Skv d per head, backward 2.5x
  that (5 products against 2; recomputation of S included);
- versions: torch, CUDA, torch's cuDNN.
One line `key=value ...` per measurement; --json writes them all.
"""
import argparse, json, sys

import torch
import torch.nn.functional as F


def timed(fn, warmup, iters):
    """Mean ms of fn() over iters after warmup, by CUDA events."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    stop.record()
    torch.cuda.synchronize()
    return start.elapsed_time(stop) / iters


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json")
    ap.add_argument("--quick", action="store_true", help="fewer iterations")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch_rates: no CUDA device", file=sys.stderr)
        return 77
    warm, iters = (2, 5) if args.quick else (3, 10)
    dev = torch.device("cuda")
    out = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
           "torch_cudnn": torch.backends.cudnn.version(), "gemm": [], "sdpa": []}
    print(f'gpu="{out["gpu"]}" torch={out["torch"]} cuda={out["cuda"]} torch_cudnn={out["torch_cudnn"]}')

    N, D, Dm = 16 * 1024, 1152, 4 * 1152
    # (name, M, K, N): C[M,N] = A[M,K] B[K,N]; forward, input gradient, weight gradient of each linear
    shapes = []
    for lin, ni, no in (("qkv", D, 3 * D), ("proj", D, D), ("fc1", D, Dm), ("fc2", Dm, D)):
        shapes += [(lin + " fwd", N, ni, no), (lin + " din", N, no, ni), (lin + " dW", no, N, ni)]
    total_fl = total_ms = 0.0
    for name, M, K, Nn in shapes:
        a = torch.randn(M, K, device=dev, dtype=torch.bfloat16)
        b = torch.randn(K, Nn, device=dev, dtype=torch.bfloat16)
        ms = timed(lambda: torch.matmul(a, b), warm, iters)
        fl = 2.0 * M * K * Nn
        total_fl += fl
        total_ms += ms
        out["gemm"].append({"name": name, "M": M, "K": K, "N": Nn, "ms": ms, "tflops": fl / ms / 1e9})
        print(f"gemm={name.replace(' ', '_')} M={M} K={K} N={Nn} ms={ms:.3f} tflops={fl / ms / 1e9:.1f}")
        del a, b
    out["gemm_block_tflops"] = total_fl / total_ms / 1e9
    print(f"gemm_block_bf16_tflops={out['gemm_block_tflops']:.1f}")

    B, H, Sq, Skv, d = 16, 16, 1024, 2048, 72
    q = torch.randn(B, H, Sq, d, device=dev, dtype=torch.bfloat16, requires_grad=True)
    k = torch.randn(B, H, Skv, d, device=dev, dtype=torch.bfloat16, requires_grad=True)
    v = torch.randn(B, H, Skv, d, device=dev, dtype=torch.bfloat16, requires_grad=True)
    g = torch.randn(B, H, Sq, d, device=dev, dtype=torch.bfloat16)
    fwd_fl = 4.0 * B * H * Sq * Skv * d
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
        backends = [("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION),
                    ("efficient", SDPBackend.EFFICIENT_ATTENTION)]
    except ImportError:  # older PyTorch: whatever it picks
        backends, sdpa_kernel = [("default", None)], None

    def fwd():
        return F.scaled_dot_product_attention(q, k, v)

    def fwd_bwd():
        o = F.scaled_dot_product_attention(q, k, v)
        q.grad = k.grad = v.grad = None
        o.backward(g)

    for name, be in backends:
        try:
            ctx = sdpa_kernel([be]) if be is not None else torch.enable_grad()
            with ctx:
                with torch.no_grad():
                    ms_f = timed(fwd, warm, iters)
                ms_fb = timed(fwd_bwd, warm, iters)
        except Exception as e:  # a backend that does not take d = 72 or this GPU
            print(f"sdpa={name} unavailable: {str(e).splitlines()[0][:160]}")
            continue
        ms_b = ms_fb - ms_f
        r = {"backend": name, "fwd_ms": ms_f, "fwd_bwd_ms": ms_fb, "fwd_tflops": fwd_fl / ms_f / 1e9,
             "bwd_tflops": 2.5 * fwd_fl / ms_b / 1e9 if ms_b > 0 else None,
             "fwd_bwd_model_tflops": 3.0 * fwd_fl / ms_fb / 1e9}
        out["sdpa"].append(r)
        bw = f"{r['bwd_tflops']:.1f}" if r["bwd_tflops"] else "-"
        print(f"sdpa={name} shape=16x16x1024x2048x72 fwd_ms={ms_f:.3f} fwd_tflops={r['fwd_tflops']:.1f} "
              f"fwd_bwd_ms={ms_fb:.3f} bwd_tflops={bw} (backward counted as 2.5x forward) "
              f"fwd_bwd_model_tflops={r['fwd_bwd_model_tflops']:.1f} (model convention: 3x forward)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
