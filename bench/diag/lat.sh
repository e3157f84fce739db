#!/usr/bin/env bash
# lat.sh ROUNDS SECS "name:SRC:ENV" ...: p50/p99 (ms) of c=1 chat for each Sluice variant,
# in turns (same arguments as ab.sh), with the minimal pass-through first as the reference.
# After each figure, in brackets: the jiffies (1/100 s) the hypervisor took from this
# machine's vCPUs during it (steal); a point with more than a few is disturbed.
set -u
ROUNDS=$1; SECS=$2; shift 2
DIAG=lat source "$(dirname "$0")/start.sh"
NAMES=(minimal "${NAMES[@]}"); PORTS=($MIN_PORT "${PORTS[@]}"); KEYS=($MIN_KEY "${KEYS[@]}")
steal() { awk '/^cpu[0-9]/ {s += $9} END {print s}' /proc/stat; }
run() { local s0; s0=$(steal); _run "$@"; echo "($(( $(steal) - s0 ))j)"; }
_run() { BENCH_BODY=bench/bodies/chat.json BENCH_KEY=$2 taskset -c 1 wrk -t1 -c1 -d${SECS}s --latency -s bench/wrk/post_json.lua http://127.0.0.1:$1/v1/chat/completions | grep WRKJSON | sed 's/WRKJSON //' | python3 -c "import json,sys; d=json.load(sys.stdin)[\"latency_us\"]; print(\"%.2f/%.2f\" % (d[\"p50\"] / 1000, d[\"p99\"] / 1000), end=\"\")"; }
for k in "${!NAMES[@]}"; do run ${PORTS[$k]} ${KEYS[$k]} > /dev/null; done
for r in $(seq $ROUNDS); do line="r$r"; for k in "${!NAMES[@]}"; do line+=" ${NAMES[$k]}=$(run ${PORTS[$k]} ${KEYS[$k]} | tr -d "\\n")"; done; echo "$line"; done
stop_all
