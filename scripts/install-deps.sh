#!/usr/bin/env bash
# Installs what entprog needs to build, test and run on Debian 12 (idempotent).
set -euo pipefail
pkgs=(build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
      libopenblas-dev libinih-dev libpng-dev libjansson-dev python3-torch python3-h5py python3-numpy python3-matplotlib
      libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
      python3-venv python3-pip
      slurm-wlm munge
      clang libclang-rt-14-dev libomp-14-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# cuDNN's C++ frontend, header-only: cuda/sdpa_cudnn.cpp builds the fused flash
# attention graphs with it (docs/gpu.md). Its headers come in the PyPI wheel
# nvidia-cudnn-frontend (pinned; the same headers in every platform's wheel);
# CMake finds them in /opt/cudnn-frontend/include (or CUDNN_FRONTEND_ROOT).
# Without them the CUDA backend builds without the cuDNN attention path.
FE_VERSION=1.32.0
fe_dir=/opt/cudnn-frontend
if [ "$(cat "$fe_dir/VERSION" 2>/dev/null)" != "$FE_VERSION" ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  tmp=$(mktemp -d)
  if python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.11 \
       --platform manylinux_2_28_x86_64 "nvidia-cudnn-frontend==$FE_VERSION" -d "$tmp" &&
     python3 -m zipfile -e "$tmp"/nvidia_cudnn_frontend-*.whl "$tmp/whl" &&
     [ -f "$tmp/whl/include/cudnn_frontend.h" ]; then
    $SUDO rm -rf "$fe_dir"
    $SUDO mkdir -p "$fe_dir"
    $SUDO cp -r "$tmp/whl/include" "$fe_dir/"
    echo "$FE_VERSION" | $SUDO tee "$fe_dir/VERSION" > /dev/null
  else
    echo "install-deps: could not fetch nvidia-cudnn-frontend $FE_VERSION: the CUDA backend will build without cuDNN attention" >&2
  fi
  rm -rf "$tmp"
fi

# diffusers for the VAE parity test (tests/vae_venv.sh: a venv beside Debian's
# torch, in ~/.cache/entprog): made here so that the tests use no network.
here=$(cd "$(dirname "$0")/.." && pwd)
sh "$here/tests/vae_venv.sh" || echo "install-deps: no diffusers venv: the VAE parity test (vae_venv) will fail" >&2
