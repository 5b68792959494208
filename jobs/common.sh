# jobs/common.sh: shell functions shared by the sbatch scripts of jobs/.
# Not a job: the scripts source it as "$ENTPROG_REPO/jobs/common.sh" (Slurm runs
# a copy of the batch script from its spool folder, so the script cannot find
# its own folder; ENTPROG_REPO defaults to the folder sbatch was run from).
#
# Settings every script reads from the environment (sbatch passes the
# submitting shell's environment to the job):
#   ENTPROG_REPO  repository root (default: $SLURM_SUBMIT_DIR, else $PWD)
#   ENTPROG       the entprog binary (default: $ENTPROG_REPO/build/entprog)
#   EXTRA_SETS    deck overrides "sec.key=value sec.key=value ..." given to
#                 `entprog train` as --set (values without spaces)
#   LAUNCHER      srun (default inside Slurm) | mpirun | none (single process)
#   EP_SRUN_MPI   srun's --mpi plugin (default pmix: the one Debian's Open MPI
#                 works with)
#   EP_SRUN_ARGS, EP_MPIRUN_ARGS  more options for srun / mpirun
#   FORWARD_USR1  1 (default): on the USR1 warning, pass USR1 on to the training
#                 ranks, which finish their step, write a checkpoint there and
#                 exit, and requeue after them (no step is lost); 0: requeue at
#                 once (the requeued run repeats the steps since the last
#                 periodic checkpoint)

ENTPROG_REPO=${ENTPROG_REPO:-${SLURM_SUBMIT_DIR:-$PWD}}
ENTPROG=${ENTPROG:-$ENTPROG_REPO/build/entprog}
EXTRA_SETS=${EXTRA_SETS:-}
FORWARD_USR1=${FORWARD_USR1:-1}
EP_SRUN_MPI=${EP_SRUN_MPI:-pmix}
if [ -z "${LAUNCHER:-}" ]; then
  if [ -n "${SLURM_JOB_ID:-}" ]; then LAUNCHER=srun; else LAUNCHER=mpirun; fi
fi
export HDF5_USE_FILE_LOCKING=${HDF5_USE_FILE_LOCKING:-FALSE}
# threads per rank: --cpus-per-task inside Slurm
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-${OMP_NUM_THREADS:-1}}
export OPENBLAS_NUM_THREADS=1 # entprog runs OpenBLAS single-threaded inside its OpenMP pieces

ep_log() { printf '[%s] %s: %s\n' "$(date -u +%FT%TZ)" "${SLURM_JOB_ID:-local}" "$*"; }
ep_fail() { printf '[%s] %s: error: %s\n' "$(date -u +%FT%TZ)" "${SLURM_JOB_ID:-local}" "$*" >&2; exit 1; }

# One line that says what this run of the batch script is (a requeued job runs
# it again from the top, with SLURM_RESTART_COUNT counting the restarts).
ep_header() {
  ep_log "job ${SLURM_JOB_NAME:-(no Slurm)} start (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-$(hostname)}:" \
    "${SLURM_NNODES:-1} node(s), ${SLURM_NTASKS:-1} task(s), ${SLURM_CPUS_PER_TASK:-1} cpu(s)/task," \
    "OMP_NUM_THREADS=$OMP_NUM_THREADS, launcher $LAUNCHER"
  [ -x "$ENTPROG" ] || ep_fail "entprog binary '$ENTPROG' not found (build with scripts/build.sh, or set ENTPROG / ENTPROG_REPO)"
}

# ep_deck_get DECK SECTION KEY: the value the run will see: the last
# `sec.key=` of EXTRA_SETS, else the deck's (inline ; or # comments removed).
ep_deck_get() {
  local deck=$1 sec=$2 key=$3 kv val='' found=0
  for kv in $EXTRA_SETS; do
    if [ "${kv%%=*}" = "$sec.$key" ]; then val=${kv#*=}; found=1; fi
  done
  if [ "$found" = 1 ]; then printf '%s\n' "$val"; return; fi
  awk -v sec="[$sec]" -v key="$key" '
    { line = $0; sub(/[;#].*/, "", line) }
    line ~ /^[ \t]*\[/ { gsub(/[ \t]/, "", line); in_sec = (line == sec); next }
    in_sec && index(line, "=") {
      k = substr(line, 1, index(line, "=") - 1); v = substr(line, index(line, "=") + 1)
      gsub(/^[ \t]+|[ \t]+$/, "", k); gsub(/^[ \t]+|[ \t]+$/, "", v)
      if (k == key) val = v
    }
    END { print val }' "$deck"
}

# ep_sets: EXTRA_SETS as `--set k=v` arguments, in the array EP_SETS.
ep_sets() {
  EP_SETS=()
  local kv
  for kv in $EXTRA_SETS; do
    case $kv in *.*=*) EP_SETS+=(--set "$kv") ;; *) ep_fail "EXTRA_SETS item '$kv' is not sec.key=value" ;; esac
  done
}

# ep_newest_ckpt DIR: the checkpoint of DIR with the highest step (names are
# ckpt_%08d.h5, so the last in sorted order); nothing when there is none.
# A ckpt_*.h5.tmp left by a run killed while saving is ignored.
ep_newest_ckpt() {
  local f newest=
  for f in "$1"/ckpt_*.h5; do [ -f "$f" ] && newest=$f; done
  printf '%s' "$newest"
}

# ep_ckpt_step CKPT: the /state step attribute of a checkpoint (empty without h5dump).
ep_ckpt_step() {
  command -v h5dump >/dev/null 2>&1 || return 0
  h5dump -a /state/step "$1" 2>/dev/null | awk '/\(0\):/ {print $2; exit}' || true
}

# ep_cmd NTASKS CMD...: sets the array EP_CMD to the command line that runs
# CMD on NTASKS ranks of the allocation (srun or mpirun, or CMD itself).
ep_cmd() {
  local n=$1
  shift
  case $LAUNCHER in
    srun)
      # srun of Slurm 22.05 does not take --cpus-per-task from the allocation: pass it
      # shellcheck disable=SC2206 # EP_SRUN_ARGS is a word list by design
      EP_CMD=(srun --mpi="$EP_SRUN_MPI" --ntasks="$n" --cpus-per-task="${SLURM_CPUS_PER_TASK:-1}"
              --kill-on-bad-exit=1 ${EP_SRUN_ARGS:-} "$@") ;;
    mpirun)
      EP_CMD=(mpirun -np "$n" --bind-to none -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS -x HDF5_USE_FILE_LOCKING)
      [ "$(id -u)" -eq 0 ] && EP_CMD+=(--allow-run-as-root)
      # shellcheck disable=SC2206 # EP_MPIRUN_ARGS is a word list by design
      EP_CMD+=(${EP_MPIRUN_ARGS:-} "$@") ;;
    none)
      [ "$n" -eq 1 ] || ep_fail "LAUNCHER=none runs one process, not $n"
      EP_CMD=("$@") ;;
    *) ep_fail "LAUNCHER='$LAUNCHER' (expected srun, mpirun or none)" ;;
  esac
}

# ---- requeue on the time-limit warning ----
# With `#SBATCH --signal=B:USR1@SECONDS` Slurm sends USR1 to this batch shell
# SECONDS before the time limit. The trap asks Slurm to requeue the job
# (`scontrol requeue`: the job goes back to pending with the same id and runs
# the script again from the top, which resumes from the newest checkpoint).
# Bash runs a trap only between commands, and a plain `wait` returns as soon
# as a trapped signal arrives, so ep_run starts the command in the background
# and waits for it in a loop.
EP_GOT_USR1=0
EP_CHILD=
ep_on_usr1() {
  EP_GOT_USR1=1
  ep_log "USR1: the time limit is near; requeueing job ${SLURM_JOB_ID:-?} to resume from the newest checkpoint"
  if [ "$FORWARD_USR1" = 1 ] && [ -n "$EP_CHILD" ]; then
    kill -USR1 "$EP_CHILD" 2>/dev/null || true # srun passes USR1 on to every rank
    EP_REQUEUE_AFTER=1
    return
  fi
  if [ -n "${SLURM_JOB_ID:-}" ]; then
    scontrol requeue "$SLURM_JOB_ID" || ep_log "scontrol requeue failed: the job ends at its time limit"
  fi
}
ep_trap_usr1() { trap ep_on_usr1 USR1; }

# ep_run CMD...: runs CMD in the background and waits for it, surviving the
# USR1 trap; returns CMD's exit status.
ep_run() {
  local rc=0 w again=0 errexit
  ep_log "run: $*"
  "$@" &
  EP_CHILD=$!
  while :; do
    EP_GOT_USR1=0
    # errexit off around the wait: bash 5.2 with `set -e` exits with the
    # interrupted wait's status (128+10) once the USR1 trap returns, even
    # under `||` (seen on Debian 12); the status is handled below instead
    case $- in *e*) errexit=1 ;; *) errexit=0 ;; esac
    set +e
    wait "$EP_CHILD"
    w=$?
    [ "$errexit" = 1 ] && set -e
    # 127 on a second wait: the status was collected by the first one
    [ "$again" = 1 ] && [ "$w" -eq 127 ] && break
    rc=$w
    # woken by the trap (status > 128) rather than by the command's end: wait again
    if [ "$EP_GOT_USR1" = 1 ] && [ "$w" -gt 128 ]; then again=1; continue; fi
    break
  done
  EP_CHILD=
  if [ "${EP_REQUEUE_AFTER:-0}" = 1 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
    ep_log "the ranks stopped after USR1 (status $rc); requeueing"
    scontrol requeue "$SLURM_JOB_ID"
    sleep 300 # the requeue ends this script; run nothing after it
  fi
  return "$rc"
}

# ep_train DECK OUT_DIR NTASKS: `entprog train` over NTASKS ranks into OUT_DIR
# with EXTRA_SETS, resuming from OUT_DIR's newest checkpoint when there is one
# (a requeued or resubmitted job); does nothing when that checkpoint is
# already at the deck's last step.
ep_train() {
  local deck=$1 out_dir=$2 n=$3 latest step steps
  ep_sets
  latest=$(ep_newest_ckpt "$out_dir")
  local resume=()
  if [ -n "$latest" ]; then
    step=$(ep_ckpt_step "$latest")
    steps=$(ep_deck_get "$deck" train steps)
    if [ -n "$step" ] && [ -n "$steps" ] && [ "$step" -ge "$steps" ]; then
      ep_log "train: $latest is at step $step of $steps: nothing left to train"
      return 0
    fi
    ep_log "train: resuming from $latest (step ${step:-?})"
    resume=(--resume "$latest")
  else
    ep_log "train: starting $deck into $out_dir"
  fi
  ep_cmd "$n" "$ENTPROG" train "$deck" --set train.out_dir="$out_dir" "${EP_SETS[@]}" "${resume[@]}"
  ep_run "${EP_CMD[@]}"
}

# ep_datagen DECK NTASKS: writes the deck's dataset when data.dir lacks train.h5
# (entprog datagen reads only the deck: EXTRA_SETS cannot change [data] here).
ep_datagen() {
  local deck=$1 n=$2 dir kv
  dir=$(ep_deck_get "$deck" data dir)
  for kv in $EXTRA_SETS; do
    case $kv in data.*) ep_fail "EXTRA_SETS changes $kv, but entprog datagen reads only the deck: edit a copy of the deck instead" ;; esac
  done
  if [ -f "${dir:-data}/train.h5" ]; then
    ep_log "datagen: ${dir:-data}/train.h5 exists"
    return 0
  fi
  ep_log "datagen: writing ${dir:-data}/ on $n rank(s) (rank 0 writes)"
  ep_cmd "$n" "$ENTPROG" datagen "$deck"
  ep_run "${EP_CMD[@]}"
}
