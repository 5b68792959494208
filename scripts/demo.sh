#!/usr/bin/env bash
# The main job of the README: installs dependencies, builds, generates the
# synthetic human-video dataset, trains the `small` EP-VDiT for a few minutes
# on the CPU and writes a checkpoint, the metrics and the dataset preview.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/install-deps.sh"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
"$here/scripts/build.sh" "$here/build"
work=${ENTPROG_DEMO_DIR:-$here/demo}
mkdir -p "$work"
cd "$work"
"$here/build/entprog" datagen "$here/inputs/small.ini"
rm -rf run-small
"$here/build/entprog" train "$here/inputs/small.ini" --set train.out_dir=run-small
/usr/bin/python3 "$here/tools/plot_metrics.py" run-small/metrics.csv run-small/loss.png
echo
echo "dataset preview:  $work/data/preview.png"
echo "loss curve:       $work/run-small/loss.png"
echo "metrics:          $work/run-small/metrics.csv"
echo "checkpoint:       $(ls "$work"/run-small/ckpt_*.h5 | tail -n 1)"
