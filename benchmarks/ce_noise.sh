#!/usr/bin/env bash
# How well does Ent-Prog's search tell its candidates apart? (issue 15)
# The first stage's search of the `medium` fine-tuning, from the image-pretrained
# checkpoint of benchmarks/finetune_compare.sh, under several search settings,
# SEEDS seeds each (train.seed: batches, t, noise, the draws of m):
#   sn15_p4   the deck's default: supernet, m i.i.d. uniform, one epoch (15 steps),
#             probe set 4 held-out videos x 4 batches (16 clips)
#   sn48_p4   the same with a window of 48 steps (the longest that fits half a stage)
#   sn15_p16  a window of 15 steps, probe set 16 videos x 16 batches (64 clips)
#   sn48_bal  48 steps, balanced draws (rounds that each draw every candidate once)
#   tr15_p4   independent trials: each candidate 15 steps from the same snapshot
#             (the same batches, t and noise for every candidate)
# Each run stops (SIGTERM: checkpoint, exit) once stage 1's m* is decided.
# benchmarks/analyze_ce_noise.py then recomputes CE(m) and its standard error
# from the probe rows of metrics.csv, checks them against the log, and writes
# RESULTS/ce_noise.md: per setting, how often the best and second-best
# candidate are separated by their standard errors, and how often the seeds
# agree on m*.
# usage: benchmarks/ce_noise.sh PRETRAIN_WORKDIR [WORKDIR]
#   PRETRAIN_WORKDIR: a finetune_compare.sh work folder (data/, run-pretrain/ckpt_*.h5 with its CEI)
# environment: BUILD (folder holding entprog, default build/, built first unless set),
#   SEEDS (default 1..8), LANES (default 2), RESULTS (default benchmarks/results).
# About 15 min on 2 cores. Finished runs are kept: rerunning continues.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 1 ] || { echo "usage: $0 PRETRAIN_WORKDIR [WORKDIR]" >&2; exit 2; }
pre=$(cd "$1" && pwd)
work=$(mkdir -p "${2:-$here/benchmarks/work/ce_noise}" && cd "${2:-$here/benchmarks/work/ce_noise}" && pwd)
if [ -z "${BUILD:-}" ]; then
  BUILD=$here/build
  "$here/scripts/build.sh" "$BUILD" >/dev/null
fi
E=$(cd "$BUILD" && pwd)/entprog
SEEDS=${SEEDS:-1 2 3 4 5 6 7 8}
LANES=${LANES:-2}
RESULTS=${RESULTS:-$here/benchmarks/results}
FT=$here/inputs/medium_finetune.ini
PRE=$(ls "$pre"/run-pretrain/ckpt_*.h5 | tail -1)
[ -f "$PRE" ] && [ -f "$pre/data/train.h5" ] || { echo "$pre has no run-pretrain/ckpt_*.h5 or data/train.h5" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 # one run per core (see finetune_compare.sh)
cd "$work"
ln -sfn "$pre/data" data
{ echo "started $(date -u +%FT%TZ) on $(nproc --all) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "entprog $E ($(sha256sum "$E" | cut -c1-16)), commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "start checkpoint $PRE"; } >> bench_info.txt

# name | --set overrides (beyond the seed)
settings=("sn15_p4|"
          "sn48_p4|--set entprog.search_steps=48"
          "sn15_p16|--set entprog.search_steps=15 --set entprog.probe_videos=16 --set entprog.probe_batches=16"
          "sn48_bal|--set entprog.search_steps=48 --set entprog.sampling=balanced"
          "tr15_p4|--set entprog.search=trials --set entprog.search_steps=15")
jobs=()
for seed in $SEEDS; do
  for s in "${settings[@]}"; do jobs+=("${s%%|*}_s$seed|$seed|${s#*|}"); done
done
printf '%s\n' "${jobs[@]}" > manifest.txt

one() { # runs a job until stage 1's decision is logged, then stops it
  IFS='|' read -r name seed sets <<< "$1"
  local dir=run-$name
  [ -f "$dir/done" ] && return 0
  rm -rf "$dir" && mkdir -p "$dir"
  local t0=$SECONDS
  # shellcheck disable=SC2086
  "$E" train "$FT" --set train.init="$PRE" --set train.out_dir="$dir" --set train.seed="$seed" \
    --set entprog.seed="$seed" --set train.val_every=0 $sets > "$dir/log.txt" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null && ! grep -qs '^stage 1/4 (steps' "$dir/log.txt"; do sleep 1; done
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" || true
  if grep -q '^stage 1/4 (steps' "$dir/log.txt"; then
    echo "$((SECONDS - t0))" > "$dir/wall_s"
    touch "$dir/done"
    echo "$(date -u +%T) done $name ($((SECONDS - t0)) s)"
  else
    echo "$(date -u +%T) FAILED $name: $(grep -m1 -i error "$dir/log.txt" || tail -1 "$dir/log.txt")"
  fi
}
export -f one
export E FT PRE
printf '%s\n' "${jobs[@]}" | xargs -d '\n' -P "$LANES" -I{} bash -c 'one "$1"' _ {}
echo "finished $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" >> bench_info.txt
/usr/bin/python3 "$here/benchmarks/analyze_ce_noise.py" "$work" "$RESULTS" "benchmarks/ce_noise.sh $*"
