#!/usr/bin/env bash
# Installs what entprog needs to build, test and run on Debian 12 (idempotent).
set -euo pipefail
pkgs=(build-essential cmake pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools
      libopenblas-dev libinih-dev libpng-dev libjansson-dev python3-torch python3-h5py python3-numpy python3-matplotlib
      libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
      python3-venv
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
