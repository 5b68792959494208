#!/usr/bin/env bash
# Shows that the code in this tree trains exactly as an earlier commit does:
# builds REV (CPU backend) in a scratch worktree, runs the same runs with both
# programs, and compares every loss, gradient norm, learning rate, stage and m
# of metrics.csv and every tensor of the final checkpoint bit for bit
# (tools/same_as_rev.py). Used for changes that must not change behaviour
# (issue 11, the move into folders). Wall-clock columns are not compared.
#   tools/same_as_rev.sh REV [NEW_BUILD_DIR]     e.g. tools/same_as_rev.sh f78252b build
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
rev=${1:?usage: tools/same_as_rev.sh REV [NEW_BUILD_DIR]}
new=${2:-$here/build}
work=$(mktemp -d /tmp/same_as_rev.XXXXXX)
head=$(git -C "$here" rev-parse --short HEAD)
git -C "$here" diff --quiet HEAD -- src mpi cuda CMakeLists.txt || head="$head + uncommitted changes"
echo "tools/same_as_rev.sh $rev: this tree ($head, built in $new) against $rev ($(git -C "$here" rev-parse --short "$rev"))"
trap 'git -C "$here" worktree remove --force "$work/src" >/dev/null 2>&1 || true' EXIT
git -C "$here" worktree add --detach "$work/src" "$rev" >/dev/null
cmake -S "$work/src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DENTPROG_CUDA=OFF >/dev/null
cmake --build "$work/build" -j"$(nproc)" --target entprog >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE OMP_NUM_THREADS=1
deck=$here/inputs/tiny.ini
# name | ranks | --set overrides (the fine-tunes start from the first run's weights, as CEI needs)
runs=(
  "full|1|"
  "entprog_supernet|1|train.init=$work/old/run_full/ckpt_00000030.h5 train.steps=60 entprog.method=entprog entprog.stages=2 entprog.search_steps=5 entprog.timing=cost train.keep_ckpts=0"
  "entprog_trials_2ranks|2|train.init=$work/old/run_full/ckpt_00000030.h5 train.steps=60 entprog.method=entprog entprog.stages=2 entprog.search_steps=5 entprog.search=trials entprog.timing=cost"
  "linear_ema|1|train.init=$work/old/run_full/ckpt_00000030.h5 train.steps=40 entprog.method=linear entprog.stages=3 train.ema=0.99"
)
(cd "$work" && "$new/entprog" datagen "$deck" >/dev/null)
mkdir -p "$work/old" "$work/new"
ln -s ../data "$work/old/data"
ln -s ../data "$work/new/data" # each side runs in its own folder with the same deck text (/config compares too)
status=0
for r in "${runs[@]}"; do
  IFS='|' read -r name ranks sets <<<"$r"
  args=()
  for s in $sets; do args+=(--set "${s//\$work/$work}"); done
  for side in old new; do
    bin=$work/build/entprog
    [ $side = new ] && bin=$new/entprog
    (cd "$work/$side" && mpirun --oversubscribe -n "$ranks" "$bin" train "$deck" --set train.out_dir="run_$name" \
       "${args[@]}" >"$work/log_${name}_$side.txt" 2>&1) || { echo "$name ($side) failed: $work/log_${name}_$side.txt"; exit 1; }
  done
  /usr/bin/python3 "$here/tools/same_as_rev.py" "$name" "$work/old/run_$name" "$work/new/run_$name" || status=1
done
[ $status = 0 ] && echo "same_as_rev: every run of this tree equals $rev's bit for bit" || echo "same_as_rev: DIFFERENT from $rev"
exit $status
