#!/usr/bin/python3
"""Compare `entprog predict` / `entprog grad` with the PyTorch reference fixtures.

    check_reference.py --entprog BUILD/entprog --case video|video_drop|image \
                       --fixtures tests/fixtures --workdir DIR [--launcher "mpirun -n 1"]
    check_reference.py --self-test --fixtures tests/fixtures --workdir DIR

Error measure, per tensor: rel = max|a - b| / max(max|b|, FLOOR), a = entprog,
b = reference (computed in float64, stored as float32). The error of an fp32
implementation is rounding accumulated over sums of up to a few thousand terms,
and it scales with the size of the tensor's values, not with each element: an
element-wise relative error would flag elements that are small only because of
cancellation (e.g. the key bias, whose exact gradient is 0). FLOOR = 1e-12 only
avoids 0/0: a tensor whose reference is exactly zero (the temporal-attention
gradients in image mode) must come out as zero too.

Tolerances: eps_hat (predict and grad) and loss rel <= 2e-6; every gradient
tensor rel <= 2e-5. fp32 implementations land at ~4e-7 and ~2e-6 (the float32
reference and entprog alike), so these leave a 5-10x margin while still
catching a LayerNorm eps of 1e-5 instead of 1e-6 (eps_hat off by 8e-6), which
the looser 1e-5 / 1e-4 first chosen let through. Missing or extra gradient names, wrong shapes, non-finite
values or a missing `format_version` root attribute are failures.

--self-test proves that the check can fail: it runs the whole pipeline with a
stand-in for entprog (the reference itself in float32, so it also shows that
the tolerances are within reach of an fp32 implementation) and then feeds the
comparison deliberately broken outputs (one gradient element perturbed, a
gradient missing, an extra one, a NaN, a perturbed loss), each of which must be
reported as a failure.
"""
import argparse
import os
import shlex
import shutil
import subprocess
import sys

import h5py
import numpy as np

FLOOR = 1e-12
TOL_OUT = 2e-6  # eps_hat and loss
TOL_GRAD = 2e-5  # every gradient tensor
HERE = os.path.dirname(os.path.abspath(__file__))
CASES = ("video", "video_drop", "image", "video_fe_temporal")


# ---------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------
class Table:
    def __init__(self):
        self.rows = []  # (name, abs_err, ref_max, rel, tol, ok, note)

    def add(self, name, abs_err, ref_max, rel, tol, ok, note=""):
        self.rows.append((name, abs_err, ref_max, rel, tol, ok, note))

    def fail(self, name, note):
        self.rows.append((name, float("nan"), float("nan"), float("nan"), float("nan"), False, note))

    @property
    def ok(self):
        return all(r[5] for r in self.rows)

    def failures(self):
        return [r for r in self.rows if not r[5]]

    def print(self, out=sys.stdout):
        w = max([len(r[0]) for r in self.rows] + [6])
        print(f"{'tensor':<{w}}  {'max abs err':>11}  {'max|ref|':>10}  {'rel err':>10}  {'tol':>7}  status", file=out)
        for name, ae, rm, rel, tol, ok, note in self.rows:
            st = "ok" if ok else "FAIL"
            if note:
                st += f" ({note})"
            print(f"{name:<{w}}  {ae:11.3e}  {rm:10.3e}  {rel:10.3e}  {tol:7.0e}  {st}", file=out)


def compare_tensor(table, name, a, b, tol):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        table.fail(name, f"shape {a.shape} != expected {b.shape}")
        return
    if not np.all(np.isfinite(a)):
        table.fail(name, f"{int(np.size(a) - np.count_nonzero(np.isfinite(a)))} non-finite values")
        return
    abs_err = float(np.max(np.abs(a - b))) if a.size else 0.0
    ref_max = float(np.max(np.abs(b))) if b.size else 0.0
    rel = abs_err / max(ref_max, FLOOR)
    table.add(name, abs_err, ref_max, rel, tol, rel <= tol)


def check_format_version(table, f, label):
    if "format_version" not in f.attrs:
        table.fail(f"{label}:format_version", "root attribute missing")


def compare_outputs(expect_path, predict_path, grad_path):
    """Returns a Table. predict_path or grad_path may be None (not compared)."""
    t = Table()
    with h5py.File(expect_path, "r") as ex:
        eps_ref = ex["eps_hat"][()]
        loss_ref = float(ex["loss"][()])
        grads_ref = {n: ex["grad"][n][()] for n in ex["grad"]}
    if predict_path is not None:
        with h5py.File(predict_path, "r") as f:
            check_format_version(t, f, "predict")
            if "eps_hat" in f:
                compare_tensor(t, "predict:eps_hat", f["eps_hat"][()], eps_ref, TOL_OUT)
            else:
                t.fail("predict:eps_hat", "missing")
    if grad_path is not None:
        with h5py.File(grad_path, "r") as f:
            check_format_version(t, f, "grad")
            if "eps_hat" in f:
                compare_tensor(t, "grad:eps_hat", f["eps_hat"][()], eps_ref, TOL_OUT)
            else:
                t.fail("grad:eps_hat", "missing")
            if "loss" in f:
                lv = np.asarray(f["loss"][()], dtype=np.float64)
                if lv.size != 1:
                    t.fail("grad:loss", f"shape {lv.shape}, expected a scalar")
                else:
                    compare_tensor(t, "grad:loss", lv.reshape(()), np.float64(loss_ref), TOL_OUT)
            else:
                t.fail("grad:loss", "missing")
            got = {}
            if "grad" in f and isinstance(f["grad"], h5py.Group):
                f["grad"].visititems(lambda n, o: got.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
            for n in grads_ref:
                if n in got:
                    compare_tensor(t, "grad/" + n, got[n], grads_ref[n], TOL_GRAD)
                else:
                    t.fail("grad/" + n, "missing")
            for n in sorted(set(got) - set(grads_ref)):
                t.fail("grad/" + n, "extra name, not a parameter")
    return t


# ---------------------------------------------------------------------------
# Running entprog
# ---------------------------------------------------------------------------
def run_entprog(cmd_prefix, sub, weights, inputs, out, log):
    if os.path.exists(out):
        os.remove(out)
    cmd = cmd_prefix + [sub, "--weights", weights, "--inputs", inputs, "--out", out]
    env = dict(os.environ)
    env.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")
    print("+ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, timeout=900)
    except subprocess.TimeoutExpired:
        print(f"entprog {sub}: timed out", file=log)
        return False
    text = p.stdout.decode(errors="replace")
    if p.returncode != 0 or not os.path.exists(out):
        print(f"entprog {sub} failed (exit {p.returncode}); its output:\n{text}", file=log)
        return False
    return True


def check_case(cmd_prefix, case, fixtures, workdir, quiet=False):
    """Runs predict and grad for one case, compares, prints the table. Returns (ok, table)."""
    os.makedirs(workdir, exist_ok=True)
    weights = os.path.join(fixtures, "tiny_weights.h5")
    inputs = os.path.join(fixtures, f"{case}_in.h5")
    expect = os.path.join(fixtures, f"{case}_expect.h5")
    for pth in (weights, inputs, expect):
        if not os.path.exists(pth):
            print(f"check_reference: missing fixture {pth}", file=sys.stderr)
            return False, None
    with h5py.File(inputs, "r") as f:
        fe = f.attrs.get("frame_embed")
    if fe is not None:  # the case's model.frame_embed goes with the weights, where entprog reads it
        fe = fe.decode() if isinstance(fe, bytes) else str(fe)
        copy = os.path.join(workdir, f"weights_frame_embed_{fe}.h5")
        shutil.copyfile(weights, copy)
        with h5py.File(copy, "a") as f:
            f.attrs["frame_embed"] = np.bytes_(fe)
        weights = copy
    pred = os.path.join(workdir, f"{case}_predict.h5")
    grad = os.path.join(workdir, f"{case}_grad.h5")
    ok_p = run_entprog(cmd_prefix, "predict", weights, inputs, pred, sys.stdout)
    ok_g = run_entprog(cmd_prefix, "grad", weights, inputs, grad, sys.stdout)
    table = compare_outputs(expect, pred if ok_p else None, grad if ok_g else None)
    if not ok_p:
        table.fail("predict", "command failed")
    if not ok_g:
        table.fail("grad", "command failed")
    if not quiet or not table.ok:
        print(f"case {case}: rel err = max|a-b| / max(max|ref|, {FLOOR:g}); "
              f"tol {TOL_OUT:g} (eps_hat, loss), {TOL_GRAD:g} (gradients)")
        table.print()
    n_fail = len(table.failures())
    print(f"case {case}: {'PASS' if table.ok else f'FAIL ({n_fail} of {len(table.rows)} checks)'}")
    return table.ok, table


# ---------------------------------------------------------------------------
# Stand-in for entprog: the reference itself, in float32 (self-test only)
# ---------------------------------------------------------------------------
def fake_entprog(argv):
    ap = argparse.ArgumentParser(prog="check_reference.py --as-entprog")
    ap.add_argument("command", choices=["predict", "grad"])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--inputs", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    a = ap.parse_args(argv)
    import torch
    sys.path.insert(0, os.path.join(HERE, "reference"))
    import epvdit as E
    torch.set_num_threads(1)
    dt = getattr(torch, a.dtype)
    with h5py.File(a.inputs, "r") as f:
        inp = {k: torch.from_numpy(f[k][()]) for k in ("x", "t", "ref", "pose", "drop_ref", "drop_pose")}
        if a.command == "grad":
            inp["eps"] = torch.from_numpy(f["eps"][()])
    with h5py.File(a.weights, "r") as f:
        cfg = {k: int(f.attrs[k]) for k in ("C", "H", "W", "p", "D", "NH", "L", "mlp_ratio", "Cp", "s", "Cg")}
        cfg["F"] = int(inp["x"].shape[1])
        sd = {n: torch.from_numpy(f["model"][n][()]) for n in f["model"]}
        fe = f.attrs.get("frame_embed", b"input")
        cfg["frame_embed"] = fe.decode() if isinstance(fe, bytes) else str(fe)
    m = E.EPVDiT(**cfg).to(dt)
    m.load_state_dict(sd)
    eps_hat = m(inp["x"].to(dt), inp["t"].long(), inp["ref"].to(dt), inp["pose"].to(dt),
                inp["drop_ref"].bool(), inp["drop_pose"].bool())
    with h5py.File(a.out, "w") as f:
        f.attrs["format_version"] = np.int64(1)
        f["eps_hat"] = eps_hat.detach().float().numpy()
        if a.command == "grad":
            e64 = eps_hat.detach().double()
            f["loss"] = np.float64(((e64 - inp["eps"].double()) ** 2).mean().item())
            loss = ((eps_hat - inp["eps"].to(dt)) ** 2).mean()
            loss.backward()
            g = f.create_group("grad")
            for n, p in m.named_parameters():
                g[n] = (p.grad if p.grad is not None else torch.zeros_like(p)).float().numpy()
    return 0


# ---------------------------------------------------------------------------
# Self-test
# ---------------------------------------------------------------------------
def _copy(src, dst):
    shutil.copyfile(src, dst)
    return dst


def self_test(fixtures, workdir):
    os.makedirs(workdir, exist_ok=True)
    results = []

    def expect(label, table, want_ok, want_name=None):
        got_ok = table.ok
        good = got_ok == want_ok
        if good and want_name is not None:
            bad = [r[0] for r in table.failures()]
            good = bad == [want_name]
            if not good:
                print(f"  expected exactly [{want_name}] to fail, got {bad}")
        results.append((label, good))
        verdict = "pass" if got_ok else "fail"
        print(f"[{'ok' if good else 'WRONG'}] {label}: checker says {verdict}, expected {'pass' if want_ok else 'fail'}")
        if not good:
            table.print()

    # 1. the reference's own outputs (a copy of the expected file) pass with zero error
    case = "video"
    exp = os.path.join(fixtures, f"{case}_expect.h5")
    base = _copy(exp, os.path.join(workdir, "selftest_base.h5"))
    t = compare_outputs(exp, base, base)
    expect("copy of the expected output", t, True)
    assert max(r[1] for r in t.rows) == 0.0

    with h5py.File(exp, "r") as f:
        names = sorted(f["grad"])
        ref = {n: f["grad"][n][()] for n in names}

    def mutated(tag, fn):
        pth = _copy(exp, os.path.join(workdir, f"selftest_{tag}.h5"))
        with h5py.File(pth, "r+") as f:
            fn(f)
        return pth

    # 2. one gradient element off by 10x the tolerance (relative to the tensor's max) -> fail, that tensor only
    victim = "blocks.1.attn_s.qkv.weight"
    bump = 10 * TOL_GRAD * float(np.max(np.abs(ref[victim])))

    def perturb(f, scale):
        d = f["grad"][victim]
        v = d[()]
        v[3, 5] += np.float32(scale * bump)
        d[...] = v
    pth = mutated("perturb", lambda f: perturb(f, 1.0))
    expect(f"one element of grad/{victim} perturbed by 10 x tol", compare_outputs(exp, base, pth), False,
           "grad/" + victim)
    # ... and by 0.5 x tol -> still passes (the check is not just always failing)
    pth = mutated("perturb_small", lambda f: perturb(f, 0.05))
    expect(f"one element of grad/{victim} perturbed by 0.5 x tol", compare_outputs(exp, base, pth), True)

    # 3. a missing and an extra gradient name
    pth = mutated("missing", lambda f: f["grad"].__delitem__("final.linear.bias"))
    expect("grad/final.linear.bias missing", compare_outputs(exp, base, pth), False, "grad/final.linear.bias")
    pth = mutated("extra", lambda f: f["grad"].create_dataset("blocks.9.mlp.fc1.bias", data=np.zeros(4, np.float32)))
    expect("extra grad/blocks.9.mlp.fc1.bias", compare_outputs(exp, base, pth), False, "grad/blocks.9.mlp.fc1.bias")

    # 4. wrong shape, NaN, perturbed loss, perturbed eps_hat in predict
    def reshape(f):
        v = f["grad"]["x_embed.proj.bias"][()]
        del f["grad"]["x_embed.proj.bias"]
        f["grad"]["x_embed.proj.bias"] = v[:-1]
    pth = mutated("shape", reshape)
    expect("grad/x_embed.proj.bias with a wrong shape", compare_outputs(exp, base, pth), False,
           "grad/x_embed.proj.bias")

    def nan(f):
        v = f["grad"]["t_embed.mlp.0.weight"][()]
        v[0, 0] = np.nan
        f["grad"]["t_embed.mlp.0.weight"][...] = v
    pth = mutated("nan", nan)
    expect("a NaN in grad/t_embed.mlp.0.weight", compare_outputs(exp, base, pth), False, "grad/t_embed.mlp.0.weight")

    def loss(f):
        v = float(f["loss"][()])
        del f["loss"]
        f["loss"] = np.float64(v * (1 + 3 * TOL_OUT))
    pth = mutated("loss", loss)
    expect("loss off by 3 x tol", compare_outputs(exp, base, pth), False, "grad:loss")

    def eps(f):
        v = f["eps_hat"][()]
        v[1, 2, 0, 3, 4] += np.float32(3 * TOL_OUT * np.max(np.abs(v)))
        f["eps_hat"][...] = v
    pth = mutated("eps", eps)
    expect("one eps_hat element off by 3 x tol (predict)", compare_outputs(exp, pth, base), False, "predict:eps_hat")

    pth = mutated("nofv", lambda f: f.attrs.__delitem__("format_version"))
    expect("output without format_version", compare_outputs(exp, base, pth), False, "grad:format_version")

    # 5. the whole pipeline with the float32 reference standing in for entprog, every case
    fake = [sys.executable, os.path.abspath(__file__), "--as-entprog"]
    for case in CASES:
        ok, t = check_case(fake, case, fixtures, os.path.join(workdir, "fake"), quiet=True)
        worst_g = max((r[3] for r in t.rows if r[0].startswith("grad/")), default=float("nan"))
        worst_o = max((r[3] for r in t.rows if not r[0].startswith("grad/")), default=float("nan"))
        print(f"       fp32 reference vs fixtures, {case}: worst rel err eps_hat/loss {worst_o:.2e}, "
              f"gradients {worst_g:.2e}")
        expect(f"pipeline, fp32 reference as entprog, case {case}", t, True)
    # ... and a broken stand-in (wrong exit code) is a failure
    ok, t = check_case([sys.executable, "-c", "import sys; sys.exit(3)"], "video", fixtures,
                       os.path.join(workdir, "broken"), quiet=True)
    results.append(("entprog exiting with an error", not ok))
    print(f"[{'ok' if not ok else 'WRONG'}] entprog exiting with an error: checker says {'pass' if ok else 'fail'}, "
          "expected fail")

    bad = [lbl for lbl, good in results if not good]
    print(f"self-test: {len(results) - len(bad)} of {len(results)} expectations met")
    return 0 if not bad else 1


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--as-entprog":
        return fake_entprog(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--entprog", help="path of the entprog binary")
    ap.add_argument("--launcher", default="", help='prefix for entprog, e.g. "mpirun -n 1" (default: none, singleton)')
    ap.add_argument("--case", choices=CASES)
    ap.add_argument("--fixtures", default=os.path.join(HERE, "fixtures"))
    ap.add_argument("--workdir", default="check-reference-work")
    ap.add_argument("--self-test", action="store_true", help="prove the checker fails on broken outputs")
    a = ap.parse_args()
    if a.self_test:
        return self_test(a.fixtures, a.workdir)
    if not a.entprog or not a.case:
        ap.error("--entprog and --case are required (or --self-test)")
    ok, _ = check_case(shlex.split(a.launcher) + [a.entprog], a.case, a.fixtures, a.workdir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
