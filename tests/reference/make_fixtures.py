#!/usr/bin/python3
"""Write the committed reference fixtures under tests/fixtures/ (see docs/verification.md).

    /usr/bin/python3 tests/reference/make_fixtures.py [--out DIR] [--skip-checks]

Everything is computed in float64 from float32-rounded weights and inputs, then
stored as float32 (losses as float64), so the fixtures are more exact than the
C fp32 code they judge. The script is deterministic (one seeded generator).

Before writing, it checks the reference itself (gradcheck of the whole model on
a very small float64 shape, skip/mask/zero-init identities) and prints a summary.
"""
import argparse
import copy
import math
import os
import sys
import time

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import epvdit as E  # noqa: E402

SEED = 20240917
TINY = dict(F=4, C=3, H=16, W=16, p=2, D=32, NH=2, L=3, mlp_ratio=4, Cp=3, s=2, Cg=8)
B = 2
CASES = {
    # name: (F, drop_ref, drop_pose)
    "video": (4, [0, 0], [0, 0]),
    "video_drop": (4, [1, 0], [0, 1]),
    "image": (1, [0, 0], [0, 0]),
    "video_fe_temporal": (4, [0, 1], [1, 0]),
}
# model.frame_embed of a case when not "input" (docs/model.md item 3); its
# inputs file carries it as an attribute, check_reference.py gives it to the weights
FRAME_EMBED = {"video_fe_temporal": "temporal"}
ADAMW = dict(lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01)
ADAMW_STEPS = 5
HYPER_KEYS = ["F", "C", "H", "W", "p", "D", "NH", "L", "mlp_ratio", "Cp", "s", "Cg"]

torch.set_default_dtype(torch.float64)
DT = torch.float64


def model_string(cfg):
    return f"EP-VDiT D{cfg['D']} L{cfg['L']} NH{cfg['NH']} p{cfg['p']}"


def f32(t):
    """Round a float64 tensor to float32 and back (what the files can hold)."""
    return t.float().double()


# ---------------------------------------------------------------------------
# Inputs and forward/backward
# ---------------------------------------------------------------------------
def make_inputs(cfg, nframes, drop_ref, drop_pose, gen):
    C, H, W, Cp, s = cfg["C"], cfg["H"], cfg["W"], cfg["Cp"], cfg["s"]
    t = torch.randperm(E.T_STEPS, generator=gen)[:B].to(torch.int32)  # distinct per sample
    x0 = torch.randn(B, nframes, C, H, W, generator=gen, dtype=DT)
    eps = f32(torch.randn(B, nframes, C, H, W, generator=gen, dtype=DT))
    x = f32(E.q_sample(x0, t, eps))
    ref = f32(torch.randn(B, C, H, W, generator=gen, dtype=DT))
    pose = f32(torch.rand(B, nframes, Cp, s * H, s * W, generator=gen, dtype=DT))
    return dict(x=x, t=t, ref=ref, pose=pose, eps=eps,
                drop_ref=torch.tensor(drop_ref, dtype=torch.uint8),
                drop_pose=torch.tensor(drop_pose, dtype=torch.uint8))


def run(model, inp, skip=()):
    return model(inp["x"], inp["t"].long(), inp["ref"], inp["pose"],
                 inp["drop_ref"].bool(), inp["drop_pose"].bool(), skip=skip)


def loss_and_grads(model, inp):
    model.zero_grad(set_to_none=False)
    eps_hat = run(model, inp)
    loss = E.loss_fn(eps_hat, inp["eps"])
    loss.backward()
    grads = {n: (p.grad if p.grad is not None else torch.zeros_like(p)).detach().clone()
             for n, p in model.named_parameters()}
    return eps_hat.detach(), loss.item(), grads


def adamw_trajectory(model, inp, steps):
    m = copy.deepcopy(model)
    opt = torch.optim.AdamW(m.parameters(), lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]),
                            eps=ADAMW["eps"], weight_decay=ADAMW["weight_decay"])
    losses = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=False)
        loss = E.loss_fn(run(m, inp), inp["eps"])
        losses.append(loss.item())
        loss.backward()
        opt.step()
    return losses, {n: p.detach().clone() for n, p in m.named_parameters()}


# ---------------------------------------------------------------------------
# HDF5 writers
# ---------------------------------------------------------------------------
def _root_attrs(f):
    f.attrs["format_version"] = np.int64(1)


def _str_attr(f, key, val):
    f.attrs[key] = np.bytes_(val)  # fixed-length, null-terminated ASCII


def _put(grp, name, arr, compress):
    kw = {}  # contiguous: random float32 does not compress, and chunking adds overhead
    grp.create_dataset(name, data=arr, **kw)


def write_weights(path, model, cfg):
    with h5py.File(path, "w") as f:
        _root_attrs(f)
        _str_attr(f, "model", model_string(cfg))
        for k in HYPER_KEYS:
            f.attrs[k] = np.int64(cfg[k])
        g = f.create_group("model")
        for n, p in model.state_dict().items():
            _put(g, n, p.float().numpy(), compress=False)


def write_inputs(path, inp, frame_embed=None):
    with h5py.File(path, "w") as f:
        _root_attrs(f)
        if frame_embed:
            _str_attr(f, "frame_embed", frame_embed)
        f["x"] = inp["x"].float().numpy()
        f["t"] = inp["t"].numpy().astype(np.int32)
        f["ref"] = inp["ref"].float().numpy()
        f["pose"] = inp["pose"].float().numpy()
        f["drop_ref"] = inp["drop_ref"].numpy().astype(np.uint8)
        f["drop_pose"] = inp["drop_pose"].numpy().astype(np.uint8)
        f["eps"] = inp["eps"].float().numpy()


def write_expect(path, eps_hat, loss, grads, adamw=None):
    with h5py.File(path, "w") as f:
        _root_attrs(f)
        _put(f, "eps_hat", eps_hat.float().numpy(), compress=True)
        f.create_dataset("loss", data=np.float64(loss))
        g = f.create_group("grad")
        for n, v in grads.items():
            _put(g, n, v.float().numpy(), compress=True)
        if adamw is not None:
            losses, final = adamw
            a = f.create_group("adamw")
            for k, v in ADAMW.items():
                a.attrs[k] = np.float64(v)
            a.attrs["steps"] = np.int64(len(losses))
            a.create_dataset("losses", data=np.asarray(losses, dtype=np.float64))
            fg = a.create_group("final")
            for n, v in final.items():
                _put(fg, n, v.float().numpy(), compress=True)


# ---------------------------------------------------------------------------
# Self-checks of the reference
# ---------------------------------------------------------------------------
def check_names(model, cfg):
    exp = E.expected_param_shapes(cfg)
    sd = model.state_dict()
    assert list(sd) == list(exp), "state_dict names differ from docs/model.md"
    for n, shp in exp.items():
        assert tuple(sd[n].shape) == shp, f"{n}: {tuple(sd[n].shape)} != {shp}"
    return f"{len(sd)} tensors, {sum(v.numel() for v in sd.values())} values, names/shapes = docs/model.md"


def check_tables():
    # pos embed: first half depends only on the column, second half only on the row
    pe = E.pos_embed_2d(8, 3, 5)
    for k in range(15):
        r, c = divmod(k, 5)
        assert torch.equal(pe[k, :4], E.sincos_1d(4, torch.tensor([float(c)]))[0])
        assert torch.equal(pe[k, 4:], E.sincos_1d(4, torch.tensor([float(r)]))[0])
    one = E.sincos_1d(8, torch.tensor([2.0]))[0]
    want = [math.sin(2.0 / 10000 ** (i / 4)) for i in range(4)] + [math.cos(2.0 / 10000 ** (i / 4)) for i in range(4)]
    assert torch.allclose(one, torch.tensor(want), atol=1e-15, rtol=0)
    e = E.timestep_features(torch.tensor([7]))[0]
    want = [math.cos(7 * math.exp(-math.log(10000) * i / 128)) for i in range(128)]
    want += [math.sin(7 * math.exp(-math.log(10000) * i / 128)) for i in range(128)]
    assert torch.allclose(e, torch.tensor(want), atol=1e-13, rtol=0)
    # unpatchify by explicit loops
    m = E.EPVDiT(F=1, C=2, H=4, W=6, p=2, D=8, NH=2, L=1, Cp=1, s=2, Cg=2)
    out = torch.randn(1, 1, m.S, 8)
    img = m.unpatchify(out, 1)
    for tok in range(m.S):
        hr, wc = divmod(tok, m.wp)
        for i in range(2):
            for j in range(2):
                for c in range(2):
                    assert img[0, 0, c, hr * 2 + i, wc * 2 + j] == out[0, 0, tok, (i * 2 + j) * 2 + c]
    # betas
    b = E.betas()
    assert b[0] == 1e-4 and abs(b[-1].item() - 0.02) < 1e-18 and len(b) == 1000
    return "sin-cos tables, unpatchify order, betas ok"


def small_cfg(F):
    return dict(F=F, C=2, H=4, W=4, p=2, D=8, NH=2, L=2, mlp_ratio=2, Cp=2, s=2, Cg=3)


def check_gradcheck(gen):
    """torch.autograd.gradcheck of the whole model (all parameters and the
    float inputs) on a very small float64 shape, video with drops and image."""
    done = []
    # full Jacobian for the video case with drops; fast mode (random projections) for the others
    for F, dr, dp, fast in [(2, [1, 0], [0, 1], False), (2, [0, 0], [0, 0], True), (1, [0, 1], [1, 0], True)]:
        cfg = small_cfg(F)
        m = E.EPVDiT(**cfg).double()
        E.init_random_nonzero(m, gen)
        inp = make_inputs(cfg, F, dr, dp, gen)
        names = [n for n, _ in m.named_parameters()]
        params = [p.detach().clone().requires_grad_(True) for _, p in m.named_parameters()]
        xs = [inp["x"].clone().requires_grad_(True), inp["ref"].clone().requires_grad_(True),
              inp["pose"].clone().requires_grad_(True)]
        t, drf, dpf = inp["t"].long(), inp["drop_ref"].bool(), inp["drop_pose"].bool()

        def fn(*args):
            ps, (x, ref, pose) = args[:len(names)], args[len(names):]
            out = torch.nn.utils.stateless.functional_call(m, dict(zip(names, ps)), (x, t, ref, pose, drf, dpf))
            return out

        ok = torch.autograd.gradcheck(fn, tuple(params + xs), eps=1e-6, atol=1e-7, rtol=1e-5, fast_mode=fast)
        assert ok
        done.append(f"F={F} drop_ref={dr} drop_pose={dp}" + (" (fast mode)" if fast else " (full)"))
    n = sum(p.numel() for p in params)
    return f"gradcheck passed ({n} params + x, ref, pose) for " + "; ".join(done)


def check_identities(model, inp_video, inp_drop, inp_image):
    msgs = []
    with torch.no_grad():
        for name, inp in [("video", inp_video), ("video_drop", inp_drop), ("image", inp_image)]:
            a = run(model, inp)
            b = run(model, inp, skip=())
            assert torch.equal(a, b), "skip=() differs from the default forward"
            c = model.forward_per_sample(inp["x"], inp["t"].long(), inp["ref"], inp["pose"],
                                         inp["drop_ref"].bool(), inp["drop_pose"].bool())
            err = (a - c).abs().max().item()
            assert err < 1e-12, f"{name}: masked batch vs per-sample differ by {err}"
            msgs.append(f"{name}: batched(mask) vs per-sample max diff {err:.1e}")
        # skip(b) equals a model without block b (weights copied)
        cfg = dict(model.cfg)
        L = cfg["L"]
        for sk in range(L):
            cfg2 = dict(cfg, L=L - 1)
            m2 = E.EPVDiT(**cfg2).double()
            sd = {}
            keep = [i for i in range(L) if i != sk]
            for n, v in model.state_dict().items():
                if n.startswith("blocks."):
                    bi = int(n.split(".")[1])
                    if bi == sk:
                        continue
                    n = "blocks.%d.%s" % (keep.index(bi), n.split(".", 2)[2])
                sd[n] = v
            m2.load_state_dict(sd)
            for inp in (inp_video, inp_drop):
                a = run(model, inp, skip={sk})
                b = run(m2, inp)
                assert torch.equal(a, b), f"skip {sk} differs from the model without block {sk}"
        a = run(model, inp_video, skip=set(range(L)))
        msgs.append(f"skip(b) == model without block b for b = 0..{L - 1}")
        # drop_ref for every sample == bank-less model; all-dropped output independent of ref
        inp2 = dict(inp_video, drop_ref=torch.ones(B, dtype=torch.uint8))
        inp3 = dict(inp2, ref=inp_video["ref"] * 3 + 1)
        assert torch.equal(run(model, inp2), run(model, inp3))
        # drop_pose for every sample: output independent of pose
        inp2 = dict(inp_video, drop_pose=torch.ones(B, dtype=torch.uint8))
        inp3 = dict(inp2, pose=1 - inp_video["pose"])
        assert torch.equal(run(model, inp2), run(model, inp3))
        msgs.append("dropped ref/pose do not influence the output")
        # the last block's ref pass only computes a bank: its MLP/proj do not touch the banks
        banks = model.reference_banks(inp_video["ref"])
        assert sorted(banks) == list(range(L))
    return msgs


def check_zero_init(cfg, inputs, gen):
    m = E.EPVDiT(**cfg).double()
    E.init_model_md(m, gen)
    with torch.no_grad():
        for inp in inputs:
            out = run(m, inp)
            assert torch.count_nonzero(out) == 0, "docs/model.md init must give output exactly 0"
            # every block is the identity in the video pass
            z = torch.randn(B, inp["x"].shape[1], m.S, m.D, generator=gen, dtype=DT)
            c = m.t_embed(inp["t"].long())
            bank = torch.randn(B, m.S, m.D, generator=gen, dtype=DT)
            for blk in m.blocks:
                assert torch.equal(blk.forward_video(z, c, bank, None), z)
    return "docs/model.md init: output exactly 0, every block the identity"


# ---------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.normpath(os.path.join(here, "..", "fixtures")))
    ap.add_argument("--skip-checks", action="store_true", help="do not run the (slow) self-checks")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    t0 = time.time()

    gen = torch.Generator().manual_seed(SEED)
    model = E.EPVDiT(**TINY).double()
    E.init_random_nonzero(model, gen)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(f32(p))
            assert torch.count_nonzero(p) == p.numel(), "fixture weights must be non-zero everywhere"

    inputs = {}
    for case, (F, dr, dp) in CASES.items():
        inputs[case] = make_inputs(TINY, F, dr, dp, gen)

    summary = []
    if not args.skip_checks:
        summary.append(check_names(model, TINY))
        summary.append(check_tables())
        summary += check_identities(model, inputs["video"], inputs["video_drop"], inputs["image"])
        summary.append(check_zero_init(TINY, list(inputs.values()), torch.Generator().manual_seed(1)))
        summary.append(check_gradcheck(torch.Generator().manual_seed(2)))

    wpath = os.path.join(args.out, "tiny_weights.h5")
    write_weights(wpath, model, TINY)
    for case, inp in inputs.items():
        model.frame_embed_at = FRAME_EMBED.get(case, "input")
        eps_hat, loss, grads = loss_and_grads(model, inp)
        adamw = adamw_trajectory(model, inp, ADAMW_STEPS) if case == "video" else None
        write_inputs(os.path.join(args.out, f"{case}_in.h5"), inp, FRAME_EMBED.get(case))
        write_expect(os.path.join(args.out, f"{case}_expect.h5"), eps_hat, loss, grads, adamw)
        gmax = max(v.abs().max().item() for v in grads.values())
        gmin = min(v.abs().max().item() for v in grads.values())
        zero = [n for n, v in grads.items() if torch.count_nonzero(v) == 0]
        line = (f"{case}: t={inp['t'].tolist()} drop_ref={inp['drop_ref'].tolist()} "
                f"drop_pose={inp['drop_pose'].tolist()} loss={loss:.10f} |eps_hat|max={eps_hat.abs().max():.3f} "
                f"grad max|.| per tensor in [{gmin:.2e}, {gmax:.2e}]")
        if zero:
            line += f"; all-zero grads: {len(zero)} ({', '.join(sorted(set(n.split('.', 2)[-1] for n in zero)))})"
        if adamw is not None:
            line += "\n  adamw losses: " + " ".join(f"{v:.8f}" for v in adamw[0])
        summary.append(line)

    print("make_fixtures: reference self-checks and fixtures")
    for s in summary:
        print("  - " + s)
    total = 0
    for fn in sorted(os.listdir(args.out)):
        if fn.endswith(".h5"):
            total += os.path.getsize(os.path.join(args.out, fn))
    print(f"  wrote {args.out} ({total / 1024:.0f} KiB) in {time.time() - t0:.1f} s")


if __name__ == "__main__":
    main()
