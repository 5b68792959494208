#!/usr/bin/env bash
# phases.sh: the paper's three training phases in sequence, each with
# Ent-Prog and its own baseline, each starting from the previous phase's final
# checkpoint (docs/phases.md):
#   base    unconditional image model (model.F = 1, reference and pose always
#           dropped, every tensor trains, from scratch): stands in for the
#           pretrained image DiT the paper starts from; skipped with INIT
#   phase 1 subject-driven image (F = 1, train.p_drop_pose = 1: the pose guider
#           is out, the reference path learns appearance)
#           baseline entprog.method = full, Ent-Prog entprog.method = entprog
#   phase 2 pose-guided image (F = 1, the deck's pose dropout)
#           baseline full, Ent-Prog entprog with entprog.train_inputs = 1 (the
#           pose guider is new in this phase and sits on the input side)
#   phase 3 video (F from the deck, > 1)
#           baseline entprog.method = temporal, Ent-Prog entprog
# Two chains: the Ent-Prog arm of phase k starts from the Ent-Prog arm of
# phase k-1, the baseline from the baseline; both phase-1 arms from the base.
# The handover is the previous final checkpoint's weights exported to
# START = <arm folder>/start.safetensors (weights only: a fresh optimizer, and
# the Ent-Prog arm scores CEI again on the new phase's task).
#
# Resumable: every training run resumes from the newest checkpoint of its
# folder, a finished one is skipped (jobs/common.sh, ep_train), so running the
# script again after an interruption (Ctrl-C, kill, a node failure, Slurm's
# requeue) continues where it stopped. Inside Slurm run it through
# jobs/phases.sbatch (requeue before the time limit).
#
# usage, from the repository root:
#   jobs/phases.sh [DECK]              # DECK default inputs/small.ini
# Environment (all optional; "sec.key=value ..." lists are --set overrides):
#   PIPE_DIR  output folder (default run-phases): base/, p{1,2,3}-{entprog,baseline}/
#   ARMS      "entprog baseline" (default), or one of them
#   INIT      weights (.safetensors) or checkpoint (.h5) to start phase 1
#             from instead of training the base
#   SETS      overrides for every run (e.g. "train.steps=200")
#   BASE_SETS, P1_SETS, P2_SETS, P3_SETS   more overrides for one phase
#   P1_BASELINE, P2_BASELINE, P3_BASELINE, P1_ENTPROG, P2_ENTPROG, P3_ENTPROG
#             the arm's method overrides (defaults above)
#   NTASKS    MPI ranks per run (default: $SLURM_NTASKS, else 1)
#   and those of jobs/common.sh (ENTPROG, LAUNCHER, ...; LAUNCHER=none runs
#   one process without mpirun).
# Writes PIPE_DIR/<run>/{ckpt_*.h5,metrics.csv,start.safetensors} and the data
# set of the deck's data.dir when it is missing.
set -euo pipefail
case ${1:-} in -h|--help) sed -n '2,/^set -euo/{/^#/p}' "$0"; exit 0 ;; esac
export ENTPROG_REPO=${ENTPROG_REPO:-$(cd "$(dirname "$0")/.." && pwd)}
source "$ENTPROG_REPO/jobs/common.sh"
ep_trap_usr1

deck=${1:-${DECK:-inputs/small.ini}}
pipe=${PIPE_DIR:-run-phases}
arms=${ARMS:-entprog baseline}
ntasks=${NTASKS:-${SLURM_NTASKS:-1}}
[ -f "$deck" ] || ep_fail "deck '$deck' not found (working folder $PWD)"
[ -n "$arms" ] || ep_fail "ARMS is empty (expected 'entprog', 'baseline' or both)"
for a in $arms; do
  case $a in entprog|baseline) ;; *) ep_fail "ARMS item '$a' (expected entprog or baseline)" ;; esac
done
[ -z "${INIT:-}" ] || [ -f "$INIT" ] || ep_fail "INIT '$INIT' not found"

# What makes each phase that phase, and what each arm trains in it (docs/phases.md).
base_sets="model.F=1 train.p_drop_ref=1 train.p_drop_pose=1 entprog.method=full"
phase_sets=([1]="model.F=1 train.p_drop_pose=1" [2]="model.F=1" [3]="")
user_sets=([1]="${P1_SETS:-}" [2]="${P2_SETS:-}" [3]="${P3_SETS:-}")
baseline_sets=([1]="${P1_BASELINE:-entprog.method=full}" [2]="${P2_BASELINE:-entprog.method=full}"
               [3]="${P3_BASELINE:-entprog.method=temporal}")
entprog_sets=([1]="${P1_ENTPROG:-entprog.method=entprog}" [2]="${P2_ENTPROG:-entprog.method=entprog entprog.train_inputs=1}"
              [3]="${P3_ENTPROG:-entprog.method=entprog}")

# final_ckpt DIR: sets FINAL to DIR's newest checkpoint, which must be at the
# run's last step (train.steps of EXTRA_SETS, else of the deck): a run stopped
# by a signal exits 0 with an earlier one.
final_ckpt() {
  local step steps
  FINAL=$(ep_newest_ckpt "$1")
  [ -n "$FINAL" ] || ep_fail "no checkpoint in $1"
  steps=$(ep_deck_get "$deck" train steps)
  step=$(ep_ckpt_step "$FINAL")
  if [ -n "$step" ] && [ -n "$steps" ] && [ "$step" -lt "$steps" ]; then
    ep_fail "$FINAL is at step $step of $steps: the run stopped early; run jobs/phases.sh again to resume it"
  fi
}

# handover FROM DIR: sets START to the weights DIR's run starts from: FROM
# itself when it is a weights file, else FROM's weights exported once to
# DIR/start.safetensors (export writes a .tmp and renames it). A global, not
# $(handover): a subshell would run the export without the USR1 trap.
handover() {
  local from=$1 dir=$2
  START=$from
  case $from in *.safetensors) return ;; esac
  START=$dir/start.safetensors
  mkdir -p "$dir"
  if [ -f "$START" ]; then
    # a previous phase redone after this one began would leave this phase on old weights
    if [ "$START" -ot "$from" ]; then
      ep_fail "$START is older than $from (that phase ran again after this one began): remove $dir and the later phases' folders to redo them"
    fi
    return
  fi
  ep_cmd 1 "$ENTPROG" export --ckpt "$from" --out "$START"
  ep_run "${EP_CMD[@]}"
}

ep_header
ep_log "phases: deck $deck, folder $pipe, arms '$arms', SETS '${SETS:-}'"
mkdir -p "$pipe"
EXTRA_SETS=${SETS:-}
ep_datagen "$deck" "$ntasks"

if [ -n "${INIT:-}" ]; then
  start0=$INIT
  ep_log "phase 1 starts from INIT $INIT (no base run)"
else
  EXTRA_SETS="${SETS:-} $base_sets ${BASE_SETS:-}"
  ep_log "base: unconditional image model into $pipe/base"
  ep_train "$deck" "$pipe/base" "$ntasks"
  final_ckpt "$pipe/base"
  start0=$FINAL
fi

declare -A prev
for a in $arms; do prev[$a]=$start0; done
for k in 1 2 3; do
  for a in $arms; do
    dir=$pipe/p$k-$a
    if [ "$a" = entprog ]; then method=${entprog_sets[$k]}; else method=${baseline_sets[$k]}; fi
    # the phase's keys override SETS (model.F there is phase 3's); P<k>_SETS and the method override both
    sets="${SETS:-} ${phase_sets[$k]} ${user_sets[$k]} $method"
    if [ "$k" = 3 ]; then
      EXTRA_SETS=$sets
      f=$(ep_deck_get "$deck" model F)
      [ "${f:-4}" -gt 1 ] || ep_fail "phase 3 trains video: model.F = ${f:-4} must be > 1 (deck $deck, SETS, P3_SETS)"
    fi
    handover "${prev[$a]}" "$dir"
    EXTRA_SETS="$sets train.init=$START"
    ep_log "phase $k, $a arm ($method): from $START into $dir"
    ep_train "$deck" "$dir" "$ntasks"
    final_ckpt "$dir"
    prev[$a]=$FINAL
  done
done
for a in $arms; do ep_log "phases done: $a arm's final checkpoint ${prev[$a]}"; done
