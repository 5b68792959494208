#!/usr/bin/python3
"""Reads the runs of benchmarks/ce_noise.sh (manifest.txt: name|seed|overrides)
and writes RESULTS_DIR/ce_noise.md: how well stage 1's search of the `medium`
fine-tuning tells its candidates apart under each search setting.

For every run CE(m) and its standard error are recomputed from the probe rows
of metrics.csv (the probe loss after each window step, its m and its cost),
with entprog's own estimator (prog_ce in src/train/entprog.c): CE = sum of
loss drops / sum of costs over the steps that drew m; SE from the ratio
estimator's variance. They are checked against what the run's log printed
(4 significant digits), and m* against the log's decision. For independent
trials (one measurement per candidate, from the same snapshot, batches, t and
noise) CE = (probe loss before - after) / cost, with no SE of its own: its
spread over the seeds is the measure.

"Separated": the best candidate's CE exceeds the runner-up's by at least the
larger of their standard errors (the rule behind entprog's log note).
usage: analyze_ce_noise.py WORKDIR RESULTS_DIR COMMAND"""
import csv
import math
import os
import re
import statistics
import sys

work, out, command = sys.argv[1:4]
os.makedirs(out, exist_ok=True)

SETTINGS = {
    "sn15_p4": "supernet, m i.i.d. uniform, 15 steps (one epoch: the deck's default), probe 16 clips of 4 held-out videos",
    "sn48_p4": "supernet, m i.i.d. uniform, 48 steps, probe 16 clips of 4 videos",
    "sn15_p16": "supernet, m i.i.d. uniform, 15 steps, probe 64 clips of 16 held-out videos",
    "sn48_bal": "supernet, balanced draws (rounds), 48 steps, probe 16 clips of 4 videos",
    "tr15_p4": "independent trials, 15 steps per candidate from one snapshot, probe 16 clips of 4 videos",
}


def sd(xs):
    return statistics.stdev(xs) if len(xs) > 1 else float("nan")


def read_run(name):
    d = os.path.join(work, "run-" + name)
    probes = []
    with open(os.path.join(d, "metrics.csv")) as f:
        for r in csv.DictReader(f):
            if r["kind"] == "probe" and r["stage"] == "0":
                probes.append((float(r["loss"]), int(r["m"]) if r["m"] else 0, float(r["cost"]) if r["cost"] else 0.0))
    log = open(os.path.join(d, "log.txt")).read()
    line = re.search(r"^stage 1/4 \(steps.*$", log, re.M).group(0)
    m_star = int(re.search(r"m = (\d+) blocks train", line).group(1))
    printed = {int(m): float(v) for m, v in re.findall(r" (\d+):([-0-9.e+]+)", line.split("CE(m) =")[1])}
    printed_se = {int(m): float(v) for m, v in re.findall(r" (\d+):[-0-9.e+]+ \(SE ([-0-9.e+]+)", line)}
    return probes, m_star, printed, printed_se, float(open(os.path.join(d, "wall_s")).read())


def supernet_ce(probes):
    """Per candidate: CE, SE, draws, and the per-step (drop, cost) in window order."""
    sums, steps = {}, []
    last = probes[0][0]
    for loss, m, c in probes[1:]:
        dd = last - loss
        last = loss
        steps.append((m, dd, c))
        s = sums.setdefault(m, [0.0, 0.0, 0, 0.0, 0.0, 0.0])
        for i, v in enumerate((dd, c, 1, dd * dd, c * c, dd * c)):
            s[i] += v
    ce, se = {}, {}
    for m, (dsum, csum, n, d2, c2, dc) in sums.items():
        ce[m] = dsum / csum
        r = ce[m]
        ss = d2 - 2 * r * dc + r * r * c2
        se[m] = math.sqrt(n / (n - 1) * max(ss, 0.0)) / csum if n >= 2 else float("nan")
    return ce, se, {m: s[2] for m, s in sums.items()}, steps


def trials_ce(probes):
    p0 = probes[0][0]
    return {m: (p0 - loss) / c for loss, m, c in probes[1:]}


def best_two(ce):
    order = sorted(ce, key=lambda m: (-ce[m], m))  # ties keep the smaller m, as prog_pick
    return order[0], order[1]


runs = [l.strip().split("|") for l in open(os.path.join(work, "manifest.txt")) if l.strip()]
rows, problems = {}, []
for name, seed, _ in runs:
    if not os.path.exists(os.path.join(work, "run-" + name, "done")):
        continue
    setting = name.rsplit("_s", 1)[0]
    probes, m_star, printed, printed_se, wall = read_run(name)
    if setting.startswith("tr"):
        ce, se, n = trials_ce(probes), {}, {}
        steps = []
    else:
        ce, se, n, steps = supernet_ce(probes)
    for m, v in printed.items():  # the log prints CE with %.4g
        if float(f"{ce[m]:.4g}") != v:
            problems.append(f"{name}: CE({m}) recomputed {ce[m]:.6g}, log {v:.6g}")
    for m, v in printed_se.items():  # and SE with %.2g
        if float(f"{se[m]:.2g}") != v:
            problems.append(f"{name}: SE({m}) recomputed {se[m]:.4g}, log {v:.4g}")
    a, b = best_two(ce)
    if a != m_star:
        problems.append(f"{name}: argmax of the recomputed CE is {a}, the run chose {m_star}")
    rows.setdefault(setting, []).append(dict(seed=int(seed), ce=ce, se=se, n=n, steps=steps, m_star=m_star, a=a, b=b,
                                             wall=wall, probes=len(probes)))

L = []
w = L.append
w("# Can Ent-Prog's search tell its candidates apart? (stage 1 of the `medium` fine-tuning)")
w("")
w(f"Command: `{command}` (this page is written by `benchmarks/analyze_ce_noise.py` from that command's runs; "
  "rerun it to refresh, never edit by hand).")
w("")
info = open(os.path.join(work, "bench_info.txt")).read().strip()
w("Run record (bench_info.txt):")
w("")
w("```")
w(info)
w("```")
w("")
w("Every run starts from the same image-pretrained `medium` checkpoint (12 blocks, its CEI ranking) and the same data "
  "as `benchmarks/results/finetune_compare.md`, with `inputs/medium_finetune.ini` and train.seed = the seed "
  "(batches, t, noise, the draws of m); it stops once stage 1 (candidates m = 3, 6, 9) has chosen m\\*. "
  "CE is the probe-loss drop per unit of the deterministic cost model (`entprog.timing = cost`, block passes), "
  "so the load of the machine does not enter. CE and SE below are recomputed from each run's metrics.csv "
  "and checked against its log" + (": they agree." if not problems else "; disagreements are listed at the end."))
w("")
sn_all = [r for k, rs in rows.items() if not k.startswith("tr") for r in rs]
if sn_all:
    firsts = sum(r["m_star"] == r["steps"][0][0] for r in sn_all)
    seps = sum(r["ce"][r["a"]] - r["ce"][r["b"]] >= max(r["se"][r["a"]], r["se"][r["b"]]) for r in sn_all)
    w("## Verdict")
    w("")
    w(f"- Supernet searches: {seps} of {len(sn_all)} separated their best two candidates; in {firsts} of "
      f"{len(sn_all)} m\\* was the candidate drawn for the window's first step.")
    trs = rows.get("tr15_p4", [])
    if trs:
        picks = {}
        for r in trs:
            picks[r["m_star"]] = picks.get(r["m_star"], 0) + 1
        top = max(picks, key=picks.get)
        w(f"- Independent trials chose m = {top} in {picks[top]} of {len(trs)} seeds.")
    w("")
w("## Per setting")
w("")
w("Separated: CE(best) - CE(runner-up) >= the larger of their standard errors. gap/SE: that difference over that "
  "standard error (median over seeds). m\\* over seeds: how many seeds chose each m.")
w("")
w("| setting | seeds | separated | median gap/SE | median SE / CE(best) | m\\* over seeds | m\\* = the m drawn first | wall s per run (mean) |")
w("|---|---|---|---|---|---|---|---|")
for s, label in SETTINGS.items():
    rs = rows.get(s, [])
    if not rs:
        continue
    picks = {}
    for r in rs:
        picks[r["m_star"]] = picks.get(r["m_star"], 0) + 1
    pick_s = ", ".join(f"m={m}: {k}" for m, k in sorted(picks.items()))
    wall = statistics.mean(r["wall"] for r in rs)
    if s.startswith("tr"):
        w(f"| {label} | {len(rs)} | (no SE per run) | - | - | {pick_s} | - | {wall:.0f} |")
        continue
    ratios, rel, sep = [], [], 0
    for r in rs:
        e = max(r["se"][r["a"]], r["se"][r["b"]])
        g = r["ce"][r["a"]] - r["ce"][r["b"]]
        ratios.append(g / e if e > 0 else float("inf"))
        rel.append(r["se"][r["a"]] / abs(r["ce"][r["a"]]) if r["ce"][r["a"]] else float("nan"))
        sep += g >= e
    first = sum(r["m_star"] == r["steps"][0][0] for r in rs)
    w(f"| {label} | {len(rs)} | {sep}/{len(rs)} | {statistics.median(ratios):.2f} | {statistics.median(rel):.2f} | "
      f"{pick_s} | {first}/{len(rs)} | {wall:.0f} |")
w("")

w("## Each run")
w("")
w("CE(m) ± SE in 10⁻⁶ per cost unit (draws of m in the window).")
w("")
w("| setting | seed | CE(3) | CE(6) | CE(9) | m\\* | gap/SE |")
w("|---|---|---|---|---|---|---|")
for s in SETTINGS:
    for r in sorted(rows.get(s, []), key=lambda r: r["seed"]):
        cells = []
        for m in (3, 6, 9):
            if m not in r["ce"]:
                cells.append("not drawn")
            elif s.startswith("tr"):
                cells.append(f"{r['ce'][m] * 1e6:.1f}")
            else:
                cells.append(f"{r['ce'][m] * 1e6:.1f} ± {r['se'][m] * 1e6:.1f} ({r['n'][m]})")
        if s.startswith("tr"):
            ratio = "-"
        else:
            e = max(r["se"][r["a"]], r["se"][r["b"]])
            ratio = f"{(r['ce'][r['a']] - r['ce'][r['b']]) / e:.2f}"
        w(f"| {s} | {r['seed']} | " + " | ".join(cells) + f" | {r['m_star']} | {ratio} |")
w("")

# Independent trials: the candidates' differences, paired by seed (the same batches, t, noise for each candidate)
tr = rows.get("tr15_p4", [])
if len(tr) >= 2:
    w("## Independent trials: the differences between candidates, paired by seed")
    w("")
    w("Each seed's trials train every candidate from the same snapshot on the same batches, t and noise, so the "
      "difference of two candidates' CE within a seed has none of the batch-to-batch noise that a supernet window "
      "attributes to single steps. Mean ± standard error over the seeds, and in how many seeds the sign holds.")
    w("")
    w("| pair | CE difference (10⁻⁶ per cost unit) | relative to the mean CE | seeds with difference > 0 |")
    w("|---|---|---|---|")
    for x, y in ((3, 6), (3, 9), (6, 9)):
        diffs = [r["ce"][x] - r["ce"][y] for r in tr]
        mean_ce = statistics.mean(statistics.mean(r["ce"].values()) for r in tr)
        w(f"| CE({x}) - CE({y}) | {statistics.mean(diffs) * 1e6:.1f} ± {sd(diffs) / math.sqrt(len(diffs)) * 1e6:.1f} | "
          f"{statistics.mean(diffs) / mean_ce * 100:+.1f}% | {sum(d > 0 for d in diffs)}/{len(diffs)} |")
    w("")
    sn = {r["seed"]: r for r in rows.get("sn15_p4", [])}
    agree = [(r["seed"], r["m_star"], sn[r["seed"]]["m_star"]) for r in tr if r["seed"] in sn]
    if agree:
        w(f"The deck's default supernet search (sn15_p4) chose the trials' m\\* in "
          f"{sum(a == b for _, a, b in agree)} of {len(agree)} seeds.")
        w("")

# Non-stationarity inside a supernet window: the drop per cost of the first steps against the last
w("## Why the supernet's per-step attribution is noisy here")
w("")
for s in ("sn15_p4", "sn48_p4"):
    rs = rows.get(s, [])
    if not rs:
        continue
    first, last, allx = [], [], []
    for r in rs:
        xs = [dd / c for _, dd, c in r["steps"]]
        k = max(1, len(xs) // 3)
        first += xs[:k]
        last += xs[-k:]
        allx += xs
    w(f"- {s}: loss drop per cost unit of a single window step, over all seeds and candidates: mean "
      f"{statistics.mean(allx) * 1e6:.1f}, standard deviation {sd(allx) * 1e6:.1f} (10⁻⁶); first third of the window "
      f"{statistics.mean(first) * 1e6:.1f}, last third {statistics.mean(last) * 1e6:.1f}.")
bal = rows.get("sn48_bal", [])
if bal:
    # balanced draws come in rounds that draw each candidate once: differences within a round are paired in time
    paired, unpaired = [], []
    for r in bal:
        st = r["steps"]
        k = len(r["ce"])
        rounds = [st[i:i + k] for i in range(0, len(st) - k + 1, k)]
        rounds = [rd for rd in rounds if sorted(m for m, _, _ in rd) == sorted(r["ce"])]
        a, b = r["a"], r["b"]
        diffs = []
        for rd in rounds:
            x = {m: dd / c for m, dd, c in rd}
            diffs.append(x[a] - x[b])
        if len(diffs) >= 2:
            paired.append(sd(diffs) / math.sqrt(len(diffs)))
            unpaired.append(math.hypot(r["se"][a], r["se"][b]))
    if paired:
        w(f"- sn48_bal: the standard error of CE(best) - CE(runner-up), median over seeds: "
          f"{statistics.median(unpaired) * 1e6:.1f} from the two candidates' own SEs, "
          f"{statistics.median(paired) * 1e6:.1f} from differences paired within each round of draws.")
w("")
if problems:
    w("## Disagreements with the logs")
    w("")
    for p in problems:
        w(f"- {p}")
    w("")
open(os.path.join(out, "ce_noise.md"), "w").write("\n".join(L) + "\n")
print(f"wrote {os.path.join(out, 'ce_noise.md')}" + (f" ({len(problems)} disagreements)" if problems else ""))
