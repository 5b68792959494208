#!/usr/bin/env bash
# Times one training step (forward + loss + backward + AdamW) of the `small`
# EP-VDiT in entprog against the PyTorch reference (tests/reference/epvdit.py)
# on this machine with the same thread count, and writes the ratio to
# benchmarks/results/step_vs_torch.md with the command that produced it.
# usage: benchmarks/step_vs_torch.sh [THREADS] [STEPS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
threads=${1:-$(nproc)}
steps=${2:-12}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
"$here/scripts/build.sh" "$here/build" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$here/build/entprog" datagen "$here/inputs/small.ini" >/dev/null
OMP_NUM_THREADS=$threads "$here/build/entprog" train "$here/inputs/small.ini" --set train.out_dir=bench \
  --set train.steps="$steps" --set train.val_every=0 --set train.ckpt_every=0 --set train.log_every=1000 >/dev/null
# median ms/step over the steps after the first two (warm-up: first touch of buffers)
entprog_ms=$(awk -F, '$1=="train" && $2>2 {print $6}' bench/metrics.csv | sort -g |
             awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
torch_ms=$(/usr/bin/python3 "$here/benchmarks/torch_step.py" --threads "$threads" --steps "$((steps - 2))" |
           awk '/^torch_step_ms/ {print $2}')
ratio=$(awk -v a="$torch_ms" -v b="$entprog_ms" 'BEGIN {printf "%.2f", a / b}')
cpu=$(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2; exit}')
mkdir -p "$here/benchmarks/results"
out="$here/benchmarks/results/step_vs_torch.md"
{
  echo "# Training step of \`small\`: entprog vs PyTorch"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ), CPU: $cpu, threads: $threads"
  echo "- command: \`benchmarks/step_vs_torch.sh $threads $steps\`"
  echo "- shape: inputs/small.ini (B=4, F=8, 32x32 latents, p=4, D=128, L=6, NH=4, pose 64x64, Cg=16)"
  echo
  echo "| implementation | median ms/step |"
  echo "|---|---|"
  echo "| entprog (C, OpenBLAS, fp32) | $entprog_ms |"
  echo "| PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') (fp32, same model) | $torch_ms |"
  echo
  echo "entprog is **${ratio}x** the speed of PyTorch (PyTorch ms / entprog ms)."
} > "$out"
cat "$out"
