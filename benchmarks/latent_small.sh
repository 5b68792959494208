#!/usr/bin/env bash
# The latent-space pipeline at the `small` model's size (issue 13): a pixel
# dataset of 256x256 dancers -> `entprog encode --dataset-in` through the
# committed tiny random-weight SD-shaped VAE (tests/fixtures/vae_tiny.safetensors,
# factor 8: 32x32x4 latents, the `small` model's grid) -> train the `small`
# EP-VDiT on the latents (C = 4, s = 8: pose maps stay 256x256) -> sample with
# data.vae (frames decoded to 256x256, GIF and MP4) -> `entprog decode` of the
# generated latents equals the sample's frames. Writes
# benchmarks/results/latent_small.md with every command, its wall time and what
# it made. The VAE's weights are random, so the pictures are not meant to look
# like anything: this shows the pipeline at this size, not quality.
# usage: benchmarks/latent_small.sh [BUILD] [WORKDIR] [STEPS]   (~10 min on 2 cores)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
work=${2:-$here/benchmarks/work-latent-small}
steps=${3:-200}
E="$build/entprog"
VAE="$here/tests/fixtures/vae_tiny.safetensors"
out="$here/benchmarks/results/latent_small.md"
[ -x "$E" ] || { echo "latent_small.sh: no entprog at $E (build first: scripts/build.sh)" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
rm -rf "$work"
mkdir -p "$work"
cd "$work"

# the pixel dataset: `small`'s 32x32 latent grid is 256x256 pixels; pose maps at the pixel size (s = 1)
cat > px.ini <<INI
[model]
H = 256
W = 256
s = 1
[data]
dir = px
n_train = 16
n_val = 4
n_test = 4
frames = 24
frame_stride = 2
INI
# the small model on the latents: small.ini with C = 4 and s = 8 (docs/vae.md)
sed -e 's/^C = 3 .*/C = 4            ; latent channels (the VAE)/' \
    -e 's/^s = 2 .*/s = 8            ; pose maps 256x256: the pixel size/' \
    -e "s|^dir = data .*|dir = lat\nvae = $VAE|" "$here/inputs/small.ini" > lat.ini
/usr/bin/python3 - lat.ini <<'PY'
import configparser, sys
c = configparser.ConfigParser(inline_comment_prefixes=(";",), strict=False)
c.read(sys.argv[1])
assert c["model"]["C"].strip() == "4" and c["model"]["s"].strip() == "8" and c["data"]["dir"].strip() == "lat" \
    and c["data"]["vae"].strip().endswith("vae_tiny.safetensors"), "lat.ini"
PY

rows=()
step() { # title, command...
  local title=$1; shift
  local t0=$SECONDS
  echo "== $title: $*"
  "$@" > "$(echo "$title" | tr ' ' '_').log" 2>&1 || { echo "latent_small.sh: '$*' failed:" >&2; tail -5 "$(echo "$title" | tr ' ' '_').log" >&2; exit 1; }
  rows+=("| $title | \`$(echo "$*" | sed "s|$E|entprog|g; s|$here/||g")\` | $((SECONDS - t0)) s |")
}
step "datagen" "$E" datagen px.ini
step "encode" "$E" encode --vae "$VAE" --dataset-in px --out lat
step "train" "$E" train lat.ini --set train.steps="$steps" --set train.val_every=50 --set train.ckpt_every=0
ck=$(printf 'run/ckpt_%08d.h5' "$steps")
step "sample" "$E" sample lat.ini --ckpt "$ck" --steps 20 --n 2 --out smp
/usr/bin/python3 - <<'PY'
import h5py
with h5py.File("smp/samples.h5", "r") as f, h5py.File("gen.h5", "w") as g:
    z = f["generated"][...]
    g["latents"] = z.reshape(-1, *z.shape[2:])
PY
step "decode" "$E" decode --vae "$VAE" --in gen.h5 --out gen_img.h5
check=$(/usr/bin/python3 - <<'PY'
import h5py, numpy as np
with h5py.File("lat/train.h5", "r") as f:
    lat = f["latents"].shape
with h5py.File("smp/samples.h5", "r") as f:
    gf = f["generated_frames"][...]
with h5py.File("gen_img.h5", "r") as f:
    x = f["images"][...]
want = np.clip(np.round((x + np.float32(1)) * np.float32(127.5)), 0, 255).astype(np.int16).reshape(gf.shape)
d = int(np.abs(want - gf.astype(np.int16)).max())
print(f"latents {lat} (videos, frames, C, H, W); sample frames {gf.shape}; max byte difference between the "
      f"sample's frames and `entprog decode` of its latents: {d}")
assert d <= 1, d
PY
)
losses=$(grep -E "val loss" train.log | head -1 | sed 's/^ *//'; grep -E "val loss" train.log | tail -1 | sed 's/^ *//')
{
  echo "# The latent-space pipeline at the \`small\` size"
  echo
  echo "Written by \`benchmarks/latent_small.sh ${*:-}\` on $(date -u +%Y-%m-%d) ($(nproc) cores; \`$(grep -m1 '^backend' train.log || true)\`)."
  echo "A random-weight VAE (\`tests/fixtures/vae_tiny.safetensors\`, SD's shape scaled down, factor 8), so the"
  echo "pictures mean nothing: this shows the pipeline at this size working end to end."
  echo
  echo "| step | command | wall |"
  echo "|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "- $check"
  echo "- validation, first and last:"
  echo '```'
  echo "$losses"
  echo '```'
  echo "- made: $(cd smp && ls | tr '\n' ' ')"
} > "$out"
echo "wrote $out"
