#!/usr/bin/env bash
# pyrag vs vanilla vs direct on the shipped HotpotQA dev questions with the embedded model (CPU).
# The three methods advance together in steps of STEP questions (each step is `eval --resume` with a larger
# --limit), so a run stopped at any point leaves comparable partial numbers; run it again to continue.
#   nice -n 10 benchmarks/eval_hotpotqa.sh [N=100] [OUT=benchmarks/results/eval-hotpotqa] [STEP=10]
set -euo pipefail
N=${1:-100}
OUT=${2:-benchmarks/results/eval-hotpotqa}
STEP=${3:-10}
mkdir -p "$OUT"
shift $(( $# < 3 ? $# : 3 ))
for ((limit = STEP; limit <= N; limit += STEP)); do
  for method in direct vanilla pyrag; do
    pyrag-dsl eval --data hotpotqa-dev300 --method "$method" --limit "$limit" --out "$OUT/$method" --resume "$@" \
      > "$OUT/$method.log" 2>&1 || { echo "eval $method --limit $limit failed: see $OUT/$method.log" >&2; exit 1; }
  done
done
pyrag-dsl eval report "$OUT/direct" "$OUT/vanilla" "$OUT/pyrag" --png "$OUT/report.png"
pyrag-dsl eval report "$OUT/direct" "$OUT/vanilla" "$OUT/pyrag" --markdown --no-plot
