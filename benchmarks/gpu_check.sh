#!/usr/bin/env bash
# The GPU check, for one H100/H200 that may reach nothing outside, in one run
# of about 5-7 minutes: what the machine has (GPU, driver, cuDNN, NVRTC,
# PyTorch), the GPU tests (every op against the CPU; cuDNN's fused attention
# and the temporal warp kernel against the CPU and the fp32 kernels at small
# and `paper` shapes, with a dropped reference, rerun bitwise; the whole model
# and a training curve on the new path), then the `paper` step on the old
# (tensor-core) and the new (cuDNN) attention, their per-op profiles, the
# step and its profile with the GEMMs on bf16 operands (ENTPROG_GEMM=bf16), an
# Ent-Prog stage training the top-7 blocks of a real CEI ranking, the rates
# PyTorch reaches at the model's GEMM and attention shapes, PyTorch's own
# step; compute-sanitizer and the `entprog train` comparison last. Every step
# has its own time limit and is skipped once the whole run has used its
# budget (GPU_CHECK_BUDGET_S, default 360 s); logs go to OUT_DIR, a short
# table is printed last.
#   benchmarks/gpu_check.sh [--dry-run] [OUT_DIR]   (default: $OUT, else benchmarks/results/gpu)
# --dry-run (or GPU_CHECK_DRY=1): prints the plan, runs nothing.
# Programs: from .gpu/bundle.tar.xz when present (scripts/gpu_bundle.sh packs
# them with the Debian libraries such a machine lacks), else built here.
# cuBLAS, cuDNN (with its engine libraries) and NVRTC come from the machine's
# CUDA toolkit or its PyTorch wheels.
set -u
dry=${GPU_CHECK_DRY:-0}
if [ "${1:-}" = --dry-run ]; then
    dry=1
    shift
fi
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
out=${1:-${OUT:-$here/benchmarks/results/gpu}}
mkdir -p "$out"
logf=$out/gpu_check.log
sum=$out/summary.txt
: > "$logf"
: > "$sum"
note() { echo "$*" | tee -a "$sum"; }
budget=${GPU_CHECK_BUDGET_S:-360}
t_start=$(date +%s)

rt=/tmp/entprog-gpu
libs=
if [ "$dry" = 1 ]; then
    bin=$here/build-gpu
    note "dry run: the plan only (budget $budget s; steps past it are skipped)"
elif [ -f .gpu/bundle.tar.xz ]; then
    rm -rf "$rt" && mkdir -p "$rt" && tar -C "$rt" -xJf .gpu/bundle.tar.xz
    bin=$rt/bin
    libs=$rt/lib
    # Open MPI's and PMIx's component trees at their Debian paths, where this machine has none
    for p in usr/lib/x86_64-linux-gnu/openmpi usr/lib/x86_64-linux-gnu/pmix2 usr/share/openmpi etc/openmpi usr/bin/orted; do
        [ -e "$rt/root/$p" ] || continue
        if [ -e "/$p" ]; then
            echo "kept this machine's /$p" >> "$logf"
        else
            mkdir -p "$(dirname "/$p")" 2>/dev/null && cp -a "$rt/root/$p" "/$p" 2>/dev/null ||
                echo "could not place /$p (not root?): entprog train may not start" >> "$logf"
        fi
    done
else
    cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release >> "$logf" 2>&1 &&
        cmake --build build-gpu -j"$(nproc)" --target test_gpu bench_step gemm_peak entprog >> "$logf" 2>&1 ||
        { note "build failed: see $logf"; exit 1; }
    bin=$here/build-gpu
fi
# Libraries the loader does not know: the toolkit's, else PyTorch's wheels (nvidia/*/lib).
# cuDNN loads its engine libraries and NVRTC (run-time compiled attention engines) itself.
if [ "$dry" != 1 ]; then
    wheel_dirs=$(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, d, "lib") for p in nvidia.__path__ for d in os.listdir(p)))' 2>/dev/null)
    for name in libcublasLt.so.13 libcudnn.so.9 libcudnn_engines_runtime_compiled.so.9 libcudnn_engines_precompiled.so.9 \
                libnccl.so.2 libnvrtc.so.13; do
        ldconfig -p | grep -q "$name" && continue
        f=$(find /usr/local /opt /usr/lib $wheel_dirs -name "$name*" 2>/dev/null | head -1)
        if [ -n "$f" ]; then
            libs=$libs:$(dirname "$f")
        else
            echo "not found: $name" >> "$logf"
        fi
    done
    libs=${libs#:}
fi

# run NAME LIMIT_S CMD...: output into the log, the tail on screen, rc and time in the summary
run() {
    local name=$1 limit=$2 t0 rc used
    shift 2
    used=$(($(date +%s) - t_start))
    if [ "$dry" = 1 ]; then
        note "plan: $name (limit ${limit} s): $*"
        return 0
    fi
    if [ "$used" -ge "$budget" ]; then
        note "== $name: skipped (budget: $used of $budget s used)"
        return 0
    fi
    t0=$(date +%s.%N)
    echo "===== $name: $*" >> "$logf"
    timeout "$limit" "$@" > "$out/.step" 2>&1
    rc=$?
    cat "$out/.step" >> "$logf"
    tail -n 40 "$out/.step"
    note "== $name: rc=$rc ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s)$([ $rc = 124 ] && echo ' TIMED OUT')"
    return 0
}
lib=(env "LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OMP_NUM_THREADS=8)
be=${GPU_CHECK_BACKEND:-cuda}
paper=(inputs/paper.ini --backend "$be" --batch 1)
top7=18,20,21,23,25,26,27 # the top 7 of a real CEI ranking (benchmarks/results/entprog_plan.md)

if [ "$dry" != 1 ]; then
    note "gpu_check $(date -u +%FT%TZ): $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
fi
# 1. what this machine has
run machine 30 "${lib[@]}" bash -c 'nvidia-smi; echo; ldconfig -p | grep -E "libcudnn|libnvrtc|libcublasLt|libnccl";
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH";
    python3 -c "import torch; print(\"torch\", torch.__version__, \"cuda\", torch.version.cuda, \"torch_cudnn\", torch.backends.cudnn.version())";
    command -v compute-sanitizer && compute-sanitizer --version | tail -1; true'
# 2. correctness: ops (fp32 and tensor-core kernels), the new attention, the model and a curve on it
run gpu_ops 40 "${lib[@]}" "$bin/test_gpu" ops
run gpu_attn 120 "${lib[@]}" "$bin/test_gpu" attn
run gpu_model_cudnn 40 "${lib[@]}" ENTPROG_ATTN=cudnn "$bin/test_gpu" model
run gpu_train_cudnn 40 "${lib[@]}" ENTPROG_ATTN=cudnn "$bin/test_gpu" train
# 3. speed: the peak, then the `paper` step (forward, backward, AdamW) on the old and the new attention
run gemm_peak 20 "${lib[@]}" "$bin/gemm_peak"
peak=$(grep -o 'gemm_peak_bf16_tflops=[0-9.]*' "$logf" | head -1 | cut -d= -f2)
peak=${peak:-989}
run bench_paper_tc 50 "${lib[@]}" ENTPROG_ATTN=tc "$bin/bench_step" "${paper[@]}" --steps 3 --warmup 1 --peak "$peak"
run bench_paper_cudnn 50 "${lib[@]}" ENTPROG_ATTN=cudnn "$bin/bench_step" "${paper[@]}" --steps 3 --warmup 1 --peak "$peak"
# the GEMMs on bf16 operands (ENTPROG_GEMM=bf16, not yet run on a GPU), cuDNN attention: the step,
# then its per-op profile (a step's first ms_per_step is the one in the table)
run bench_paper_bf16gemm_cudnn 30 "${lib[@]}" ENTPROG_GEMM=bf16 ENTPROG_ATTN=cudnn bash -c \
    '"$0" "$@" --steps 2 --warmup 1 && ENTPROG_PROFILE=1 "$0" "$@" --steps 1 --warmup 0' \
    "$bin/bench_step" "${paper[@]}" --peak "$peak"
# the same with the 3 blocks before the last recomputing into its activations (train.recompute_blocks):
# 3.3 GiB less in the plan, for PyTorch's peak (torch_paper below)
run bench_paper_bf16gemm_cudnn_rc3 25 "${lib[@]}" ENTPROG_GEMM=bf16 ENTPROG_ATTN=cudnn "$bin/bench_step" "${paper[@]}" \
    --steps 2 --warmup 1 --set train.recompute=1 --set train.recompute_blocks=3 --peak "$peak"
run bench_paper_top7_cudnn 40 "${lib[@]}" ENTPROG_ATTN=cudnn "$bin/bench_step" "${paper[@]}" --steps 3 --warmup 1 \
    --blocks "$top7" --peak "$peak"
# 4. what PyTorch reaches on this card: GEMM and SDPA rates at the model's shapes, its whole step
run torch_rates 60 python3 benchmarks/torch_rates.py --json "$out/torch_rates.json"
run torch_paper 60 python3 benchmarks/torch_step_gpu.py --device cuda --dtype bf16 --deck inputs/paper.ini \
    --steps 3 --warmup 2 --json "$out/torch_paper.json"
# 5. where the time goes, per op (one step, no warm-up: the cuDNN graph builds, printed with
#    their times as "built in ... ms", sit inside the first attention calls)
run profile_paper_tc 45 "${lib[@]}" ENTPROG_PROFILE=1 ENTPROG_ATTN=tc "$bin/bench_step" "${paper[@]}" --steps 1 --warmup 0
run profile_paper_cudnn 45 "${lib[@]}" ENTPROG_PROFILE=1 ENTPROG_ATTN=cudnn "$bin/bench_step" "${paper[@]}" --steps 1 \
    --warmup 0
# 6. the rest: the reference kernels' model test, memory checks of the new kernels, entprog train on both backends
run gpu_model_fp32 30 "${lib[@]}" ENTPROG_ATTN=fp32 "$bin/test_gpu" model
if [ "$dry" = 1 ] || command -v compute-sanitizer > /dev/null; then
    run sanitizer_memcheck_attn 90 "${lib[@]}" compute-sanitizer --tool memcheck --error-exitcode 3 "$bin/test_gpu" attn-small
    run sanitizer_racecheck_attn 60 "${lib[@]}" compute-sanitizer --tool racecheck --error-exitcode 3 "$bin/test_gpu" attn-small
fi
if [ "$dry" = 1 ] || [ -x "$bin/entprog" ]; then
    run gpu_train_e2e 60 "${lib[@]}" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE \
        tests/gpu_train_e2e.sh "$bin/entprog" "$here/inputs/tiny.ini" /tmp/entprog-gpu-train
else
    note "== gpu_train_e2e: skipped (no entprog in the bundle: scripts/gpu_bundle.sh left it out for size)"
fi
rm -f "$out/.step"
[ "$dry" = 1 ] && exit 0

# the table: one row per benchmark, from the key=value lines above; then the rates and the attention facts
{
    echo
    echo "| what | ms per step | TFLOP/s | MFU % | peak MiB | planned MiB |"
    echo "|---|---|---|---|---|---|"
    awk '/^===== /{name=$2; sub(/:$/, "", name)} /ms_per_step=/ && !(name in row){ms=tf=mem="";
         for(i=1;i<=NF;i++){split($i,kv,"="); if(kv[1]=="ms_per_step")ms=kv[2]; if(kv[1]=="tflops")tf=kv[2]; if(kv[1]=="mem_mib")mem=kv[2]}
         row[name]=ms" | "tf" | "}
         /^mfu_percent=/ && !(name in mfu){split($1,kv,"="); mfu[name]=kv[2]}
         /mem_mib=/ && !(name in m){for(i=1;i<=NF;i++){split($i,kv,"="); if(kv[1]=="mem_mib")m[name]=kv[2]; if(kv[1]=="plan_mib")pl[name]=kv[2]}}
         /^torch_step_ms/{row[name]=$2" | - | "; mfu[name]="-"}
         END{for(n in row) printf "| %s | %s%s | %s | %s |\n", n, row[n], mfu[n], m[n], pl[n]}' "$logf" | sort
    grep -h -o '"peak_mib": [0-9.]*' "$out/torch_paper.json" 2>/dev/null | sed 's/^/torch_paper /'
    grep -h 'gemm_peak_bf16' "$logf" | head -1
    grep -h '^gemm_block_bf16_tflops\|^sdpa=' "$logf"
    echo "attention per op (ms, profile of one step incl. first-call graph builds):"
    awk '/^===== /{name=$2} /^\| attention/{print "  " name " " $0}' "$logf"
    grep -h -m1 '^attention: cuDNN [0-9]' "$logf"
    grep -h 'attention: cuDNN SDPA .* graph' "$logf" | sort -u | head -8
    grep -h 'attention: cuDNN refused\|no cuDNN frontend' "$logf" | sort -u | head -8
    grep -h '^gemm: ' "$logf" | sort -u | head -8
    grep -h 'failure(s)$' "$logf" | sort | uniq -c
} | tee -a "$sum"
