#!/usr/bin/env bash
# The NCCL gradient exchange on one GPU (issue 10, item 5): `entprog train` on
# the tiny deck, backend cuda, under `mpirun -n 1`, three ways:
#   mpi   ENTPROG_COMM=mpi: one rank, no exchange (the reference)
#   nccl  ENTPROG_COMM=nccl: one ncclReduceScatter + one ncclAllGather per step,
#         in place (one rank's slice is the whole buffer)
#   pad   the same through the padded buffer (ENTPROG_NCCL_PAD=1: the copies
#         that unequal slices take on several ranks)
# (mpi twice: the backend must repeat itself), then an Ent-Prog trials search
# from the mpi run's checkpoint, over MPI and over NCCL (the search switches
# communicators and must hand the run's back). On
# one rank NCCL's mean and all-gather are copies, so every loss, gradient norm
# and learning rate and the final checkpoint's checksum must be the same bits.
# Prints PASS or FAIL with the reason, and exits 0 or 1. No GPU: FAIL, saying so.
#   benchmarks/nccl_smoke.sh [ENTPROG] [WORKDIR]   (default: build/entprog, /tmp/entprog-nccl-smoke)
# NCCL_SMOKE_BACKEND=cpu: a dry run of the script's plumbing without a GPU
# (every run over MPI on the CPU; says DRY RUN instead of PASS).
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
entprog=$(realpath -m "${1:-$here/build/entprog}")
work=${2:-/tmp/entprog-nccl-smoke}
deck=$here/inputs/tiny.ini
be=${NCCL_SMOKE_BACKEND:-cuda}
fail() {
    echo "FAIL: $*"
    exit 1
}
[ -x "$entprog" ] || fail "no program at $entprog (build it first, with CUDA and NCCL)"
# under mpirun -n 1 where there is one, else as an MPI singleton (the same one rank)
launch=(mpirun -n 1 --oversubscribe)
command -v mpirun > /dev/null || { launch=(); echo "note: no mpirun here: each run is an MPI singleton"; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE OMP_NUM_THREADS=4
rm -rf "$work" && mkdir -p "$work" && cd "$work" || fail "cannot make $work"
"$entprog" datagen "$deck" > datagen.log 2>&1 || fail "datagen: $(tail -1 datagen.log)"

# train NAME COMM [ENV=VALUE...] -- SETS...: one run into NAME/, its output in NAME.log
train() {
    local name=$1 comm=$2
    shift 2
    local envs=()
    while [ "$1" != -- ]; do envs+=("$1"); shift; done
    shift
    [ "$be" = cpu ] && comm=mpi
    env ENTPROG_COMM="$comm" "${envs[@]}" timeout 300 "${launch[@]}" "$entprog" train "$deck" \
        --set train.backend="$be" --set train.out_dir="$name" "$@" > "$name.log" 2>&1
    local rc=$?
    if [ $rc -ne 0 ]; then
        local why
        why=$(grep -m1 -o 'backend cuda: .*\|error: .*\|NCCL: .*failed.*' "$name.log")
        fail "run $name (ENTPROG_COMM=$comm ${envs[*]}) exited $rc: ${why:-see $work/$name.log}"
    fi
}

base=(--set train.steps=8 --set train.val_every=4 --set train.ckpt_every=4 --set train.keep_ckpts=0)
train mpi mpi -- "${base[@]}"
train mpi_again mpi -- "${base[@]}" # the backend itself must repeat, or no comparison below means anything
train nccl nccl -- "${base[@]}"
train pad nccl ENTPROG_NCCL_PAD=1 -- "${base[@]}"
search=(--set train.init=mpi/ckpt_00000008.h5 --set train.steps=16 --set entprog.method=entprog
        --set entprog.search=trials --set entprog.stages=2 --set entprog.search_steps=2 --set entprog.timing=cost
        --set entprog.cei_n=8 --set entprog.probe_batches=2 --set train.val_every=0 --set train.ckpt_every=0)
train search_mpi mpi -- "${search[@]}"
train search_nccl nccl -- "${search[@]}"
for name in nccl pad search_nccl; do
    [ "$be" = cpu ] && break
    grep -q '^NCCL [0-9]' "$name.log" || fail "run $name did not open an NCCL communicator (a build without NCCL?)"
done
grep -q 'search:' search_nccl.log || fail "run search_nccl ran no trials search"

# the columns that do not depend on the clock, and the checksum of every final checkpoint
python3 - "$work" <<'EOF' || exit 1
import csv, glob, re, subprocess, sys
work = sys.argv[1]
cols = ("kind", "step", "loss", "grad_norm", "lr", "stage", "m", "cost")
def rows(run):
    with open(f"{work}/{run}/metrics.csv") as f:
        return [tuple(r.get(c, "") for c in cols) for r in csv.DictReader(f)]
def checksum(run):
    path = sorted(glob.glob(f"{work}/{run}/ckpt_*.h5"))[-1]
    try:
        import h5py
        with h5py.File(path, "r") as f:
            return int(f.attrs["checksum"].ravel()[0])
    except ImportError:
        p = subprocess.run(["h5dump", "-a", "/checksum", path], capture_output=True, text=True)
        m = re.search(r"\(0\):\s*(\d+)", p.stdout) if p.returncode == 0 else None
        return int(m.group(1)) if m else None
bad = []
for ref, run in (("mpi", "mpi_again"), ("mpi", "nccl"), ("mpi", "pad"), ("search_mpi", "search_nccl")):
    a, b = rows(ref), rows(run)
    if len(a) < 5 or a != b:
        first = next((x for x, y in zip(a, b) if x != y), None)
        bad.append(f"{run} != {ref} in metrics.csv ({len(a)} and {len(b)} rows; first difference {first})"
                   + (" (the backend does not repeat itself: not NCCL's doing)" if run == "mpi_again" else ""))
    ca, cb = checksum(ref), checksum(run)
    if ca is None or cb is None:
        print(f"note: {run}: checkpoint checksums not compared (neither h5py nor h5dump here)")
    elif ca != cb:
        bad.append(f"{run} != {ref}: final checkpoint checksum {cb} against {ca}")
    else:
        print(f"{run} = {ref}: {len(a)} metrics rows and the final checkpoint (checksum {ca}) bit for bit")
if bad:
    print("FAIL: " + "; ".join(bad))
    sys.exit(1)
EOF
[ "$be" = cpu ] && { echo "DRY RUN (backend cpu, no NCCL): the script's runs and comparisons work"; exit 0; }
echo "PASS: NCCL on one GPU ($(grep -m1 '^NCCL [0-9]' nccl.log)): in place, padded and across a trials search, the same bits as without it"
