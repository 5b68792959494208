#!/usr/bin/env bash
# Prepares .gpu/ for a GPU machine that can reach no package registry (the
# lent H100/H200): the GPU programs of a build folder, and the shared
# libraries they need from this machine's Debian packages (Open MPI with its
# components and PMIx, HDF5, OpenBLAS, libinih, libpng and their own needs),
# minus glibc, the C++ runtime and the CUDA libraries (cuBLAS, cuDNN, NCCL, and
# NVRTC, which cuDNN's run-time compiled attention engines load), which the GPU
# machine has (gpu_check.sh finds them, in its PyPI wheels too). cuDNN's C++
# frontend is header-only: nothing to ship.
# The device tool carries at most 64 MiB: the tracked tree plus the carried
# .gpu/ (.git/info/exclude ignores it, so each `run` names it: carry [".gpu"]).
# entprog needs libav and its codecs (~25 MB compressed): it goes in only
# when the whole still fits, else gpu_check.sh skips its entprog step.
#   scripts/gpu_bundle.sh [BUILD_DIR]     (default: build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
dst=$here/.gpu
limit=$((62 * 1024 * 1024)) # the tool's 64 MiB, less a margin for files added before the run
for b in test_gpu bench_step gemm_peak; do
    [ -x "$build/$b" ] || { echo "gpu_bundle: $build/$b missing (a CUDA build of the project is needed)" >&2; exit 1; }
done
tree=$(cd "$here" && git ls-files -z | du -cb --files0-from=- 2>/dev/null | tail -1 | cut -f1)

# pack PROGRAMS...: .gpu/bundle.tar.xz with them and the libraries they load
pack() {
    rm -rf "$dst"
    mkdir -p "$dst/bin" "$dst/lib" "$dst/root"
    for b in "$@"; do cp "$build/$b" "$dst/bin/"; done
    strip --strip-unneeded "$dst"/bin/* 2>/dev/null || true
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
    tar -C "$dst" -cf - bin lib root | xz -9 -T2 > "$here/.gpu.tar.xz"
    rm -rf "$dst"
    mkdir -p "$dst"
    mv "$here/.gpu.tar.xz" "$dst/bundle.tar.xz"
}

pack test_gpu bench_step gemm_peak entprog
size=$(stat -c %s "$dst/bundle.tar.xz")
if [ $((tree + size)) -gt "$limit" ]; then
    echo "gpu_bundle: with entprog the tree would carry $(((tree + size) >> 20)) MiB, over $((limit >> 20)); packing without it"
    pack test_gpu bench_step gemm_peak
    size=$(stat -c %s "$dst/bundle.tar.xz")
fi
[ $((tree + size)) -le "$limit" ] ||
    { echo "gpu_bundle: the tree and the bundle are $(((tree + size) >> 20)) MiB, over $((limit >> 20)) MiB" >&2; exit 1; }
grep -qx '/.gpu/' "$here/.git/info/exclude" 2>/dev/null || echo '/.gpu/' >> "$here/.git/info/exclude"
echo "gpu_bundle: $dst/bundle.tar.xz, $((size >> 20)) MiB ($(tar -tJf "$dst/bundle.tar.xz" bin | sed -n 's|^bin/||p' | tr '\n' ' ')); with the tracked tree $(((tree + size) >> 20)) MiB: name .gpu in the run's carry"
