#!/usr/bin/env bash
# Data-parallel measurements on this machine (CPU, MPI), written to
# benchmarks/results/distributed.md with the command:
#  - the independent-trials search with 2 candidates on 1 rank (2 threads)
#    against 2 ranks (1 thread each, one candidate per rank): search wall time;
#  - a training step of `small` (full fine-tuning, global batch 4) on 1 rank x
#    batch 4 (2 threads) against 2 ranks x batch 2 (1 thread each): ms/step
#    and the share spent communicating (reduce-scatter + all-gather).
# Both compare the same 2 cores used two ways. usage: benchmarks/distributed.sh [WORKDIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$here/benchmarks/work-dist}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE OPENBLAS_NUM_THREADS=1
"$here/scripts/build.sh" "$here/build" >/dev/null
E="$here/build/entprog"
D="$here/inputs/small.ini"
mkdir -p "$work"
cd "$work"
[ -f data/train.h5 ] || "$E" datagen "$D" >/dev/null
rm -rf base && OMP_NUM_THREADS=2 "$E" train "$D" --set train.out_dir=base --set train.steps=20 --set train.val_every=0 >/dev/null
SEARCH=(--set train.init=base/ckpt_00000020.h5 --set entprog.method=entprog --set entprog.search=trials
        --set entprog.grid=2,6 --set entprog.max_candidates=2 --set entprog.stages=1 --set entprog.search_steps=10
        --set entprog.cei_n=16 --set train.steps=20 --set train.val_every=0 --set train.batch=2 --set train.ckpt_every=0)
rm -rf s1 s2
s1=$(OMP_NUM_THREADS=2 "$E" train "$D" "${SEARCH[@]}" --set train.out_dir=s1 | awk '/search: 2 candidates/ {print $(NF-7)}')
s2=$(OMP_NUM_THREADS=1 mpirun -n 2 --oversubscribe "$E" train "$D" "${SEARCH[@]}" --set train.out_dir=s2 |
     awk '/search: 2 candidates/ {print $(NF-7)}')
STEP=(--set train.steps=15 --set train.val_every=0 --set train.ckpt_every=0)
rm -rf p1 p2
OMP_NUM_THREADS=2 "$E" train "$D" "${STEP[@]}" --set train.batch=4 --set train.out_dir=p1 >/dev/null
OMP_NUM_THREADS=1 mpirun -n 2 --oversubscribe "$E" train "$D" "${STEP[@]}" --set train.batch=2 --set train.out_dir=p2 >/dev/null
med() { awk -F, -v c="$2" '$1=="train" && $2>3 {print $c}' "$1" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m1=$(med p1/metrics.csv 6); m2=$(med p2/metrics.csv 6); c2=$(med p2/metrics.csv 13)
out="$here/benchmarks/results/distributed.md"
mkdir -p "$(dirname "$out")"
{
  echo "# Data-parallel entprog on one 2-core machine"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%MZ), command: \`benchmarks/distributed.sh\`"
  echo "- the same 2 cores used as 1 rank x 2 OpenMP threads or 2 MPI ranks x 1 thread"
  echo
  echo "| measurement | 1 rank | 2 ranks |"
  echo "|---|---|---|"
  echo "| trials search, 2 candidates x 10 steps (s) | $s1 | $s2 |"
  echo "| step of \`small\`, global batch 4 (ms, median) | $m1 | $m2 |"
  echo "| of which communication (ms, median) | 0 | $c2 |"
  echo
  echo "Search speed-up from partitioning: $(awk -v a="$s1" -v b="$s2" 'BEGIN {printf "%.2f", a / b}')x."
  echo "Communication share of a 2-rank step: $(awk -v a="$c2" -v b="$m2" 'BEGIN {printf "%.1f", 100 * a / b}')%."
} > "$out"
cat "$out"
