#!/usr/bin/env bash
# scaling_gather.sh: gathers the scaling sweep's ms/step into one CSV.
#
# usage: jobs/scaling_gather.sh [RESULTS] [WARMUP]   > scaling.csv
# Reads RESULTS/<mode>/nodes_<N>/{run.txt,metrics.csv} (default RESULTS:
# results/scaling) and prints, per mode and node count,
#   mode,nodes,ranks,batch_per_rank,global_batch,steps_timed,median_ms_per_step,samples_per_s,speedup,efficiency
# median_ms_per_step: median of entprog's `train` rows after the first WARMUP
# steps (default 3: first touch of buffers, NCCL/MPI connection set-up);
# samples_per_s = global_batch / median step time; against the smallest node
# count of the same mode (n0 nodes, time t0):
#   weak   (same batch per rank):    speedup = (N/n0) * t0/t,  efficiency = t0/t
#   strong (same global batch):      speedup = t0/t,           efficiency = (t0/t) / (N/n0)
# A point whose metrics.csv is missing or has no timed steps is listed with
# empty times (its job failed or has not run).
set -euo pipefail
results=${1:-results/scaling}
warmup=${2:-3}
[ -d "$results" ] || { echo "scaling_gather: no folder '$results'" >&2; exit 1; }
echo "mode,nodes,ranks,batch_per_rank,global_batch,steps_timed,median_ms_per_step,samples_per_s,speedup,efficiency"
for mode_dir in "$results"/weak "$results"/strong; do
  [ -d "$mode_dir" ] || continue
  mode=$(basename "$mode_dir")
  for d in "$mode_dir"/nodes_*; do
    [ -f "$d/run.txt" ] || continue
    get() { awk -F= -v k="$1" '$1 == k {print substr($0, length(k) + 2)}' "$d/run.txt"; }
    nodes=$(get nodes) ranks=$(get ranks) b=$(get batch_per_rank) g=$(get global_batch)
    n=0 med=
    if [ -f "$d/metrics.csv" ]; then
      # the last row of each step counts (a resumed run appends rows again)
      times=$(awk -F, -v w="$warmup" 'NR > 1 && $1 == "train" && $2 > w {t[$2] = $6} END {for (s in t) print t[s]}' \
              "$d/metrics.csv" | sort -g)
      n=$(printf '%s\n' "$times" | grep -c . || true)
      [ "$n" -gt 0 ] && med=$(printf '%s\n' "$times" |
        awk '{a[NR] = $1} END {printf "%.3f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}')
    fi
    echo "$mode,$nodes,$ranks,$b,$g,$n,$med"
  done | sort -t, -k2,2n |
    awk -F, -v OFS=, '
      { if ($7 != "" && base == "") { n0 = $2; t0 = $7; base = 1 }
        sps = ($7 != "") ? sprintf("%.3f", $5 / ($7 / 1000)) : ""
        sp = eff = ""
        if ($7 != "" && base != "") {
          if ($1 == "weak") { eff = t0 / $7; sp = ($2 / n0) * eff }
          else { sp = t0 / $7; eff = sp / ($2 / n0) }
          sp = sprintf("%.3f", sp); eff = sprintf("%.3f", eff)
        }
        print $1, $2, $3, $4, $5, $6, $7, sps, sp, eff }'
done
