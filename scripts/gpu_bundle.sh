#!/usr/bin/env bash
# Prepares .gpu/ for a GPU machine that can reach no package registry (the
# lent H100/H200): the GPU programs of a build folder, and the shared
# libraries they need from this machine's Debian packages (Open MPI, HDF5,
# OpenBLAS, libinih, libpng and their own needs), minus glibc, the C++
# runtime and the CUDA libraries (cuBLAS, cuDNN), which the GPU machine has.
#   scripts/gpu_bundle.sh [BUILD_DIR]     (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
dst=$here/.gpu
for b in test_gpu bench_step gemm_peak; do
    [ -x "$build/$b" ] || { echo "gpu_bundle: $build/$b missing (a CUDA build of the project is needed)" >&2; exit 1; }
done
rm -rf "$dst"
mkdir -p "$dst/bin" "$dst/lib"
cp "$build/test_gpu" "$build/bench_step" "$build/gemm_peak" "$build/entprog" "$dst/bin/"
ldd "$dst"/bin/* | awk '/=> \//{print $3}' | sort -u |
    grep -vE '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*|libcuda|libcublas[^/]*|libcudnn[^/]*|libstdc\+\+|libgcc_s)\.so' |
    while read -r lib; do cp -L "$lib" "$dst/lib/"; done
# compressed: the device tool carries at most 64 MiB with the working tree
tar -C "$dst" -cJf "$here/.gpu.tar.xz" bin lib
rm -rf "$dst"
mkdir -p "$dst"
mv "$here/.gpu.tar.xz" "$dst/bundle.tar.xz"
grep -qx '/.gpu/' "$here/.git/info/exclude" 2>/dev/null || echo '/.gpu/' >> "$here/.git/info/exclude"
du -sh "$dst"
