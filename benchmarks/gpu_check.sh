#!/usr/bin/env bash
# The GPU check, for one H100/H200 that may reach nothing outside: the GPU
# tests (every op and the whole model against the CPU path, a tiny training
# run on both), then the benchmarks in one run on the same GPU (the measured
# GEMM peak, entprog's model pass at the `small` and `paper` shapes with MFU,
# Ent-Prog's frozen-prefix memory, the same model's step in PyTorch), and a
# short table last. Every step has its own time limit; the whole is planned
# for well under 8 minutes.
#   benchmarks/gpu_check.sh [OUT_DIR]        (default: $OUT, else benchmarks/results/gpu)
# Programs: from .gpu/bundle.tar.xz when present (scripts/gpu_bundle.sh packs
# them with the Debian libraries such a machine lacks), else built here.
# cuBLAS and cuDNN come from the machine's CUDA toolkit or its PyTorch.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
out=${1:-${OUT:-$here/benchmarks/results/gpu}}
mkdir -p "$out"
logf=$out/gpu_check.log
sum=$out/summary.txt
: > "$logf"
: > "$sum"
note() { echo "$*" | tee -a "$sum"; }

rt=/tmp/entprog-gpu
libs=
if [ -f .gpu/bundle.tar.xz ]; then
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
        cmake --build build-gpu -j"$(nproc)" --target test_gpu bench_step gemm_peak >> "$logf" 2>&1 ||
        { note "build failed: see $logf"; exit 1; }
    bin=$here/build-gpu
fi
for name in libcublasLt.so.13 libcudnn.so.9 libnccl.so.2; do
    ldconfig -p | grep -q "$name" && continue
    f=$(find /usr/local /opt /usr/lib -name "$name*" 2>/dev/null | head -1)
    [ -n "$f" ] && libs=$libs:$(dirname "$f")
done
libs=${libs#:}

# run NAME LIMIT_S CMD...: output into the log, the tail on screen, rc and time in the summary
run() {
    local name=$1 limit=$2 t0 rc
    shift 2
    t0=$(date +%s.%N)
    echo "===== $name: $*" >> "$logf"
    timeout "$limit" "$@" > "$out/.step" 2>&1
    rc=$?
    cat "$out/.step" >> "$logf"
    tail -n 45 "$out/.step"
    note "== $name: rc=$rc ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s)"
    return 0
}
lib=(env "LD_LIBRARY_PATH=$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" OMP_NUM_THREADS=8)
be=${GPU_CHECK_BACKEND:-cuda} # cpu: a dry run of this script on a machine without a GPU

note "gpu_check $(date -u +%FT%TZ): $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
run gpu_ops 30 "${lib[@]}" "$bin/test_gpu" ops
run gpu_model 30 "${lib[@]}" ENTPROG_ATTN=fp32 "$bin/test_gpu" model
run gpu_model_tc 30 "${lib[@]}" ENTPROG_ATTN=tc "$bin/test_gpu" model
run gpu_train 30 "${lib[@]}" ENTPROG_ATTN=fp32 "$bin/test_gpu" train
run gpu_train_tc 30 "${lib[@]}" ENTPROG_ATTN=tc "$bin/test_gpu" train
# out-of-bounds and race checks of every kernel the op tests launch (where the machine's runtime allows it)
if command -v compute-sanitizer > /dev/null; then
    run sanitizer_memcheck 90 "${lib[@]}" compute-sanitizer --tool memcheck --error-exitcode 3 "$bin/test_gpu" ops
    run sanitizer_racecheck 60 "${lib[@]}" compute-sanitizer --tool racecheck --error-exitcode 3 "$bin/test_gpu" ops
fi
# the tiny deck trained by `entprog train` (an MPI singleton) on both backends: the curves must agree
run gpu_train_e2e 60 "${lib[@]}" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE \
    tests/gpu_train_e2e.sh "$bin/entprog" "$here/inputs/tiny.ini" /tmp/entprog-gpu-train
run gemm_peak 20 "${lib[@]}" "$bin/gemm_peak"
peak=$(grep -o 'gemm_peak_bf16_tflops=[0-9.]*' "$logf" | head -1 | cut -d= -f2)
peak=${peak:-989}
run bench_small 25 "${lib[@]}" "$bin/bench_step" inputs/small.ini --backend "$be" --batch 32 --steps 5 --warmup 2 --peak "$peak"
run bench_paper_fp32attn 60 "${lib[@]}" ENTPROG_ATTN=fp32 "$bin/bench_step" inputs/paper.ini --backend "$be" --batch 1 --steps 2 --warmup 1 --peak "$peak"
run bench_paper 40 "${lib[@]}" "$bin/bench_step" inputs/paper.ini --backend "$be" --batch 1 --steps 3 --warmup 1 --peak "$peak"
run bench_paper_freeze21 45 "${lib[@]}" "$bin/bench_step" inputs/paper.ini --backend "$be" --batch 1 --steps 2 --warmup 1 \
    --freeze 21 --peak "$peak"
run bench_paper_recompute 45 "${lib[@]}" "$bin/bench_step" inputs/paper.ini --backend "$be" --batch 1 --steps 2 \
    --warmup 1 --peak "$peak" --set train.recompute=1
run bench_paper_banksplit 40 "${lib[@]}" ENTPROG_ATTN_BANK=split "$bin/bench_step" inputs/paper.ini --backend "$be" \
    --batch 1 --steps 3 --warmup 1 --peak "$peak"
run profile_paper 40 "${lib[@]}" ENTPROG_PROFILE=1 "$bin/bench_step" inputs/paper.ini --backend "$be" --batch 1 \
    --steps 1 --warmup 0
run torch_paper 60 python3 benchmarks/torch_step_gpu.py --device cuda --dtype bf16 --deck inputs/paper.ini \
    --steps 3 --warmup 2 --json "$out/torch_paper.json"
run torch_small 30 python3 benchmarks/torch_step_gpu.py --device cuda --dtype bf16 --deck inputs/small.ini --B 32 \
    --steps 5 --warmup 2
rm -f "$out/.step"

# the table: one row per benchmark, from the key=value lines above
{
    echo
    echo "| what | ms per step | TFLOP/s | MFU % | peak MiB | planned MiB |"
    echo "|---|---|---|---|---|---|"
    awk '/^===== /{name=$2; sub(/:$/, "", name)} /ms_per_step=/{ms=tf=mem="";
         for(i=1;i<=NF;i++){split($i,kv,"="); if(kv[1]=="ms_per_step")ms=kv[2]; if(kv[1]=="tflops")tf=kv[2]; if(kv[1]=="mem_mib")mem=kv[2]}
         row[name]=ms" | "tf" | "}
         /^mfu_percent=/{split($1,kv,"="); mfu[name]=kv[2]}
         /mem_mib=/{for(i=1;i<=NF;i++){split($i,kv,"="); if(kv[1]=="mem_mib")m[name]=kv[2]; if(kv[1]=="plan_mib")pl[name]=kv[2]}}
         /^torch_step_ms/{row[name]=$2" | - | "; mfu[name]="-"}
         END{for(n in row) printf "| %s | %s%s | %s | %s |\n", n, row[n], mfu[n], m[n], pl[n]}' "$logf" | sort
    grep -h -o '"peak_mib": [0-9.]*' "$out/torch_paper.json" 2>/dev/null | sed 's/^/torch_paper /'
    grep -h 'gemm_peak_bf16' "$logf" | head -1
} | tee -a "$sum"
