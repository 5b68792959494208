#!/usr/bin/env python3
"""Scaling model of data-parallel EP-VDiT training with Ent-Prog (docs/scaling.md).

Predicts the step time and the parallel efficiency on R = 1, 2, 4, ..., 1024
GPUs from
  * the compute time of one training step on one rank (measured: --compute-ms
    or --metrics; otherwise a stated placeholder: the step's FLOPs, counted
    here from the deck's shape, at --mfu of the GPU's --peak-tflops),
  * the bytes every step communicates: ZeRO-1 reduce-scatters the gradients of
    the trainable parameters and all-gathers the updated parameters, each
    (R-1)/R of P_train * --grad-bytes per rank on a ring:
        t_comm = 2 (R-1)/R * P_train * bytes / bw + 2 (R-1) * latency
  * the links: NVLink inside a node (up to --gpus-per-node ranks), InfiniBand
    between nodes (--nics-per-node NICs of --nic-gbs each, shared by the
    node's GPUs); a ring runs at the slowest link it crosses,
  * the share of communication hidden behind computation (--overlap), and
  * ZeRO-1's sharded AdamW update (P_train / R parameters per rank, read and
    written through HBM).
Ent-Prog trains only the top-m blocks (and the final layer): P_train and the
weight-gradient work shrink with m, so each stage communicates less.

Only the standard library is needed (h5py for --check-ckpt).
usage: benchmarks/scaling_model.py [--deck inputs/paper.ini] [--compute-ms MS | --metrics CSV] [--write docs/scaling.md]
"""
import argparse
import configparser
import math
import os
import re
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BEGIN = "<!-- scaling_model.py: begin -->"
END = "<!-- scaling_model.py: end -->"
FRACTIONS = (0.33, 0.5, 0.83, 1.0)  # Ent-Prog stages m/L (the small deck's grid 2,3,5,6 of L = 6)


# ---------------------------------------------------------------- shapes

def read_shape(deck):
    cp = configparser.ConfigParser(inline_comment_prefixes=(";", "#"))
    with open(deck) as f:
        cp.read_file(f)
    m = cp["model"]
    shape = {k: int(m[k]) for k in ("F", "C", "H", "W", "p", "D", "NH", "L", "mlp_ratio", "Cp", "s", "Cg")}
    shape["batch"] = int(cp["train"]["batch"]) if cp.has_section("train") and "batch" in cp["train"] else 1
    return shape


def param_counts(sh):
    """Parameter counts by group, from docs/model.md's parameter table."""
    D, L, Dm = sh["D"], sh["L"], sh["mlp_ratio"] * sh["D"]
    C, p, Cp, Cg = sh["C"], sh["p"], sh["Cp"], sh["Cg"]
    G = int(round(math.log2(sh["s"])))
    lin = lambda n_out, n_in: n_out * n_in + n_out  # weight [out, in] + bias [out]
    block = (lin(9 * D, D)                      # ada
             + lin(3 * D, D) + lin(D, D)        # attn_s qkv, proj
             + lin(3 * D, D) + lin(D, D)        # attn_t qkv, proj
             + lin(Dm, D) + lin(D, Dm))         # mlp fc1, fc2
    t_embed = lin(D, 256) + lin(D, D)
    x_embed = D * C * p * p + D
    pose = (Cg * Cp * 9 + Cg) + G * (Cg * Cg * 9 + Cg) + (D * Cg * p * p + D) + lin(D, D)
    final = lin(2 * D, D) + lin(p * p * C, D)
    inputs = t_embed + x_embed + pose
    return {"block": block, "blocks": L * block, "inputs": inputs, "final": final,
            "total": L * block + inputs + final}


def forward_flops(sh):
    """Multiply-adds x 2 of one sample's forward pass, by part (blocks, rest)."""
    F, D, Dm, L = sh["F"], sh["D"], sh["mlp_ratio"] * sh["D"], sh["L"]
    S = (sh["H"] // sh["p"]) * (sh["W"] // sh["p"])
    T = F * S  # video tokens
    sH, sW, Cp, Cg, p, C = sh["s"] * sh["H"], sh["s"] * sh["W"], sh["Cp"], sh["Cg"], sh["p"], sh["C"]
    temporal = F > 1
    # one block, video pass: spatial qkv+proj, temporal qkv+proj, MLP; attention
    # over 2S keys (own frame + reference bank) and over F frames
    lin_tok = 4 * D * D + (4 * D * D if temporal else 0) + 2 * D * Dm
    video = 2 * T * lin_tok + 4 * T * (2 * S) * D + (4 * T * F * D if temporal else 0) + 2 * 9 * D * D
    # the same block in the reference pass: one image of S tokens, no temporal attention
    ref = 2 * S * (4 * D * D + 2 * D * Dm) + 4 * S * S * D
    blocks = L * (video + ref)
    G = int(round(math.log2(sh["s"])))
    pose = 2 * Cp * 9 * Cg * sH * sW * F
    for i in range(1, G + 1):
        pose += 2 * Cg * 9 * Cg * (sH >> i) * (sW >> i) * F
    pose += 2 * Cg * p * p * D * T + 2 * D * D * T
    rest = pose + 2 * C * p * p * D * (T + S) + 2 * D * p * p * C * T + 2 * 2 * D * D
    return blocks, rest


def train_flops(sh, m, reach=1.0, train_inputs=False):
    """FLOPs of one training sample with the top-m of L blocks trainable.

    Forward runs every block. Backward (about 2x forward per trainable block:
    input gradients + weight gradients) does input-gradient passes through the
    blocks from the output down to the earliest trainable block (`reach` of
    them; CEI's top blocks are spread over the depth, so 1.0 by default) and
    weight-gradient passes only for the m trainable blocks. m = L is full
    training: 3x forward.
    """
    blocks, rest = forward_flops(sh)
    L = sh["L"]
    if m >= L:
        return 3 * (blocks + rest)
    back = blocks * (reach + m / L)
    if train_inputs:
        back += 2 * rest
    return blocks + rest + back


# ---------------------------------------------------------------- the model

class Links:
    def __init__(self, a):
        self.gpn = a.gpus_per_node
        self.nvlink = a.nvlink_gbs * 1e9
        self.inter = a.nics_per_node * a.nic_gbs * 1e9
        self.lat_nv = a.nvlink_lat_us * 1e-6
        self.lat_net = a.net_lat_us * 1e-6

    def ring(self, R):
        """(bus bandwidth B/s, per-hop latency s, nodes) of a ring over R ranks."""
        nodes = max(1, math.ceil(R / self.gpn))
        if nodes == 1:
            return self.nvlink, self.lat_nv, 1
        # NCCL runs one ring per NIC; each crosses every node boundary once, so the
        # node's NICs together carry what each GPU sends over NVLink.
        return min(self.nvlink, self.inter), self.lat_net, nodes


def comm_time(R, n_bytes, links):
    if R == 1:
        return 0.0, 0.0
    bw, lat, _ = links.ring(R)
    volume = 2 * (R - 1) / R * n_bytes / bw  # reduce-scatter + all-gather
    latency = 2 * (R - 1) * lat
    return volume, latency


def step_time(R, cfg, links, a, overlap):
    """Seconds of one step on each of R ranks (weak scaling: same batch per rank)."""
    t_comp = cfg["compute_s"]
    vol, lat = comm_time(R, cfg["p_train"] * a.grad_bytes, links)
    t_comm = vol + lat
    # the reduce-scatter half overlaps backward, the all-gather half the next
    # forward (prefetch); never more than the computation it hides behind
    t_back = t_comp * cfg["back_share"]
    hidden = min(overlap * t_comm / 2, t_back) + min(overlap * t_comm / 2, t_comp - t_back)
    t_opt = cfg["p_train"] / R * a.opt_bytes / (a.hbm_gbs * 1e9)  # ZeRO-1: each rank updates its shard
    return t_comp + t_comm - hidden + t_opt, t_comm, t_opt


# ---------------------------------------------------------------- inputs

def measured_ms(path, warmup=3):
    rows = {}
    with open(path) as f:
        head = f.readline().strip().split(",")
        i_kind, i_step, i_ms = head.index("kind"), head.index("step"), head.index("ms_per_step")
        for line in f:
            c = line.rstrip("\n").split(",")
            if c[i_kind] == "train" and int(c[i_step]) > warmup and c[i_ms]:
                rows[int(c[i_step])] = float(c[i_ms])
    if not rows:
        sys.exit(f"scaling_model: no timed train rows after step {warmup} in {path}")
    return statistics.median(rows.values())


def check_ckpt(path, sh):
    import h5py  # only here
    with h5py.File(path, "r") as f:
        n = sum(d.size for d in f["model"].values())
    want = param_counts(sh)["total"]
    print(f"{path}: {n} parameters in /model; the formula gives {want}: {'OK' if n == want else 'MISMATCH'}")
    return n == want


def configs(sh, a):
    pc = param_counts(sh)
    L = sh["L"]
    b = a.batch if a.batch else sh["batch"]
    full_flops = b * train_flops(sh, L)
    if a.compute_ms is not None:
        full_s, source = a.compute_ms / 1e3, f"given: {a.compute_ms:g} ms per full step"
    elif a.metrics:
        ms = measured_ms(a.metrics)
        full_s, source = ms / 1e3, f"measured: median {ms:.1f} ms per step in {a.metrics}"
    else:
        full_s = full_flops / (a.peak_tflops * 1e12 * a.mfu)
        source = (f"placeholder: {full_flops / 1e12:.1f} TFLOP per step (batch {b}) at {a.mfu:.0%} of "
                  f"{a.peak_tflops:g} TFLOP/s (H100 SXM dense bf16)")
    out = [{"name": "full", "m": L, "p_train": pc["total"], "compute_s": full_s, "back_share": 2 / 3}]
    for frac in FRACTIONS:
        m = max(1, min(L, round(frac * L)))
        p_train = m * pc["block"] + pc["final"] + (pc["inputs"] if a.train_inputs else 0)
        fl = b * train_flops(sh, m, a.reach, a.train_inputs)
        fwd = b * sum(forward_flops(sh))
        out.append({"name": f"m={m} ({m / L:.2f} L)", "m": m, "p_train": p_train,
                    "compute_s": full_s * fl / full_flops, "back_share": (fl - fwd) / fl})
    return out, source, pc, b


# ---------------------------------------------------------------- report

def ranks_list(max_r):
    r, out = 1, []
    while r <= max_r:
        out.append(r)
        r *= 2
    return out


def fmt_ms(s):
    return f"{s * 1e3:.1f}" if s * 1e3 < 1000 else f"{s * 1e3:.0f}"


def sensitivity_variants(a):
    base_ms = None if a.compute_ms is None and not a.metrics else True
    faster = ({"mfu": a.mfu * 4} if base_ms is None else
              {"compute_ms": (a.compute_ms if a.compute_ms is not None else measured_ms(a.metrics)) / 4, "metrics": None})
    return [
        ("as above", {}),
        (f"overlap {a.overlap_alt:g}", {"overlap": a.overlap_alt}),
        ("bf16 gradients and parameters (2 bytes)", {"grad_bytes": 2}),
        ("4 x 200 Gb/s HDR NICs per node (4 x 22 GB/s)", {"nics_per_node": 4, "nic_gbs": 22.0}),
        ("1 x 400 Gb/s NIC per node", {"nics_per_node": 1}),
        ("network latency 20 us per ring step", {"net_lat_us": 20.0}),
        ("compute 4x faster (e.g. FP8, smaller clips)", faster),
    ]


def report(sh, a):
    links = Links(a)
    cfgs, source, pc, b = configs(sh, a)
    Rs = ranks_list(a.max_ranks)
    o = []
    w = o.append
    w(f"Shape: {os.path.relpath(a.deck, REPO)}: F={sh['F']}, {sh['H']}x{sh['W']} latents, p={sh['p']}, "
      f"D={sh['D']}, L={sh['L']}, MLP {sh['mlp_ratio']}D, batch {b} clip(s) per rank.")
    w("")
    w(f"Parameters (docs/model.md's table): {pc['total']:,} in all; {pc['block']:,} per block "
      f"({pc['blocks']:,} in the {sh['L']} blocks), inputs (timestep MLP, patch embedding, pose guider) "
      f"{pc['inputs']:,}, final layer {pc['final']:,}.")
    blocks, rest = forward_flops(sh)
    w(f"Forward FLOPs per clip: {(blocks + rest) / 1e12:.2f} T ({blocks / (blocks + rest):.1%} in the blocks).")
    w("")
    w(f"Compute per step on one rank ({source}). Ent-Prog stages scale it by their FLOPs: forward of every "
      f"block, input gradients through {a.reach:.0%} of the blocks, weight gradients for the m trainable ones.")
    w("")
    w(f"Links: NVLink {a.nvlink_gbs:g} GB/s bus bandwidth and {a.nvlink_lat_us:g} us per ring step inside a node "
      f"of {a.gpus_per_node} GPUs; between nodes {a.nics_per_node} x {a.nic_gbs:g} GB/s NICs per node "
      f"(ring bandwidth min(NVLink, {a.nics_per_node * a.nic_gbs:g} GB/s)) and {a.net_lat_us:g} us per ring step. "
      f"{a.grad_bytes} bytes per communicated value; AdamW shard update {a.opt_bytes} bytes per parameter at "
      f"{a.hbm_gbs:g} GB/s HBM.")
    w("")
    for overlap in (a.overlap, a.overlap_alt):
        w(f"**Weak scaling (same batch per rank), overlap {overlap:g}**: step ms and parallel efficiency "
          f"t(1)/t(R)")
        w("")
        head = "| R | nodes | " + " | ".join(f"{c['name']} ms | eff" for c in cfgs) + " |"
        w(head)
        w("|" + "---|" * (2 + 2 * len(cfgs)))
        base = [step_time(1, c, links, a, overlap)[0] for c in cfgs]
        for R in Rs:
            cells = [str(R), str(links.ring(R)[2])]
            for c, t1 in zip(cfgs, base):
                t = step_time(R, c, links, a, overlap)[0]
                cells += [fmt_ms(t), f"{t1 / t:.3f}"]
            w("| " + " | ".join(cells) + " |")
        w("")
    w("**Communication per step** (ms, no overlap): ring volume term + latency term; "
      "trainable parameters and bytes per stage")
    w("")
    w("| R | bus GB/s | latency ms | " + " | ".join(f"{c['name']}" for c in cfgs) + " |")
    w("|" + "---|" * (3 + len(cfgs)))
    for R in Rs[1:]:
        bw, lat, _ = links.ring(R)
        cells = [str(R), f"{bw / 1e9:.0f}", f"{2 * (R - 1) * lat * 1e3:.2f}"]
        for c in cfgs:
            vol, l_ = comm_time(R, c["p_train"] * a.grad_bytes, links)
            cells.append(f"{(vol + l_) * 1e3:.1f}")
        w("| " + " | ".join(cells) + " |")
    w("| trainable | | | " + " | ".join(f"{c['p_train'] / 1e6:.1f} M ({c['p_train'] * a.grad_bytes / 1e9:.2f} GB)"
                                         for c in cfgs) + " |")
    w("| compute ms | | | " + " | ".join(fmt_ms(c["compute_s"]) for c in cfgs) + " |")
    w("")
    G = a.global_batch
    w(f"**Strong scaling (global batch {G} clips, overlap {a.overlap:g})**: each rank computes {G}/R clips "
      f"(gradient accumulation where that exceeds memory); speedup t(1)/t(R) and efficiency speedup/R")
    w("")
    pick = [cfgs[0], cfgs[1]]
    w("| R | " + " | ".join(f"{c['name']} ms | speedup | eff" for c in pick) + " |")
    w("|" + "---|" * (1 + 3 * len(pick)))
    for R in [r for r in Rs if r <= G]:
        cells = [str(R)]
        for c in pick:
            per = dict(c, compute_s=c["compute_s"] * G / b / R)
            t = step_time(R, per, links, a, a.overlap)[0]
            t1 = step_time(1, dict(c, compute_s=c["compute_s"] * G / b), links, a, a.overlap)[0]
            cells += [fmt_ms(t), f"{t1 / t:.1f}", f"{t1 / t / R:.3f}"]
        w("| " + " | ".join(cells) + " |")
    w("")
    w("**Sensitivity**: weak-scaling efficiency t(1)/t(R) when one assumption changes (the others as above)")
    w("")
    checks = [r for r in (8, 64, 1024) if r <= a.max_ranks]
    w("| variant | " + " | ".join(f"full R={r} | m={cfgs[1]['m']} R={r}" for r in checks) + " |")
    w("|---|" + "---|" * (2 * len(checks)))
    for label, change in sensitivity_variants(a):
        v = argparse.Namespace(**{**vars(a), **change})
        vl, vc = Links(v), configs(sh, v)[0]
        cells = [label]
        for r in checks:
            for c in (vc[0], vc[1]):
                t1 = step_time(1, c, vl, v, v.overlap)[0]
                cells.append(f"{t1 / step_time(r, c, vl, v, v.overlap)[0]:.3f}")
        w("| " + " | ".join(cells) + " |")
    w("")
    w("Command: `" + " ".join(["benchmarks/scaling_model.py"] + [x for x in sys.argv[1:] if x != "--write"]) + "`")
    return "\n".join(o)


def write_into(path, text):
    with open(path) as f:
        doc = f.read()
    i, j = doc.find(BEGIN), doc.find(END)
    if i < 0 or j < i:
        sys.exit(f"scaling_model: {path} lacks the markers {BEGIN} ... {END}")
    with open(path, "w") as f:
        f.write(doc[:i + len(BEGIN)] + "\n" + text + "\n" + doc[j:])
    print(f"scaling_model: tables written into {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--deck", default=os.path.join(REPO, "inputs", "paper.ini"), help="model shape (default inputs/paper.ini)")
    ap.add_argument("--batch", type=int, default=0, help="clips per rank (default: the deck's train.batch)")
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--compute-ms", type=float, help="measured compute time of one full training step on one rank")
    g.add_argument("--metrics", help="metrics.csv of a 1-rank run: the median ms/step after step 3 is the compute time")
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="placeholder: GPU peak (H100 SXM dense bf16: 989)")
    ap.add_argument("--mfu", type=float, default=0.40, help="placeholder: model FLOP utilisation (default 0.40)")
    ap.add_argument("--gpus-per-node", type=int, default=8)
    ap.add_argument("--nvlink-gbs", type=float, default=360.0, help="NVLink ring bus bandwidth inside a node, GB/s")
    ap.add_argument("--nvlink-lat-us", type=float, default=3.0, help="latency per ring step inside a node, us")
    ap.add_argument("--nic-gbs", type=float, default=45.0, help="achieved bandwidth per NIC, GB/s (400 Gb/s NDR: ~45)")
    ap.add_argument("--nics-per-node", type=int, default=8)
    ap.add_argument("--net-lat-us", type=float, default=8.0, help="latency per ring step across nodes, us")
    ap.add_argument("--grad-bytes", type=int, default=4, choices=(2, 4), help="bytes per gradient/parameter sent: 4 fp32, 2 bf16")
    ap.add_argument("--overlap", type=float, default=0.0, help="share of communication hidden behind compute (default 0)")
    ap.add_argument("--overlap-alt", type=float, default=0.8, help="second weak-scaling table's overlap (default 0.8)")
    ap.add_argument("--hbm-gbs", type=float, default=3350.0, help="HBM bandwidth for the AdamW shard update, GB/s")
    ap.add_argument("--opt-bytes", type=int, default=28, help="HBM bytes per parameter of an AdamW update (fp32 p,g,m,v read; p,m,v written)")
    ap.add_argument("--reach", type=float, default=1.0, help="share of blocks backward's input gradients pass through (Ent-Prog)")
    ap.add_argument("--train-inputs", action="store_true", help="Ent-Prog with [entprog] train_inputs = 1")
    ap.add_argument("--global-batch", type=int, default=64, help="strong-scaling table's global batch")
    ap.add_argument("--max-ranks", type=int, default=1024)
    ap.add_argument("--write", metavar="MD", nargs="?", const=os.path.join(REPO, "docs", "scaling.md"),
                    help="also write the tables between the markers of MD (default docs/scaling.md)")
    ap.add_argument("--check-ckpt", metavar="CKPT", help="compare the parameter count with a checkpoint of --deck's shape (h5py)")
    a = ap.parse_args()
    sh = read_shape(a.deck)
    if a.check_ckpt:
        sys.exit(0 if check_ckpt(a.check_ckpt, sh) else 1)
    text = report(sh, a)
    print(text)
    if a.write:
        write_into(a.write, text)


if __name__ == "__main__":
    main()
