#!/usr/bin/env bash
# Encoding throughput of `entprog encode --dataset-in` (docs/vae.md) at 512x512
# on the CPU, written to benchmarks/results/encode_throughput.md with the
# commands: a random-weight VAE of SD's shape (block_out_channels 128, 256,
# 512, 512, 83.7 M parameters; diffusers in the venv of tests/vae_venv.sh,
# offline) and a datagen dataset of V videos x T frames at 512x512, encoded on
# 1 rank (OMP threads = cores) and on 2 ranks (1 thread each), with OpenBLAS as
# it detects the CPU and with OPENBLAS_CORETYPE=$CORETYPE. Frames/s counts
# frames of the whole job (reads, encoding, the copy of the other datasets, writes).
# usage: benchmarks/encode_throughput.sh [WORKDIR]
#   ENTPROG=path/to/entprog, VENV=venv with diffusers, V=2 T=2, CORETYPE=SkylakeX, DEFAULT=0 skips the detected kernels
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$here/benchmarks/work/encode}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
E=${ENTPROG:-$here/build/entprog}
VENV=${VENV:-$here/build/venv-diffusers}
V=${V:-2} T=${T:-2} CORETYPE=${CORETYPE:-SkylakeX} DEFAULT=${DEFAULT:-1}
cores=$(nproc)
mkdir -p "$work" "$here/benchmarks/results"
cd "$work"
[ -f sdvae/vae.safetensors ] || "$VENV/bin/python" - <<'PY'
import os, torch
from diffusers import AutoencoderKL
from safetensors.torch import save_file
torch.manual_seed(0)
vae = AutoencoderKL(down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
                    block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4)
os.makedirs("sdvae", exist_ok=True)
save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, "sdvae/vae.safetensors",
          metadata={"norm_num_groups": "32", "scaling_factor": "0.18215", "shift_factor": "0"})
PY
printf '[model]\nH = 512\nW = 512\ns = 1\nF = 1\n[data]\ndir = px\nn_train = %d\nn_val = 1\nn_test = 1\nframes = %d\n' "$V" "$T" > px.ini
[ -f px/train.h5 ] || "$E" datagen px.ini > /dev/null
out=$here/benchmarks/results/encode_throughput.md
rate() { sed -n 's/.*in \([0-9.]*\) s (\([0-9.]*\) frames\/s.*/\2 frames\/s (\1 s)/p' | tail -1; }
{
    echo "# entprog encode --dataset-in: throughput at 512x512 (CPU, fp32)"
    echo
    echo "$(date -u +%F), $(lscpu | sed -n 's/^Model name: *//p'), $cores cores, shared with other work (load $(cut -d' ' -f1-3 /proc/loadavg))."
    echo "Random-weight SD-shaped VAE (83.7 M parameters); $V videos x $T frames of 512x512 (datagen), the whole job timed."
    echo "Written by benchmarks/encode_throughput.sh."
    echo
    echo "| OpenBLAS kernels | ranks x threads | frames/s (seconds) |"
    echo "|---|---|---|"
} > "$out"
for ct in ${DEFAULT/1/detected} "$CORETYPE"; do
    [ "$ct" = 0 ] && continue
    envs=(); [ "$ct" != detected ] && envs=(OPENBLAS_CORETYPE="$ct") # through env(1): every rank gets it
    unset OPENBLAS_CORETYPE
    rm -f lat1.h5 lat2.h5
    r1=$(env "${envs[@]}" OMP_NUM_THREADS="$cores" "$E" encode --vae sdvae/vae.safetensors --dataset-in px/train.h5 --out lat1.h5 | rate)
    echo "| $ct | 1 x $cores | $r1 |" >> "$out"
    r2=$(mpirun -n 2 --oversubscribe -x OMP_NUM_THREADS=$((cores / 2 > 0 ? cores / 2 : 1)) env "${envs[@]}" "$E" encode \
        --vae sdvae/vae.safetensors --dataset-in px/train.h5 --out lat2.h5 | rate)
    echo "| $ct | 2 x $((cores / 2 > 0 ? cores / 2 : 1)) | $r2 |" >> "$out"
done
cat "$out"
