#!/usr/bin/env bash
# Ent-Prog against full fine-tuning and its ablations, CPU, 3 seeds per
# method (issue 15), on the `medium` EP-VDiT (12 blocks) by default:
#  1. image pre-training (inputs/${DECK}_pretrain.ini, F = 1, from scratch, 2 ranks);
#  2. CEI of the pretrained model (entprog cei, stored in its checkpoint);
#  3. video fine-tuning from it (inputs/${DECK}_finetune.ini), the same steps for
#     every method, train.seed = 1, 2, 3 each: full, entprog (the paper's supernet
#     search; and with independent trials, benchmarks/ce_noise.sh says why), linear (w/o Ada.),
#     random and depth (w/o CEI), temporal (only the temporal attention trains),
#     static top-k and bottom-k CEI blocks (k = entprog.static_m), and the
#     control: every block trains but the input side is frozen (static,
#     static_m = L); runs go LANES at a time, each on one core (one thread);
#  4. benchmarks/analyze_finetune.py: time to reach full fine-tuning's final EMA
#     validation loss (in the cost model's units and in wall seconds), peak
#     memory, mean and spread over the seeds, the paper's Table 5 ->
#     RESULTS/finetune_compare.md (+ .png).
# usage: benchmarks/finetune_compare.sh [WORKDIR]   (WORKDIR default benchmarks/work/$DECK)
# environment: DECK (medium | small, default medium), BUILD (the build folder holding
#   entprog, default build/, built first; not rebuilt when set), LANES (runs at once,
#   default 2), SEEDS (default "1 2 3"), RESULTS (default benchmarks/results),
#   SMOKE=1: a few steps of everything, results into WORKDIR/results (checks the pipeline).
# medium: about 75 min on 2 cores (more when other work shares them). Finished
# runs are kept: rerunning continues where it stopped.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
DECK=${DECK:-medium}
work=$(mkdir -p "${1:-$here/benchmarks/work/$DECK}" && cd "${1:-$here/benchmarks/work/$DECK}" && pwd)
if [ -z "${BUILD:-}" ]; then
  BUILD=$here/build
  "$here/scripts/build.sh" "$BUILD" >/dev/null
fi
E=$(cd "$BUILD" && pwd)/entprog
LANES=${LANES:-2}
SEEDS=${SEEDS:-1 2 3}
RESULTS=${RESULTS:-$here/benchmarks/results}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
# One thread per run: on 2 cores shared with other work, two 1-thread runs side
# by side beat one 2-thread run by far (OpenMP's barriers wait for a thread
# that lost its core; measured: 0.27-0.44 s vs 3.4 s per step under load 7).
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# OpenBLAS misdetects this VM's CPU (Prescott: SSE3 kernels, about 3x slower).
# entprog now sets the core type itself (src/core/blas_core.c); kept so that a
# binary from before that fix measures the same, and harmless after it.
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-SkylakeX}
PT=$here/inputs/${DECK}_pretrain.ini
FT=$here/inputs/${DECK}_finetune.ini
key() { sed -n "s/^$1 *= *\([^ ;]*\).*/\1/p" "$2" | head -1; }
PRE_STEPS=$(key steps "$PT")
FT_STEPS=$(key steps "$FT")
L=$(key L "$FT")
K=$(key static_m "$FT")
CEI_N=256
SMOKE_SETS=()
PRE_SETS=()
if [ "${SMOKE:-0}" = 1 ]; then
  PRE_STEPS=4 FT_STEPS=16 CEI_N=8
  PRE_SETS=(--set train.val_every=2)
  SMOKE_SETS=(--set train.val_every=2 --set entprog.search_steps=2 --set train.val_batches=1 --set entprog.probe_batches=1)
  RESULTS=$work/results
fi
cd "$work"
{ echo "started $(date -u +%FT%TZ) on $(nproc --all) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "entprog $E ($(sha256sum "$E" | cut -c1-16)), commit $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
    git -C "$here" diff --quiet HEAD -- src 2>/dev/null || echo " with uncommitted changes in src/")"
  echo "lanes $LANES, seeds $SEEDS, pretrain $PRE_STEPS steps, fine-tuning $FT_STEPS steps"; } >> bench_info.txt
[ -f data/train.h5 ] || "$E" datagen "$PT" > datagen.log
PRE=run-pretrain/ckpt_$(printf %08d "$PRE_STEPS").h5
if [ ! -f "$PRE" ]; then
  t0=$SECONDS
  mpirun -n 2 --oversubscribe -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS -x OPENBLAS_CORETYPE -x HDF5_USE_FILE_LOCKING \
    "$E" train "$PT" --set train.steps="$PRE_STEPS" "${PRE_SETS[@]}" > pretrain.log
  echo "$((SECONDS - t0))" > run-pretrain/wall_s
fi
[ -f "$PRE" ] || { echo "pre-training did not write $PRE" >&2; exit 1; }
if [ ! -f cei/cei.csv ]; then
  t0=$SECONDS
  "$E" cei "$FT" --ckpt "$PRE" --n "$CEI_N" --out cei > cei.log
  echo "$((SECONDS - t0))" > cei/wall_s
fi

# name | method label | seed | --set overrides. The manifest tells the analyzer what each run is.
jobs=()
for seed in $SEEDS; do # seed-major: an interrupted benchmark has every method at the first seeds
  S="--set train.seed=$seed --set entprog.seed=$seed"
  jobs+=("full_s$seed|full|$seed|--set entprog.method=full $S"
         "entprog_s$seed|entprog|$seed|--set entprog.method=entprog $S"
         "entprog-trials_s$seed|entprog-trials|$seed|--set entprog.method=entprog --set entprog.search=trials $S"
         "control_s$seed|control|$seed|--set entprog.method=static --set entprog.static_m=$L $S"
         "linear_s$seed|linear|$seed|--set entprog.method=linear $S"
         "random_s$seed|random|$seed|--set entprog.method=random $S"
         "depth_s$seed|depth|$seed|--set entprog.method=depth $S"
         "temporal_s$seed|temporal|$seed|--set entprog.method=temporal $S"
         "top${K}_s$seed|top$K|$seed|--set entprog.method=static --set entprog.static_m=$K $S"
         "bottom${K}_s$seed|bottom$K|$seed|--set entprog.method=static --set entprog.static_m=$K --set entprog.reverse=1 $S")
done
printf '%s\n' "${jobs[@]}" > manifest.txt

one() { # a job line: runs it unless its final validation is in its metrics
  IFS='|' read -r name _ _ sets <<< "$1"
  local dir=ft-$name
  [ -f "$dir/metrics.csv" ] && grep -q "^val,$FT_STEPS," "$dir/metrics.csv" && [ -f "$dir/wall_s" ] && return 0
  rm -rf "$dir" && mkdir -p "$dir"
  local t0=$SECONDS l0
  l0=$(cut -d' ' -f1 /proc/loadavg)
  # shellcheck disable=SC2086
  if "$E" train "$FT" --set train.init="$PRE" --set train.out_dir="$dir" --set train.steps="$FT_STEPS" \
      $sets $SMOKE_SETS_STR > "$dir/log.txt" 2>&1; then
    echo "$((SECONDS - t0))" > "$dir/wall_s"
    sha256sum "$E" | cut -c1-16 > "$dir/binary"
    echo "$l0 $(cut -d' ' -f1 /proc/loadavg)" > "$dir/load"
    echo "$(date -u +%T) done $name ($((SECONDS - t0)) s)"
  else
    echo "$(date -u +%T) FAILED $name: $(grep -m1 error "$dir/log.txt" || tail -1 "$dir/log.txt")"
  fi
}
export -f one
export E FT PRE FT_STEPS
export SMOKE_SETS_STR="${SMOKE_SETS[*]}"
printf '%s\n' "${jobs[@]}" | xargs -d '\n' -P "$LANES" -I{} bash -c 'one "$1"' _ {}
echo "finished $(date -u +%FT%TZ), load $(cut -d' ' -f1-3 /proc/loadavg)" >> bench_info.txt
/usr/bin/python3 "$here/benchmarks/analyze_finetune.py" "$work" "$RESULTS" \
  "${SMOKE:+SMOKE=$SMOKE }DECK=$DECK benchmarks/finetune_compare.sh $*" "$FT" "$FT_STEPS"
