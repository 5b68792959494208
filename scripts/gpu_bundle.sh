#!/usr/bin/env bash
# Prepares .gpu/ for a GPU machine that can reach no package registry (the
# lent H100/H200): the GPU programs of a build folder, and the shared
# libraries they need from this machine's Debian packages (Open MPI with its
# components and PMIx, HDF5, OpenBLAS, libinih, libpng and their own needs),
# minus glibc, the C++ runtime and the CUDA libraries (cuBLAS, cuDNN, NCCL, and
# NVRTC, which cuDNN's run-time compiled attention engines load), which the GPU
# machine has (gpu_check.sh finds them, in its PyPI wheels too). cuDNN's C++
# frontend is header-only: nothing to ship.
#   scripts/gpu_bundle.sh [BUILD_DIR]     (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
dst=$here/.gpu
for b in test_gpu bench_step gemm_peak; do
    [ -x "$build/$b" ] || { echo "gpu_bundle: $build/$b missing (a CUDA build of the project is needed)" >&2; exit 1; }
done
rm -rf "$dst"
mkdir -p "$dst/bin" "$dst/lib" "$dst/root"
cp "$build/test_gpu" "$build/bench_step" "$build/gemm_peak" "$build/entprog" "$dst/bin/"
# Open MPI loads its components (and PMIx its own) from fixed Debian paths, and a
# singleton MPI_Init starts orted: these go under root/, which gpu_check.sh
# copies to the same paths where the GPU machine has nothing there.
for p in /usr/lib/x86_64-linux-gnu/openmpi /usr/lib/x86_64-linux-gnu/pmix2 /usr/share/openmpi /etc/openmpi \
         /usr/bin/orted; do
    [ -e "$p" ] || continue
    mkdir -p "$dst/root$(dirname "$p")"
    cp -a "$p" "$dst/root$p"
done
plugins=$(find "$dst/root" -name '*.so*' -type f 2>/dev/null || true)
ldd "$dst"/bin/* $plugins 2>/dev/null | awk '/=> \//{print $3}' | sort -u |
    grep -vE '/(libc|libm|libdl|librt|libpthread|ld-linux[^/]*|libcuda|libcublas[^/]*|libcudnn[^/]*|libnccl[^/]*|libnvrtc[^/]*|libstdc\+\+|libgcc_s)\.so' |
    while read -r lib; do cp -L "$lib" "$dst/lib/"; done
# compressed: the device tool carries at most 64 MiB with the working tree
tar -C "$dst" -cJf "$here/.gpu.tar.xz" bin lib root
rm -rf "$dst"
mkdir -p "$dst"
mv "$here/.gpu.tar.xz" "$dst/bundle.tar.xz"
grep -qx '/.gpu/' "$here/.git/info/exclude" 2>/dev/null || echo '/.gpu/' >> "$here/.git/info/exclude"
du -sh "$dst"
