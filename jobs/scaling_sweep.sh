#!/usr/bin/env bash
# scaling_sweep.sh: submits the strong- and weak-scaling sweep, one
# jobs/scaling.sbatch job per node count (a plain loop of sbatch, not a job
# array: array tasks share one resource request, and each point needs its own
# node count), then a small dependent job that gathers ms/step into a CSV.
#
# usage, from the repository root on the cluster's login node:
#   jobs/scaling_sweep.sh [options]
# options:
#   --mode weak|strong|both   which sweep (default both)
#   --nodes "1 2 4 8"         node counts (default "1 2 4 8")
#   --gpus-per-node G         ranks per node, one GPU each (default 8)
#   --batch B                 weak: clips per rank (default: the deck's train.batch)
#   --global-batch G          strong: clips per step over all ranks (default 64;
#                             a multiple of every rank count of the sweep)
#   --steps S                 training steps per point (default 30)
#   --deck DECK               default inputs/paper.ini
#   --results DIR             default results/scaling
#   --cpus-per-task C         OpenMP threads per rank (default 8)
#   --cpu                     CPU ranks instead of GPUs (no --gpus-per-task;
#                             --gpus-per-node is then ranks per node)
#   --dry-run                 print the sbatch commands, submit nothing
#   any other argument is passed to every sbatch (e.g. -p gpu -A myproject)
# It writes RESULTS/<mode>/nodes_<N>/ (see jobs/scaling.sbatch) and, when all
# points have ended, RESULTS/scaling.csv (jobs/scaling_gather.sh). The
# environment (EXTRA_SETS, ENTPROG, LAUNCHER, ...) reaches every job.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
mode=both nodes="1 2 4 8" gpn=8 batch='' global=64 steps=30 deck=inputs/paper.ini results=results/scaling
cpu=0 dry=0 cpt=8 extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --mode) mode=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --gpus-per-node) gpn=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --global-batch) global=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --deck) deck=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --cpus-per-task) cpt=$2; shift 2 ;;
    --cpu) cpu=1; shift ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done
case $mode in weak) modes=(weak) ;; strong) modes=(strong) ;; both) modes=(weak strong) ;;
  *) echo "scaling_sweep: --mode '$mode' (expected weak, strong or both)" >&2; exit 2 ;; esac
[ -f "$deck" ] || { echo "scaling_sweep: deck '$deck' not found (run from the repository root)" >&2; exit 2; }
for n in $nodes; do
  r=$((n * gpn))
  if [[ " ${modes[*]} " == *" strong "* ]] && { [ $((global % r)) -ne 0 ] || [ "$global" -lt "$r" ]; }; then
    echo "scaling_sweep: --global-batch $global is not a multiple of $r ranks ($n nodes x $gpn)" >&2
    exit 2
  fi
done

submit() { # prints the job id
  if [ "$dry" = 1 ]; then
    echo "sbatch $*" >&2
    echo "DRY$RANDOM"
  else
    sbatch --parsable "$@" | cut -d';' -f1
  fi
}

[ "$dry" = 1 ] || mkdir -p "$results"
ids=()
for m in "${modes[@]}"; do
  for n in $nodes; do
    res=(--nodes="$n" --ntasks-per-node="$gpn" --cpus-per-task="$cpt")
    [ "$cpu" = 1 ] || res+=(--gpus-per-task=1)
    id=$(MODE=$m BATCH=$batch GLOBAL_BATCH=$global STEPS=$steps DECK=$deck RESULTS=$results ENTPROG_REPO=$repo \
         submit --job-name="scale-$m-$n" "${res[@]}" --export=ALL "${extra[@]}" "$repo/jobs/scaling.sbatch")
    ids+=("$id")
    echo "$m, $n node(s) x $gpn: job $id -> $results/$m/nodes_$n/"
  done
done
dep=$(IFS=:; echo "${ids[*]}")
gid=$(submit --job-name=scale-gather --nodes=1 --ntasks=1 --time=00:05:00 \
      --dependency="afterany:$dep" --output="$results/gather-%j.out" "${extra[@]}" \
      --wrap="$repo/jobs/scaling_gather.sh $results > $results/scaling.csv")
echo "gather: job $gid -> $results/scaling.csv (after all points end)"
