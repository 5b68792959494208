#!/bin/sh
# Makes, once, the Python venv the VAE parity test runs diffusers in
# (tests/vae.cmake): Debian's python3 with its system packages (torch, numpy,
# h5py) plus diffusers from PyPI. diffusers is pinned: later releases need a
# newer torch than Debian 12's python3-torch 1.13 (torch.accelerator), and
# 0.30 needs a huggingface_hub before 0.26. The only network use of the test
# suite, and only on the first run in a build folder.
# Usage: vae_venv.sh VENV_DIR
set -u
VENV=$1
[ -f "$VENV/.entprog-ready" ] && exit 0
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
