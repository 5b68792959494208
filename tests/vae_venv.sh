#!/bin/sh
# Makes, once, the Python venv the VAE parity test runs diffusers in
# (tests/vae.cmake): Debian's python3 with its system packages (torch, numpy,
# h5py) plus diffusers from PyPI. diffusers is pinned: later releases need a
# newer torch than Debian 12's python3-torch 1.13 (torch.accelerator), and
# 0.30 needs a huggingface_hub before 0.26. scripts/install-deps.sh runs it
# (the network is used there, with apt's), so the tests themselves need none:
# ctest's fixture only checks the venv (--check).
# Usage: vae_venv.sh [--check] VENV_DIR   (default VENV_DIR: ~/.cache/entprog/venv-diffusers)
set -u
CHECK=0
[ "${1:-}" = --check ] && { CHECK=1; shift; }
VENV=${1:-$HOME/.cache/entprog/venv-diffusers}
[ -f "$VENV/.entprog-ready" ] && exit 0
if [ $CHECK = 1 ]; then
    echo "FAILED: no diffusers venv at $VENV: scripts/install-deps.sh makes it (pip install diffusers==0.30.3" >&2
    echo "from PyPI into a venv beside Debian's torch; or: sh tests/vae_venv.sh $VENV)" >&2
    exit 1
fi
fail() {
    echo "FAILED: $1" >&2
    echo "The VAE parity test needs diffusers in $VENV: /usr/bin/python3 -m venv (Debian package python3-venv," >&2
    echo "scripts/install-deps.sh) and 'pip install diffusers==0.30.3 \"huggingface_hub<0.26\"' from PyPI." >&2
    exit 1
}
rm -rf "$VENV"
/usr/bin/python3 -m venv --system-site-packages "$VENV" || fail "could not create the venv"
"$VENV/bin/pip" install --disable-pip-version-check -q "diffusers==0.30.3" "huggingface_hub<0.26" ||
    fail "pip could not install diffusers (is PyPI reachable?)"
"$VENV/bin/python" -c "import torch, h5py; from diffusers import AutoencoderKL" ||
    fail "diffusers does not import beside Debian's torch"
touch "$VENV/.entprog-ready"
echo "vae_venv: diffusers installed in $VENV"
