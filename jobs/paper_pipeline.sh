#!/usr/bin/env bash
# paper_pipeline.sh: submits the paper-scale Ent-Prog pipeline as four Slurm
# jobs chained with `sbatch --dependency=afterok:<previous job>`:
#   1. pretrain  image pre-training (inputs/paper.ini, model.F = 1), many GPUs
#   2. cei       block ranking of the pretrained model, 1 GPU
#   3. finetune  Ent-Prog video fine-tuning from it, many GPUs
#   4. sample    `entprog sample` on the fine-tuned model, 1 GPU
# Each is jobs/paper_pipeline.sbatch STEP (see there for what each runs and
# writes). Separate jobs rather than one job with sequential srun steps: the
# steps need different resources (16 GPUs for training, 1 for cei and
# sampling), a failed step stops the chain (afterok; the later jobs are
# cancelled with reason DependencyNeverSatisfied, or stay pending on sites
# with kill_invalid_depend off), and a training step that requeues itself
# before its time limit keeps its job id, so the jobs after it keep waiting
# for it.
#
# usage, from the repository root on the cluster's login node:
#   jobs/paper_pipeline.sh [--from STEP] [--dry-run] [sbatch options for every job, e.g. -p gpu -A proj]
# Environment: TRAIN_NODES (default 2), GPUS_PER_NODE (default 8),
# CPUS_PER_GPU (default 8), PRETRAIN_TIME / FINETUNE_TIME (default 24:00:00),
# SMALL_TIME (cei, sample; default 04:00:00), and the ones
# jobs/paper_pipeline.sbatch reads (DECK, PIPE_DIR, PRETRAIN_SETS,
# FINETUNE_SETS, CEI_N, SAMPLE_ARGS, ENTPROG, ...), passed on to every job.
# --from cei|finetune|sample starts later in the chain (earlier steps' outputs
# must exist in PIPE_DIR).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
from=pretrain dry=0 extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --from) from=$2; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    *) extra+=("$1"); shift ;;
  esac
done
nodes=${TRAIN_NODES:-2} gpn=${GPUS_PER_NODE:-8} cpg=${CPUS_PER_GPU:-8}
export ENTPROG_REPO=$repo
steps=(pretrain cei finetune sample)
case " ${steps[*]} " in *" $from "*) ;; *) echo "paper_pipeline: --from '$from' (expected one of ${steps[*]})" >&2; exit 2 ;; esac

big=(--nodes="$nodes" --ntasks-per-node="$gpn" --gpus-per-task=1 --cpus-per-task="$cpg" --exclusive)
one=(--nodes=1 --ntasks=1 --gpus-per-task=1 --cpus-per-task="$cpg")
prev='' started=0 all=()
for s in "${steps[@]}"; do
  [ "$s" = "$from" ] && started=1
  [ "$started" = 1 ] || continue
  case $s in
    pretrain) res=("${big[@]}" --time="${PRETRAIN_TIME:-24:00:00}") ;;
    finetune) res=("${big[@]}" --time="${FINETUNE_TIME:-24:00:00}") ;;
    *) res=("${one[@]}" --time="${SMALL_TIME:-04:00:00}") ;;
  esac
  dep=()
  [ -n "$prev" ] && dep=(--dependency="afterok:$prev")
  args=(--parsable --job-name="$s" --export=ALL "${res[@]}" "${dep[@]}" "${extra[@]}" "$repo/jobs/paper_pipeline.sbatch" "$s")
  if [ "$dry" = 1 ]; then
    echo "sbatch ${args[*]}"
    id="<$s>"
  else
    id=$(sbatch "${args[@]}" | cut -d';' -f1)
    echo "$s: job $id${prev:+ (after $prev)}"
  fi
  prev=$id
  all+=("$id")
done
[ "$dry" = 1 ] || echo "cancel the whole chain with: scancel ${all[*]}"
