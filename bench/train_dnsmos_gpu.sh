#!/usr/bin/env bash
# Distil the binary DNSMOS student on a machine with a GPU: build the large corpus with every
# core, then train several variants of the recipe side by side on the one GPU, each within what
# is left of a wall-clock budget. Pick the variant by its VALIDATION figures (the json's
# "validation"), then score it on this machine's test split on the CPU (exact) before shipping:
#
#   TOTAL_S=540 OUT=build/gpu_train bench/train_dnsmos_gpu.sh
#   .venv/bin/python -m qhw.dnsmos.train --evaluate build/gpu_train/A/dnsmos_bam.npz
#
# Environment: TOTAL_S (the whole budget in seconds, corpus build included; default 540),
# OUT (results; default build/gpu_train), DEVICE (default cuda), CORPUS (large, the default, or
# wide: 16 training voices),
# WORKERS (corpus build processes; default: the cores), THREADS (torch CPU threads per variant;
# default 4). Needs qhw and PyTorch importable by python3 (or PYTHON).
set -u -o pipefail
T0=$(date +%s)
TOTAL_S=${TOTAL_S:-540}
OUT=${OUT:-build/gpu_train}
DEVICE=${DEVICE:-cuda}
CORPUS=${CORPUS:-large}
WORKERS=${WORKERS:-$(nproc)}
THREADS=${THREADS:-4}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
LOG="$OUT/log.txt"

echo "== corpus $CORPUS, $WORKERS workers" | tee -a "$LOG"
$PY -u -m qhw.dnsmos.corpus --size "$CORPUS" --workers "$WORKERS" --quiet 2>&1 | tee -a "$LOG" \
    || { echo "corpus build failed" | tee -a "$LOG"; exit 1; }

# The variants: one name and its options each (the recipe's defaults otherwise). D is the
# shipped student's CPU recipe (batch 8, EMA 0.997, 35% on full windows, bfloat16 steps).
declare -A VARIANTS=(
    [A]="--batch 32 --lr 3e-3"
    [B]="--batch 16 --lr 3e-3"
    [C]="--batch 32 --lr 3e-3 --ema 0.998"
    [D]="--batch 8 --lr 3e-3 --ema 0.997 --full-frac 0.35 --precision bfloat16"
)
elapsed=$(( $(date +%s) - T0 ))
# Leave 45 s after the training budget for the test scoring and the files.
minutes=$(awk -v t="$TOTAL_S" -v e="$elapsed" 'BEGIN { m = (t - e - 45) / 60; if (m < 0.5) m = 0.5; printf "%.2f", m }')
echo "== corpus built after ${elapsed} s; training ${minutes} min per variant on $DEVICE" | tee -a "$LOG"
pids=()
for name in "${!VARIANTS[@]}"; do
    mkdir -p "$OUT/$name"
    # shellcheck disable=SC2086
    ( $PY -u -m qhw.dnsmos.train --student binary --device "$DEVICE" --corpus "$CORPUS" \
          --minutes "$minutes" --threads "$THREADS" --val-every 500 --no-tune --no-progress \
          ${VARIANTS[$name]} -o "$OUT/$name" 2>&1 | sed -u "s/^/[$name] /" >> "$LOG" ) &
    pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
echo "== done after $(( $(date +%s) - T0 )) s (status $status)" | tee -a "$LOG"
grep -h "student: test" "$LOG" || true
exit $status
