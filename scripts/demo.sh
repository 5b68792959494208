#!/usr/bin/env bash
# The main job of the README: installs dependencies, builds, and runs the
# whole Ent-Prog pipeline on the built-in synthetic human-video data, on the
# CPU, in about 10 minutes on 2 cores:
#   1. datagen   the synthetic dancers (inputs/demo_pretrain.ini)
#   2. pretrain  image pre-training, F = 1, all blocks (inputs/demo_pretrain.ini)
#   3. cei       the CEI block ranking of the pretrained model (entprog cei)
#   4. finetune  Ent-Prog video fine-tuning, F = 4, on 2 MPI ranks with one
#                OpenMP thread each (inputs/demo_finetune.ini)
#   5. sample    DDIM with guidance from the EMA weights: GIFs and grid.png
#   6. eval      SSIM / PSNR / L1 / temporal consistency against ground truth
#   7. report    loss plots and demo/report.md
# Everything goes to demo/ (or $ENTPROG_DEMO_DIR). A training stage whose
# final checkpoint exists is skipped, an interrupted one resumes from its
# last checkpoint; `rm -rf demo` to start over.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
"$here/scripts/build.sh" "$here/build"
E="$here/build/entprog"
PRE_DECK="$here/inputs/demo_pretrain.ini"
FT_DECK="$here/inputs/demo_finetune.ini"
PRE_CKPT=run-pretrain/ckpt_00004000.h5     # train.steps of demo_pretrain.ini
FT_CKPT=run-finetune/ckpt_00002500.h5      # train.steps of demo_finetune.ini
GUIDANCE=1.5
work=${ENTPROG_DEMO_DIR:-$here/demo}
mkdir -p "$work"
cd "$work"
T_ALL=$SECONDS
declare -A took

stage() { echo; echo "=== $1 ($(date +%H:%M:%S))"; }

# train DECK OUT_DIR FINAL_CKPT LAUNCHER...: trains unless FINAL_CKPT exists,
# resuming from OUT_DIR's last checkpoint when there is one.
train() {
  local deck=$1 out=$2 final=$3; shift 3
  if [ -f "$final" ]; then echo "$final exists: skipped (rm -rf $work to start over)"; return; fi
  local last args=()
  last=$(ls "$out"/ckpt_*.h5 2>/dev/null | tail -n 1 || true)
  if [ -n "$last" ]; then echo "resuming from $last"; args=(--resume "$last"); else rm -rf "$out"; fi
  "$@" "$E" train "$deck" "${args[@]}" --set train.out_dir="$out"
}

stage "1/7 datagen"; t=$SECONDS
"$E" datagen "$PRE_DECK"
took[datagen]=$((SECONDS - t))

stage "2/7 image pre-training (F = 1, $(nproc) threads)"; t=$SECONDS
train "$PRE_DECK" run-pretrain "$PRE_CKPT" env OMP_NUM_THREADS="$(nproc)"
took[pretrain]=$((SECONDS - t))

stage "3/7 CEI of the pretrained model"; t=$SECONDS
"$E" cei "$FT_DECK" --ckpt "$PRE_CKPT" --n 256
took[cei]=$((SECONDS - t))

stage "4/7 Ent-Prog video fine-tuning (F = 4, 2 MPI ranks x 1 thread)"; t=$SECONDS
train "$FT_DECK" run-finetune "$FT_CKPT" \
  mpirun -n 2 --oversubscribe -x OMP_NUM_THREADS=1 -x HDF5_USE_FILE_LOCKING
took[finetune]=$((SECONDS - t))

stage "5/7 sampling (DDIM 50 steps, guidance $GUIDANCE, EMA weights)"; t=$SECONDS
rm -rf samples
"$E" sample "$FT_DECK" --ckpt "$FT_CKPT" --ema --guidance "$GUIDANCE" --steps 50 --out samples
took[sample]=$((SECONDS - t))

stage "6/7 evaluation"; t=$SECONDS
"$E" eval --samples samples/samples.h5
took[eval]=$((SECONDS - t))

stage "7/7 report"; t=$SECONDS
mkdir -p figures
/usr/bin/python3 "$here/tools/plot_metrics.py" run-pretrain/metrics.csv figures/pretrain_loss.png
/usr/bin/python3 "$here/tools/plot_report.py" run-finetune/metrics.csv --labels entprog \
  --cei run-pretrain/cei.csv --out figures >/dev/null
took[report]=$((SECONDS - t))
total=$((SECONDS - T_ALL))

/usr/bin/python3 - "$GUIDANCE" "$total" "${took[datagen]}" "${took[pretrain]}" "${took[cei]}" \
  "${took[finetune]}" "${took[sample]}" "${took[eval]}" "${took[report]}" <<'EOF'
import csv, json, sys
guidance, total, *t = sys.argv[1:]
names = ["datagen", "pretrain", "cei", "finetune", "sample", "eval", "report"]
evj = json.load(open("samples/eval.json"))
ev, ev_n = evj["mean"], evj["n"]
def last_train(path):
    rows = [r for r in csv.DictReader(open(path)) if r["kind"] == "train"]
    return rows[-1], max(float(r["mem_peak_mib"] or 0) for r in rows)
ft, ft_mem = last_train("run-finetune/metrics.csv")
pre, _ = last_train("run-pretrain/metrics.csv")
stages = [r for r in csv.DictReader(open("run-finetune/metrics.csv")) if r["kind"] == "train"]
ms = []
for r in stages:
    if not ms or ms[-1][0] != int(r["stage"]) + 1:
        ms.append((int(r["stage"]) + 1, r["m"], r["step"]))
fmt = lambda v: "null" if v is None else f"{v:.4f}"
lines = ["# entprog demo report", "",
         "Written by scripts/demo.sh (pictures and numbers of this run).", "",
         "| stage | wall s (0: reused) |", "|---|---|"]
lines += [f"| {n} | {s} |" for n, s in zip(names, t)]
lines += [f"| **total** | **{total}** |", "",
          f"Pre-training: {pre['step']} steps, last loss {float(pre['loss']):.4f}, {float(pre['train_s']):.0f} s of training.",
          f"Ent-Prog fine-tuning: {ft['step']} steps, last loss {float(ft['loss']):.4f}, "
          f"{float(ft['train_s']):.0f} s of training, peak model memory {ft_mem:.1f} MiB; "
          "trainable blocks m per stage: " + ", ".join(f"stage {s}: m = {m} (from step {st})" for s, m, st in ms) + ".", "",
          f"Samples (the {ev_n} test videos, DDIM 50 steps, guidance {guidance}, EMA weights), against the ground truth:", "",
          "| SSIM | PSNR dB | L1 | tdiff_gen | tdiff_gt | tdiff_err |", "|---|---|---|---|---|---|",
          f"| {fmt(ev['ssim'])} | {ev['psnr'] if isinstance(ev['psnr'], str) else round(ev['psnr'], 3)} | {fmt(ev['l1'])} | "
          f"{fmt(ev['tdiff_gen'])} | {fmt(ev['tdiff_gt'])} | {fmt(ev['tdiff_err'])} |", "",
          "![samples](samples/grid.png)", "",
          "grid.png rows: reference | pose maps | generated frames | ground truth.", "",
          "![pre-training loss](figures/pretrain_loss.png)", "",
          "![fine-tuning loss](figures/loss_step.png)", "",
          "![m per stage](figures/m_stage.png)", "",
          "![CEI](figures/cei.png)", ""]
open("report.md", "w").write("\n".join(lines))
print("\n".join(lines[4:13]))
EOF

echo
echo "report:           $work/report.md"
echo "evaluation:       $work/samples/eval.json (and eval.csv)"
echo "sample grid:      $work/samples/grid.png (reference | poses | generated | ground truth)"
echo "sample videos:    $work/samples/sample_*.gif"
echo "dataset preview:  $work/data/preview.png"
echo "loss plots:       $work/figures/pretrain_loss.png, $work/figures/loss_step.png, $work/figures/loss_time.png"
echo "Ent-Prog plots:   $work/figures/m_stage.png, $work/figures/cei.png"
echo "checkpoints:      $work/$PRE_CKPT, $work/$FT_CKPT"
echo "total wall time:  ${total} s"
