#!/usr/bin/python3
"""Reads the fine-tuning runs of benchmarks/finetune_compare.sh (its
manifest.txt: name|method|seed|overrides) and writes finetune_compare.md and
its pictures into RESULTS_DIR.

Two clocks, kept apart everywhere:
- cost: a deterministic count of block passes per training step, the model
  entprog's own CE uses with entprog.timing = cost (prog_step_cost in
  src/train/entprog.c): L block forwards + one input-gradient pass per block
  the backward reaches + one weight-gradient pass per trainable block. Here it
  is computed per step from the logged m and the run's block order
  (/schedule/train_order of its checkpoint); `temporal` counts its
  weight-gradient pass as the temporal attention's share of a block's weight
  matrices (entprog's model would count a whole block); each CE probe costs
  probe_batches x L block forwards. It ignores the input side and the output
  layer, and does not depend on the machine or its load.
- wall: metrics.csv's train_s (steps, search steps and probes; validation
  and checkpoints excluded), seconds on the shared cores: noisy.

Validation loss is the EMA weights' epsilon-MSE on the fixed validation set
(the same clips, t and noise for every seed and method). The target of
time-to-target is full fine-tuning's final validation loss, averaged over its
seeds. Memory: the allocator's peak (parameters, gradients, moments,
activations, scratch, batches; mem_peak_mib) and the process's peak resident
set (peak_rss_mib).
usage: analyze_finetune.py WORKDIR RESULTS_DIR COMMAND FINETUNE_DECK [STEPS]
(STEPS: the fine-tuning runs' train.steps when the script overrode the deck's)"""
import configparser
import csv
import math
import os
import statistics
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

work, out, command, deck_path = sys.argv[1:5]
os.makedirs(out, exist_ok=True)

deck = configparser.ConfigParser(inline_comment_prefixes=(";",))
deck.read(deck_path)
L = deck.getint("model", "L")
STEPS = int(sys.argv[5]) if len(sys.argv) > 5 else deck.getint("train", "steps")
K_STAGES = deck.getint("entprog", "stages")
PROBE_BATCHES = deck.getint("entprog", "probe_batches", fallback=4)
STATIC_M = deck.getint("entprog", "static_m")
deck_name = os.path.basename(deck_path)
shape = deck["model"]

LABELS = {"full": "full fine-tuning", "entprog": "Ent-Prog",
          "entprog-trials": "Ent-Prog, independent-trials search (entprog.search = trials)", "control": f"all {L} blocks, input side frozen (control)",
          "linear": "linear schedule (w/o Ada.)", "random": "random order (w/o CEI)",
          "depth": "depth order, deepest first (w/o CEI)", "temporal": "temporal attention only (paper's video phase)",
          f"top{STATIC_M}": f"static top-{STATIC_M} CEI blocks", f"bottom{STATIC_M}": f"static bottom-{STATIC_M} CEI blocks"}
COLORS = {"full": "C0", "entprog": "C3", "entprog-trials": "C8", "control": "C9", "linear": "C1", "random": "C2", "depth": "C4",
          "temporal": "C6", f"top{STATIC_M}": "C5", f"bottom{STATIC_M}": "C7"}


def read_manifest():
    jobs = []
    with open(os.path.join(work, "manifest.txt")) as f:
        for line in f:
            if line.strip():
                name, method, seed, sets = line.rstrip("\n").split("|", 3)
                jobs.append((name, method, int(seed), sets))
    return jobs


def temporal_share(ckpt):
    """The temporal attention's share of a block's weight matrices (their
    weight-gradient products scale with their size times the tokens)."""
    t = a = 0
    with h5py.File(ckpt, "r") as h:
        for n, d in h["model"].items():
            if n.startswith("blocks.0.") and n.endswith(".weight") and ".ada." not in n:
                a += d.size
                t += d.size if ".attn_t." in n else 0
    return t / a


def load(name, method):
    d = os.path.join(work, f"ft-{name}")
    path = os.path.join(d, "metrics.csv")
    if not os.path.exists(path):
        return None
    ckpts = sorted(c for c in os.listdir(d) if c.startswith("ckpt_") and c.endswith(".h5"))
    if not ckpts or not ckpts[-1].endswith(f"{STEPS:08d}.h5"):
        return None  # unfinished
    order, decided = list(range(L)), []
    with h5py.File(os.path.join(d, ckpts[-1]), "r") as h:
        if "schedule/train_order" in h:
            order = [int(b) for b in h["schedule/train_order"][()]]
        if "schedule/stages" in h:
            st = h["schedule/stages"][()]
            se = h["schedule/stages_se"][()] if "schedule/stages_se" in h else [[math.nan] * 8] * len(st)
            for r, e in zip(st, se):  # stage, first step, m*, (m_i, CE_i) x 8; SE_i x 8
                cand = [(int(r[3 + 2 * i]), float(r[4 + 2 * i]), float(e[i])) for i in range(8)
                        if not math.isnan(r[3 + 2 * i])]
                decided.append((int(r[0]), int(r[1]), int(r[2]), cand))
    tshare = temporal_share(os.path.join(d, ckpts[-1]))

    def step_cost(m):
        if method == "full":
            return 3.0 * L
        if method == "temporal":
            return 2.0 * L + L * tshare
        first = min(order[:m]) if m > 0 else L
        return L + (L - first) + m

    val, rows, cost, mem, mem_search, rss, train_s = [], [], 0.0, 0.0, 0.0, 0.0, 0.0
    search_s = probe_s = search_cost = probe_cost = 0.0
    last_t = 0.0
    with open(path) as f:
        for r in csv.DictReader(f):
            t = float(r["train_s"]) if r["train_s"] else last_t
            kind = r["kind"]
            if kind == "val":
                val.append((int(r["step"]), float(r["loss"]), cost, t))
                continue
            if kind == "probe":
                cost += PROBE_BATCHES * L
                probe_cost += PROBE_BATCHES * L
                probe_s += t - last_t
                last_t = t
                continue
            if kind not in ("train", "search", "skipped"):
                continue
            m = int(r["m"])
            c = step_cost(m)
            cost += c
            if kind == "search":
                search_s += t - last_t
                search_cost += c
                mem_search = max(mem_search, float(r["mem_peak_mib"]))
            else:
                mem = max(mem, float(r["mem_peak_mib"]))
            rss = max(rss, float(r["peak_rss_mib"]))
            rows.append(dict(step=int(r["step"]), kind=kind, m=m, stage=int(r["stage"]), ms=float(r["ms_per_step"]),
                             mem=float(r["mem_peak_mib"]), cost=c, t=t))
            train_s = t
            last_t = t
    wall = load_text(os.path.join(d, "wall_s"))
    loadavg = load_text(os.path.join(d, "load"))
    binary = load_text(os.path.join(d, "binary"))
    return dict(name=name, method=method, val=val, rows=rows, order=order, decided=decided, cost=cost, mem=mem,
                mem_search=mem_search, rss=rss, train_s=train_s, search_s=search_s, probe_s=probe_s,
                search_cost=search_cost, probe_cost=probe_cost,
                wall=float(wall) if wall else math.nan, load=loadavg, binary=binary, tshare=tshare, step_cost=step_cost)


def load_text(path):
    return open(path).read().strip() if os.path.exists(path) else None


def stage_rows(run, k, kind="train"):
    """The run's metrics rows of stage k of this kind."""
    return [x for x in run["rows"] if x["stage"] == k and x["kind"] == kind]


def m_per_stage(run):
    """m of each stage that trained (its last training row's)."""
    return [stage_rows(run, k)[-1]["m"] for k in range(K_STAGES) if stage_rows(run, k)]


def reach(run, target):
    """(cost, wall s, step) at the first validation at or below target, or None."""
    for step, loss, c, t in run["val"]:
        if loss <= target:
            return c, t, step
    return None


def ms(xs, fmt="{:.1f}"):
    """mean +- sample standard deviation (n = the values given)."""
    xs = [x for x in xs if x is not None and not math.isnan(x)]
    if not xs:
        return "-"
    if len(xs) == 1:
        return fmt.format(xs[0])
    return f"{fmt.format(statistics.mean(xs))} ± {fmt.format(statistics.stdev(xs))}"


def mean(xs):
    xs = [x for x in xs if x is not None]
    return statistics.mean(xs) if xs else None


jobs = read_manifest()
methods = list(dict.fromkeys(m for _, m, _, _ in jobs))
runs = {}
for name, method, seed, _ in jobs:
    r = load(name, method)
    if r and r["val"]:
        r["seed"] = seed
        runs.setdefault(method, []).append(r)
n_planned = len(jobs)
n_done = sum(len(v) for v in runs.values())

lines = [f"# Ent-Prog against full fine-tuning and its ablations (`{deck_name}`, CPU, {len(set(s for _, _, s, _ in jobs))} seeds)",
         "",
         f"Command: `{command}` (this page and its pictures are written by `benchmarks/analyze_finetune.py` "
         "from that command's runs; rerun it to refresh them, never edit them by hand).", ""]
if n_done < n_planned:
    missing = [n for n, m, s, _ in jobs if not any(r["name"] == n for r in runs.get(m, []))]
    lines += [f"**Incomplete: {n_done} of {n_planned} runs finished.** Missing: {', '.join(missing)}.", ""]
info = load_text(os.path.join(work, "bench_info.txt"))
pre_wall = load_text(os.path.join(work, "run-pretrain", "wall_s"))
cei_wall = load_text(os.path.join(work, "cei", "wall_s"))
lines += ["## Setup", "",
          f"- Model: EP-VDiT with L = {L} blocks, D = {shape['D']}, {shape['NH']} heads, {shape['H']}x{shape['W']} "
          f"latents, patch {shape['p']}, F = {shape['F']} frames (inputs/{deck_name.replace('finetune', '*')}). Image pre-training from scratch "
          f"(F = 1, `{deck_name.replace('finetune', 'pretrain')}`, 2 MPI ranks"
          + (f", {pre_wall} s" if pre_wall else "") + "), then CEI of the pretrained model (`entprog cei`"
          + (f", {cei_wall} s" if cei_wall else "") + "), then video fine-tuning from it: "
          f"{STEPS} steps for every method, batch {deck.get('train', 'batch')}, AdamW lr {deck.get('train', 'lr')} "
          f"constant, EMA {deck.get('train', 'ema')}.",
          "- Every method with train.seed = 1, 2, 3 (batches, t, noise, dropout; for `random` also its block order). "
          "One run per core (1 thread), two runs side by side.",
          f"- Validation: the EMA weights' epsilon-MSE on {deck.getint('train', 'val_batches') * deck.getint('train', 'batch')} "
          f"fixed clips of the validation split (fixed t and noise, the same for every seed and method), every "
          f"{deck.get('train', 'val_every')} steps. Ent-Prog's CE probe set is {PROBE_BATCHES} batches of the "
          f"{deck.get('entprog', 'probe_videos', fallback='4')} last training videos, held out of training by the searching methods; "
          "the validation split is never used for a decision. No setting was tuned on validation or test.",
          f"- Ent-Prog: K = {K_STAGES} stages, grid ceil(L j / K), supernet search over up to "
          f"{deck.get('entprog', 'max_candidates', fallback='3')} candidates for one epoch of the training split per stage "
          f"(search_steps = {deck.get('entprog', 'search_steps', fallback='0')}), m drawn i.i.d. uniformly "
          f"(sampling = {deck.get('entprog', 'sampling', fallback='uniform')}), CE = probe-loss drop per cost with timing = "
          f"{deck.get('entprog', 'timing', fallback='wall')}. `linear`: m = ceil(L (k+1) / K). `random`, `depth`: Ent-Prog's search "
          "with another block order. The top-m methods train the output layer too; their input side (timestep MLP, "
          "patch embedding, pose guider) is frozen. `full` trains everything; the control trains every block and the "
          "output layer with the input side frozen, which separates the input side's freezing from the schedule.",
          "- **cost** (deterministic): block passes per step, summed over the run: L forwards + one input-gradient "
          "pass per block the backward reaches + one weight-gradient pass per trainable block (entprog's own cost "
          "model, `entprog.timing = cost`), from the logged m and the run's block order; `temporal` counts its "
          "weight-gradient pass as the temporal attention's share of a block's token-wise weight matrices (its "
          "`ada` rows act once per clip, not per token, and are not counted); each CE probe adds "
          f"{PROBE_BATCHES} x L forwards. Validation is not counted. It does not depend on the machine's load.",
          "- **wall s**: `train_s` of metrics.csv (steps, search steps, probes; validation excluded), measured on 2 "
          "cores **shared with other work** (the load average at each run's start and end is in the last table), so "
          "wall times carry the neighbours' noise; compare methods by cost first.",
          "- Memory: the allocator's peak outside search windows (parameters, gradients, moments, activations, "
          "scratch, batches), and the process's peak resident set (RSS).", ""]
if info:
    lines += ["Run record (bench_info.txt):", "", "```", info, "```", ""]

full = runs.get("full", [])
target = mean([r["val"][-1][1] for r in full]) if full else None
full_reach = [reach(r, target) for r in full] if full else []

if target is not None:
    full_cost = mean([x[0] for x in full_reach if x])
    full_wall = mean([x[1] for x in full_reach if x])
    lines += ["## Time to full fine-tuning's final validation loss", "",
              f"Target: {target:.5f}, the mean over {len(full)} seeds of full fine-tuning's final EMA validation loss. "
              "Time to target = cost (or wall s) at the first validation at or below it; mean ± standard deviation "
              "over the seeds that reached it (n). Speed-up = full fine-tuning's mean time to target / the "
              "method's (cost; wall). Final val and peak memory: mean ± sd over all seeds.", "",
              "| method | reached | time to target, cost (10³ block passes) | wall s | speed-up (cost) | speed-up (wall) | "
              "final val (EMA) | total cost (10³) | total wall s | peak alloc MiB | peak RSS MiB |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    summary = {}
    for method in methods:
        rs = runs.get(method, [])
        if not rs:
            continue
        hits = [reach(r, target) for r in rs]
        ok = [h for h in hits if h]
        c_mean, w_mean = mean([h[0] for h in ok]), mean([h[1] for h in ok])
        sc = f"{full_cost / c_mean:.2f}x" if ok and full_cost else "-"
        sw = f"{full_wall / w_mean:.2f}x" if ok and full_wall else "-"
        summary[method] = dict(sc=sc, sw=sw, n=len(ok), of=len(rs))
        lines.append(f"| {LABELS.get(method, method)} | {len(ok)}/{len(rs)} | "
                     f"{ms([h[0] / 1e3 for h in ok], '{:.2f}')} | {ms([h[1] for h in ok], '{:.0f}')} | {sc} | {sw} | "
                     f"{ms([r['val'][-1][1] for r in rs], '{:.5f}')} | {ms([r['cost'] / 1e3 for r in rs], '{:.2f}')} | "
                     f"{ms([r['train_s'] for r in rs], '{:.0f}')} | {ms([r['mem'] for r in rs])} | "
                     f"{ms([r['rss'] for r in rs], '{:.0f}')} |")
    lines.append("")

    # earlier targets: who is ahead where
    fr = [r for r in full]
    marks = [STEPS // 4, STEPS // 2, 3 * STEPS // 4]
    tgt = {}
    for k in marks:
        vals = [next((l for st, l, _, _ in r["val"] if st == k), None) for r in fr]
        if all(v is not None for v in vals):
            tgt[k] = statistics.mean(vals)
    if tgt:
        lines += ["Earlier targets: full fine-tuning's validation loss after a quarter, half and three quarters of "
                  "its steps (mean over seeds); speed-up in cost to reach each (full's mean / the method's, over the "
                  "seeds that reached it; reached/runs). A method ahead early and behind late crosses full "
                  "fine-tuning's curve in between.", "",
                  "| method | " + " | ".join(f"target {v:.5f} (full at step {k})" for k, v in tgt.items()) + " |",
                  "|---|" + "---|" * len(tgt)]
        for method in methods:
            rs = runs.get(method, [])
            if not rs:
                continue
            cells = []
            for k, v in tgt.items():
                fc = mean([h[0] for h in (reach(r, v) for r in fr) if h])
                hs = [h for h in (reach(r, v) for r in rs) if h]
                cells.append(f"{fc / mean([h[0] for h in hs]):.2f}x ({len(hs)}/{len(rs)})" if hs and fc else
                             f"- (0/{len(rs)})")
            lines.append(f"| {LABELS.get(method, method)} | " + " | ".join(cells) + " |")
        lines.append("")

    # the paper's Table 5, ours
    lines += ["## The paper's Table 5 (ablation), ours", "",
              "The paper's Table 5 (TikTok video) compares full training, Ent-Prog without the adaptive schedule "
              "(w/o Ada.: a linear schedule), without CEI, and Ent-Prog by sample quality (SSIM, PSNR, LPIPS, "
              "FID-VID, FVD) and speed-up. The same rows here, by the EMA validation loss (sample-quality metrics "
              "were not computed for this benchmark) and the time to full fine-tuning's final validation loss; "
              "the paper does not say which order replaces CEI, so both `random` and `depth` are shown.", "",
              "| variant | final val (EMA) | vs full | speed-up (cost) | speed-up (wall) | reached | peak alloc MiB |",
              "|---|---|---|---|---|---|---|"]
    for method, label in [("full", "Full training"), ("linear", "w/o Ada. (linear schedule)"),
                          ("random", "w/o CEI (random order)"), ("depth", "w/o CEI (depth order)"),
                          ("entprog", "Ent-Prog")]:
        rs = runs.get(method)
        if not rs:
            continue
        s = summary[method]
        rel = mean([r["val"][-1][1] for r in rs]) / target - 1
        lines.append(f"| {label} | {ms([r['val'][-1][1] for r in rs], '{:.5f}')} | "
                     f"{'–' if method == 'full' else f'{100 * rel:+.1f}%'} | "
                     f"{'–' if method == 'full' else s['sc']} | {'–' if method == 'full' else s['sw']} | "
                     f"{s['n']}/{s['of']} | {ms([r['mem'] for r in rs])} |")
    lines.append("")

    # the verdict, from the numbers
    e = summary.get("entprog")
    if e and full:
        ecost = mean([reach(r, target)[0] for r in runs["entprog"] if reach(r, target)])
        fmem, emem = mean([r["mem"] for r in full]), mean([r["mem"] for r in runs["entprog"]])
        fval = mean([r["val"][-1][1] for r in full])
        eval_ = mean([r["val"][-1][1] for r in runs["entprog"]])
        if e["n"] == 0:
            verdict = (f"**Ent-Prog did not reach full fine-tuning's final validation loss in any of its "
                       f"{e['of']} runs** within the same {STEPS} steps; its final validation loss is "
                       f"{eval_:.5f} against full fine-tuning's {fval:.5f} (means over seeds).")
        elif full_cost / ecost <= 1:
            verdict = (f"**Ent-Prog is not faster here:** it reached full fine-tuning's final validation loss in "
                       f"{e['n']} of {e['of']} runs, at {e['sc']} full fine-tuning's speed in cost ({e['sw']} in "
                       "wall time).")
        elif e["n"] < e["of"]:
            verdict = (f"**Ent-Prog is not reliably faster here:** it reached full fine-tuning's final validation "
                       f"loss in only {e['n']} of {e['of']} runs (at {e['sc']} in cost, {e['sw']} in wall time, in "
                       "those); in the others it did not reach it within the same steps.")
        else:
            verdict = (f"Ent-Prog reached full fine-tuning's final validation loss in all {e['of']} runs, "
                       f"{e['sc']} faster in cost ({e['sw']} in wall time; mean over seeds).")
        ecost_all = mean([r["cost"] for r in runs["entprog"]])
        fcost_all = mean([r["cost"] for r in full])
        eprobe = mean([r["probe_cost"] for r in runs["entprog"]])
        verdict += (f" Its {STEPS} steps cost {ecost_all / 1e3:.2f}k block passes against full fine-tuning's "
                    f"{fcost_all / 1e3:.2f}k ({100 * (ecost_all / fcost_all - 1):+.0f}%), of which the CE probes are "
                    f"{eprobe / 1e3:.2f}k.")
        if all(r["order"][0] == 0 for r in runs["entprog"]):
            verdict += (" Its training steps are cheaper than full fine-tuning's only by the frozen blocks' "
                        "weight-gradient passes: CEI ranks block 0 first, so backward reaches block 0 at every m and "
                        "every block's activations are kept, as in full fine-tuning.")
        if tgt:
            ahead = {k: [LABELS.get(m, m) for m in methods if m != "full" and runs.get(m) and
                         all(reach(r, v) for r in runs[m]) and
                         mean([reach(r, v)[0] for r in runs[m]]) < mean([h[0] for h in (reach(r, v) for r in full) if h])]
                     for k, v in tgt.items()}
            verdict += (" Reaching full fine-tuning's earlier losses in every seed at a lower mean cost than full "
                        "fine-tuning, at its loss after step " +
                        "; ".join(f"{k}: {', '.join(a) if a else 'none'}" for k, a in ahead.items()) + ".")
        allreach = [(full_cost / mean([reach(r, target)[0] for r in runs[m]]), m) for m in summary
                    if summary[m]["n"] == summary[m]["of"] and m != "full"]
        if allreach:
            best = max(allreach)
            verdict += (f" The fastest method in cost that reached the target in every seed: "
                        f"{LABELS.get(best[1], best[1])} ({best[0]:.2f}x).")
        et = runs.get("entprog-trials")
        if et:
            tval = mean([r["val"][-1][1] for r in et])
            tcost = mean([r["cost"] for r in et])
            t_ms = [m for r in et for m in m_per_stage(r)]
            small = sum(x == min(t_ms) for x in t_ms)
            verdict += (f" With the independent-trials search (the same batches for every candidate, so its CE "
                        f"differences are not the supernet's noise: ce_noise.md), Ent-Prog reached the target in "
                        f"{summary['entprog-trials']['n']} of {len(et)} runs; its final validation loss is "
                        f"{tval:.5f} ({100 * (tval / fval - 1):+.1f}% against full fine-tuning, "
                        f"{100 * (tval / eval_ - 1):+.1f}% against the supernet's), at {tcost / 1e3:.2f}k block "
                        f"passes (the losing candidates' steps included); {small} of its {len(t_ms)} stages trained "
                        f"the smallest m chosen anywhere ({min(t_ms)}): loss drop per cost over a short window favours "
                        "few blocks.")
        lines += ["## Verdict", "", verdict, "",
                  f"Peak allocator memory: Ent-Prog {emem:.1f} MiB against full fine-tuning's {fmem:.1f} MiB "
                  f"({fmem / emem:.2f}x less; the largest over its stages outside the search windows, means over "
                  "seeds); the search windows, sized for their largest candidate, are in the table below.", ""]

# methods whose validation loss never moved: say why when the pretrained model shows it
def pretrained_gate_t():
    """max |gate_t| row weight and bias over the pretrained model's blocks (adaLN chunk 5 of 9), or None."""
    d = os.path.join(work, "run-pretrain")
    ck = sorted(c for c in os.listdir(d) if c.startswith("ckpt_") and c.endswith(".h5")) if os.path.isdir(d) else []
    if not ck:
        return None
    D = deck.getint("model", "D")
    with h5py.File(os.path.join(d, ck[-1]), "r") as h:
        return max(max(abs(float(x)) for x in h[f"model/blocks.{b}.ada.weight"][5 * D:6 * D].ravel().tolist() +
                       h[f"model/blocks.{b}.ada.bias"][5 * D:6 * D].tolist()) for b in range(L))


for method, rs in runs.items():
    if rs and all(len(r["val"]) > 1 and max(v[1] for v in r["val"]) == min(v[1] for v in r["val"]) for r in rs):
        why = ""
        g = pretrained_gate_t() if method == "temporal" else None
        if g == 0.0:
            why = (" After image pre-training (F = 1, where the temporal branch is skipped) every block's gate_t "
                   "(rows 5D..6D of `blocks.b.ada`, read from the pretrained checkpoint) is exactly 0, and `temporal` "
                   "trains only `attn_t.qkv` and `attn_t.proj` with `ada` frozen: the branch's output gate_t * "
                   "proj_t(attn) stays 0 and so does every gradient of the tensors it trains. Fine-tuned this way "
                   "from an image model, `temporal` cannot learn; it needs the temporal gates (its blocks' `ada`) to "
                   "train as well.")
        lines += [f"**`{method}` did not train:** its EMA validation loss is the same, to all digits, at every "
                  f"validation of all {len(rs)} runs.{why}", ""]

# where Ent-Prog's time and memory go
for method in ("entprog", "entprog-trials"):
    rs = runs.get(method, [])
    if not rs:
        continue
    lines += [f"## Where {LABELS[method]}'s step time and memory go", "",
              "Per seed and stage: m\\* chosen by the search, the earliest trainable block (backward keeps "
              "activations and runs input-gradient passes from there on), the cost of one step, the mean measured "
              "ms per step of the stage's training steps, and the allocator's peak in the stage (outside the "
              "search window). Full fine-tuning for comparison: cost "
              f"{3 * L} per step"
              + (f", {statistics.mean([x['ms'] for r in full for x in r['rows']]):.0f} ms per step (mean of its "
                 f"steps), {mean([r['mem'] for r in full]):.1f} MiB" if full else "") + ".", "",
              "| seed | CEI-order (train_order) | stage | m* | CE(m) ± SE per candidate (10⁻⁶ / cost unit) | "
              "earliest trainable block | cost / step | ms / step | peak alloc MiB | search-window peak MiB |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rs:
        for k in range(K_STAGES):
            tr, se = stage_rows(r, k), stage_rows(r, k, "search")
            if not tr:
                continue
            m = tr[-1]["m"]
            search_peak = f"{max(x['mem'] for x in se):.1f}" if se else "-"
            dec = [c for st, _, _, c in r["decided"] if st == k]
            cands = dec[0] if dec else []
            if not cands or all(math.isnan(v) for _, v, _ in cands):
                ce = "no search (m already L)" if m == L else "-"
            else:
                ce = "; ".join(f"{cm}: " + ("never drawn" if math.isinf(v) else f"{v * 1e6:.1f}" +
                                            ("" if math.isnan(e) else f" ± {e * 1e6:.1f}"))
                               for cm, v, e in cands)
            lines.append(f"| {r['seed']} | {' '.join(map(str, r['order'])) if k == 0 else ''} | {k + 1} | {m} | {ce} | "
                         f"{min(r['order'][:m])} | {r['step_cost'](m):.0f} | "
                         f"{statistics.mean(x['ms'] for x in tr):.0f} | {max(x['mem'] for x in tr):.1f} | "
                         f"{search_peak} |")
    close = tot = 0
    for r in rs:
        for _, _, _, cand in r["decided"]:
            c = sorted((v, e) for _, v, e in cand if not math.isinf(v) and not math.isnan(v) and not math.isnan(e))
            if len(c) >= 2:
                tot += 1
                close += (c[-1][0] - c[-2][0]) < max(c[-1][1], c[-2][1])
    if tot:
        lines += ["", f"In {close} of {tot} searches the best and the second-best candidate's CE differ by less than "
                  "the larger of their standard errors: the window (one epoch) and the probe set cannot tell them "
                  "apart, so m\\* there rests on noise."]
    lines += ["", "The search's share of each run (its window steps, which also train, and the CE probes, which "
              "only measure): " +
              "; ".join(f"seed {r['seed']}: window steps {100 * r['search_cost'] / r['cost']:.0f}% of the cost and "
                        f"{100 * r['search_s'] / r['train_s']:.0f}% of the wall time, probes "
                        f"{100 * r['probe_cost'] / r['cost']:.0f}% and {100 * r['probe_s'] / r['train_s']:.0f}%"
                        for r in rs) + ".", ""]

# the CEI ranking
cei_csv = os.path.join(work, "cei", "cei.csv")
if os.path.exists(cei_csv):
    with open(cei_csv) as f:
        cr = list(csv.DictReader(f))
    ranked = sorted(cr, key=lambda x: int(x["rank"]))
    lines += ["## CEI of the pretrained model", "",
              "Blocks by rank (1 = highest CEI, trained first): " +
              ", ".join(f"{x['block']}" for x in ranked) + ". " +
              f"Top-{STATIC_M}: blocks {sorted(int(x['block']) for x in ranked[:STATIC_M])}, bottom-{STATIC_M}: "
              f"{sorted(int(x['block']) for x in ranked[-STATIC_M:])}. The earliest block among the top m, where "
              "backward must reach and from which activations are kept: " +
              ", ".join(f"m = {m}: block {min(int(x['block']) for x in ranked[:m])}"
                        for m in sorted({math.ceil(L * j / K_STAGES) for j in range(1, K_STAGES + 1)} | {STATIC_M})) +
              ". Wherever that is block 0, a top-m stage keeps every block's activations like full fine-tuning and "
              "saves only the frozen blocks' weight gradients, gradient buffers and moments.", ""]

# per-run table; runs without a record of their binary ran the first one in the run record
first_binary = next((l.split("(")[1].split(")")[0] for l in (info or "").splitlines() if l.startswith("entprog ")), "-")
lines += ["## Every run", "",
          "| run | final val (EMA) | time to target: cost (10³) / wall s / step | total cost (10³) | train wall s | "
          "process wall s | peak alloc MiB | search peak MiB | load avg start / end | m per stage | entprog binary |",
          "|---|---|---|---|---|---|---|---|---|---|---|"]
for method in methods:
    for r in runs.get(method, []):
        h = reach(r, target) if target is not None else None
        ms_stage = " ".join(map(str, m_per_stage(r)))
        lines.append(f"| {r['name']} | {r['val'][-1][1]:.5f} | "
                     f"{f'{h[0] / 1e3:.2f} / {h[1]:.0f} / {h[2]}' if h else 'not reached'} | {r['cost'] / 1e3:.2f} | "
                     f"{r['train_s']:.0f} | {r['wall']:.0f} | {r['mem']:.1f} | " +
                     (f"{r['mem_search']:.1f} | " if r['mem_search'] else "- | "))
        lines[-1] += (f"{(r['load'] or '-').replace(' ', ' / ')} | {ms_stage} | {r['binary'] or first_binary} |")
lines.append("")


# pictures: validation loss against cost and against wall time
def curves(ax, key, xlabel, names):
    for method in names:
        for i, r in enumerate(runs.get(method, [])):
            xs = [v[2] / 1e3 if key == "cost" else v[3] for v in r["val"]]
            ax.plot(xs, [v[1] for v in r["val"]], color=COLORS.get(method, "k"), alpha=0.8, lw=1,
                    label=LABELS.get(method, method) if i == 0 else None)
    if target is not None:
        ax.axhline(target, color="k", ls=":", lw=1, label="target: full's final val (mean)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("validation epsilon-MSE (EMA weights, log scale)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3, which="both")


if runs:
    main_methods = [m for m in ("full", "entprog", "entprog-trials", "control", "temporal") if m in runs]
    abl_methods = [m for m in methods if m not in ("control", "temporal")]
    for fname, names, title in [("finetune_compare.png", main_methods, "full fine-tuning, Ent-Prog (supernet, trials), control, temporal"),
                                ("finetune_ablations.png", abl_methods, "Ent-Prog's ablations and the CEI check")]:
        fig, axes = plt.subplots(1, 2, figsize=(13, 5))
        curves(axes[0], "cost", "cost (10³ block passes, deterministic)", names)
        curves(axes[1], "wall", "training wall time, s (shared cores: noisy)", names)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"{title}: {deck_name}, one line per seed")
        fig.tight_layout()
        fig.savefig(os.path.join(out, fname), dpi=100)
        plt.close(fig)
    lines += ["![full vs Ent-Prog](finetune_compare.png)", "", "![ablations](finetune_ablations.png)", ""]
with open(os.path.join(out, "finetune_compare.md"), "w") as f:
    f.write("\n".join(lines))
print("\n".join(lines))
