#!/usr/bin/env bash
# The test command of the README: installs dependencies, builds, runs every
# test, then builds again with AddressSanitizer + UBSan and runs them again,
# then runs each libFuzzer target (tests/fuzz/) for a short while.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
"$here/scripts/build.sh" "$here/build"
ctest --test-dir "$here/build" --output-on-failure -j2
# (the CUDA runtime and ASan do not share an address space well; the GPU code is checked on a GPU)
"$here/scripts/build.sh" "$here/build-asan" -DENTPROG_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug -DENTPROG_CUDA=OFF
# Open MPI's own allocations are never freed: leak checking would only report those.
ASAN_OPTIONS=detect_leaks=0 ctest --test-dir "$here/build-asan" --output-on-failure -j2 -LE slow
# The deck parser, the dataset loader and the checkpoint loader under libFuzzer (clang, sanitizers): 20 s each.
"$here/tests/fuzz/run.sh" "$here/build-fuzz" 20
