#!/usr/bin/env bash
# `entprog train` on the tiny deck with backend cpu and backend cuda, the same
# seed: the train-loss curves must agree within 5e-2 (bf16 products; see
# docs/gpu.md). Exit 77 (skipped) where the build has no CUDA or there is no GPU.
#   gpu_train_e2e.sh ENTPROG DECK WORKDIR
set -uo pipefail
entprog=$1 deck=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
sets=(--set train.steps=40 --set train.val_every=20 --set train.log_every=20)
"$entprog" datagen "$deck" > /dev/null || exit 1
if ! "$entprog" train "$deck" "${sets[@]}" --set train.out_dir=gpu --set train.backend=cuda > gpu.log 2>&1; then
    if grep -q "backend cuda: \(no usable GPU\|this entprog was built without CUDA\)" gpu.log; then
        echo "SKIP: $(grep -o 'backend cuda: .*' gpu.log | head -1)"
        exit 77
    fi
    cat gpu.log
    exit 1
fi
"$entprog" train "$deck" "${sets[@]}" --set train.out_dir=cpu --set train.backend=cpu > cpu.log 2>&1 || { cat cpu.log; exit 1; }
grep -m1 "^backend" gpu.log
python3 "$here/check_curves.py" cpu/metrics.csv gpu/metrics.csv 5e-2
