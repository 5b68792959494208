#!/usr/bin/env bash
# Ent-Prog against full fine-tuning on the `small` EP-VDiT, CPU, one rank:
#  1. image pre-training (inputs/small_pretrain.ini, F = 1, from scratch);
#  2. CEI of the pretrained model (entprog cei, written into its checkpoint);
#  3. video fine-tuning from it (inputs/small_finetune.ini), the same number
#     of steps for every method: full and entprog twice each (train.seed 1, 2),
#     then linear, random, depth once, and the CEI check: only the top-2 vs
#     only the bottom-2 CEI blocks;
#  4. benchmarks/analyze_finetune.py: time to reach full fine-tuning's best
#     validation loss, peak memory, final losses, pictures ->
#     benchmarks/results/finetune_compare.md (+ .png).
# usage: benchmarks/finetune_compare.sh [WORKDIR]   (about 30 min on 2 cores)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$here/benchmarks/work}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
"$here/scripts/build.sh" "$here/build" >/dev/null
E="$here/build/entprog"
FT="$here/inputs/small_finetune.ini"
mkdir -p "$work"
cd "$work"
[ -f data/train.h5 ] || "$E" datagen "$here/inputs/small_pretrain.ini"
PRE=run-pretrain/ckpt_00001500.h5
[ -f "$PRE" ] || "$E" train "$here/inputs/small_pretrain.ini" | grep -E "val loss|done|checkpoint" || true
[ -f "$PRE" ] || { echo "pre-training did not write $PRE" >&2; exit 1; }
if [ ! -f cei/cei.csv ]; then
  t0=$SECONDS
  "$E" cei "$FT" --ckpt "$PRE" --n 256 --out cei
  echo "$((SECONDS - t0))" > cei/wall_s
fi
run() { # name, then --set overrides
  local name=$1; shift
  [ -f "ft-$name/metrics.csv" ] && grep -q "^val,600," "ft-$name/metrics.csv" && return
  rm -rf "ft-$name"
  echo "== $name"
  "$E" train "$FT" --set train.init="$PRE" --set train.out_dir="ft-$name" "$@" | grep -E "^stage|val loss|done" || true
}
run full_1 --set entprog.method=full --set train.seed=1
run entprog_1 --set entprog.method=entprog --set train.seed=1
run full_2 --set entprog.method=full --set train.seed=2
run entprog_2 --set entprog.method=entprog --set train.seed=2
run linear --set entprog.method=linear --set train.seed=1
run random --set entprog.method=random --set train.seed=1
run depth --set entprog.method=depth --set train.seed=1
run top2 --set entprog.method=static --set entprog.static_m=2 --set train.seed=1
run bottom2 --set entprog.method=static --set entprog.static_m=2 --set entprog.reverse=1 --set train.seed=1
/usr/bin/python3 "$here/benchmarks/analyze_finetune.py" "$work" "$here/benchmarks/results" \
  "benchmarks/finetune_compare.sh $*"
