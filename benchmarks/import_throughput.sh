#!/usr/bin/env bash
# Import throughput of `entprog import-video` on this machine, written to
# benchmarks/results/import_throughput.md with the command: 16 synthetic
# dancers rendered at 128x128, enlarged to 512x512 H.264 MP4 (48 frames each,
# 8 fps, tools/dancers_to_videos.py) with OpenPose JSON, imported into the
# `small` deck (32x32 frames, 64x64 pose maps, clips of 24) on 1 rank and on 2
# ranks. Frames/s counts source frames decoded per second of the whole import
# (JSON, decoding, crop and resize, pose maps, HDF5 writes, the 2-rank merge).
# usage: benchmarks/import_throughput.sh [WORKDIR]   (ENTPROG=path/to/entprog to skip the build)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
work=${1:-$here/benchmarks/work/import}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE OMP_NUM_THREADS=1
if [ -z "${ENTPROG:-}" ]; then "$here/scripts/build.sh" "$here/build" >/dev/null; ENTPROG="$here/build/entprog"; fi
E=$ENTPROG
mkdir -p "$work"
cd "$work"
cat > src.ini <<INI
[model]
F = 4
C = 3
H = 128
W = 128
p = 2
D = 32
NH = 2
L = 1
Cp = 3
s = 1
Cg = 8
[data]
dir = src
n_train = 16
n_val = 0
n_test = 0
frames = 48
seed = 5
fps = 8
[train]
val_every = 0
INI
[ -f src/train.h5 ] || "$E" datagen src.ini >/dev/null
[ -d folder/videos ] || /usr/bin/python3 "$here/tools/dancers_to_videos.py" --data src/train.h5 --out folder --scale 4 >/dev/null
D="$here/inputs/small.ini"
run() { # ranks out
    local -a pre=()
    [ "$1" -gt 1 ] && pre=(mpirun -n "$1" --oversubscribe)
    rm -rf "$2"
    "${pre[@]}" "$E" import-video "$D" --videos folder/videos --poses folder/poses --out "$2" --seed 1 |
        sed -n 's/.* \([0-9]*\) source frames decoded, \([0-9]*\) dataset frames written in \([0-9.]*\) s.*/\1 \2 \3/p'
}
read -r f1 o1 t1 < <(run 1 out1)
read -r f2 o2 t2 < <(run 2 out2)
same=$(/usr/bin/python3 -c "
import h5py, numpy as np, sys
ok = all(np.array_equal(h5py.File(f'out1/{s}.h5')[k][...], h5py.File(f'out2/{s}.h5')[k][...])
         for s in ('train', 'val', 'test') for k in ('frames', 'pose', 'keypoints'))
print('identical' if ok else 'DIFFERENT')")
out="$here/benchmarks/results/import_throughput.md"
{
    echo "# import-video throughput ($(date -u +%Y-%m-%d), $(getconf _NPROCESSORS_ONLN) cores, $(uname -m))"
    echo
    echo "Written by \`benchmarks/import_throughput.sh\`: 16 videos of 48 frames, 512x512 H.264 (yuv420p, CRF 18),"
    echo "OpenPose JSON per frame, into \`inputs/small.ini\` (32x32, pose maps 64x64, clips of 24 frames at 8 fps)."
    echo
    echo "| ranks | source frames | dataset frames | wall s | source frames/s |"
    echo "|---|---|---|---|---|"
    echo "| 1 | $f1 | $o1 | $t1 | $(awk "BEGIN {printf \"%.0f\", $f1 / $t1}") |"
    echo "| 2 | $f2 | $o2 | $t2 | $(awk "BEGIN {printf \"%.0f\", $f2 / $t2}") |"
    echo
    echo "2-rank files against 1-rank files (frames, pose, keypoints): $same."
    echo "Load average when done: $(cut -d' ' -f1-3 /proc/loadavg) (the cores may be shared with other work)."
} > "$out"
cat "$out"
