#!/usr/bin/env bash
# Response-cache scenario: the bench runner (bench/run.sh) with the exact cache on
# (configs/sluice-cache.yaml), Sluice next to the minimal pass-through, in front of the same
# mock upstream. wrk repeats one body per mode, so:
#
#   MODE=hit  bash bench/cache.sh   every request after the first of each body is a cache hit:
#                                   compare Sluice's RPS with the minimal pass-through's
#                                   (goal: a hit at least 1.5x its throughput on one core)
#   MODE=miss bash bench/cache.sh   configs/sluice-cache-miss.yaml: entries expire after 1 µs,
#                                   so every request is looked up, misses, goes upstream and
#                                   is stored; compare with a plain
#                                   `SYSTEMS=minimal,sluice bash bench/run.sh` run
#                                   (goal: within noise of no cache)
#
# Other knobs are bench/run.sh's (QUICK=1, DURATION, CONCURRENCY, REPEATS, OUT, ...). The
# results go to $OUT (default bench/results/cache-<mode>-<timestamp>); docs/benchmarks.md is
# left alone unless DOC is set. Run it on a quiet machine: it pins to cores 0 and 1.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
MODE=${MODE:-hit}
case "$MODE" in
  hit) CONFIG="$HERE/configs/sluice-cache.yaml" ;;
  miss) CONFIG="$HERE/configs/sluice-cache-miss.yaml" ;;
  *) echo "MODE must be hit or miss" >&2; exit 2 ;;
esac
export SLUICE_BENCH_CONFIG="${SLUICE_BENCH_CONFIG:-$CONFIG}"
export SYSTEMS="${SYSTEMS:-minimal,sluice}"
export SOAK_REQUESTS="${SOAK_REQUESTS:-0}"
export PROFILE="${PROFILE:-0}"
export DOC="${DOC-}"
export OUT="${OUT:-$HERE/results/cache-$MODE-$(date +%Y%m%d-%H%M%S)}"
exec bash "$HERE/run.sh"
