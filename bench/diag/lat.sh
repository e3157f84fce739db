#!/usr/bin/env bash
# lat.sh ROUNDS SECS "name:SRC:ENV" ...: p50/p99 (ms) of c=1 chat for each Sluice variant,
# in turns (same arguments as ab.sh), with the minimal pass-through first as the reference.
# After each figure, in brackets: the jiffies (1/100 s) the hypervisor took from this
# machine's vCPUs during it (steal); a point with more than a few is disturbed.
set -u
ROUNDS=$1; SECS=$2; shift 2
REPO=$(cd "$(dirname "$0")/../.." && pwd); BV=${VENVS:-$HOME/.cache/sluice-bench}/bench
D=$(mktemp -d /tmp/lat.XXXX); cd $REPO
taskset -c 1 .venv/bin/sluice mock-upstream --host 127.0.0.1 --port 18500 > $D/mock.log 2>&1 &
(cd bench && UPSTREAM_BASE=http://127.0.0.1:18500/v1 PROXY_KEYS=sk-bench-1234 exec taskset -c 0 $BV/bin/uvicorn minimal_proxy:app --port 18501 --loop uvloop --http httptools --no-access-log --log-level warning > $D/min.log 2>&1) &
sed 's/127.0.0.1:18000/127.0.0.1:18500/' bench/configs/sluice.yaml > $D/sluice.yaml
export SLUICE_MASTER_KEY=sk-master-ab-0123456789
i=0; NAMES=(minimal); PORTS=(18501); KEYS=(sk-bench-1234)
for spec in "$@"; do
  IFS=: read -r name src envs <<< "$spec"; port=$((18510+i)); mkdir -p $D/$name
  key=$(SLUICE_DATABASE_URL=sqlite+aiosqlite:///$D/$name/s.db SLUICE_DATA_DIR=$D/$name PYTHONPATH=$src .venv/bin/sluice keys create --name bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
  SLUICE_DATABASE_URL=sqlite+aiosqlite:///$D/$name/s.db SLUICE_DATA_DIR=$D/$name PYTHONPATH=$src env $envs taskset -c 0 .venv/bin/sluice serve --port $port --config $D/sluice.yaml > $D/$name/log 2>&1 &
  NAMES+=($name); PORTS+=($port); KEYS+=($key); i=$((i+1))
done
for p in "${PORTS[@]}"; do for j in $(seq 300); do curl -sf http://127.0.0.1:$p/health/live >/dev/null && break; sleep 0.2; done; done
steal() { awk '/^cpu[0-9]/ {s += $9} END {print s}' /proc/stat; }
run() { local s0; s0=$(steal); _run "$@"; echo "($(( $(steal) - s0 ))j)"; }
_run() { BENCH_BODY=bench/bodies/chat.json BENCH_KEY=$2 taskset -c 1 wrk -t1 -c1 -d${SECS}s --latency -s bench/wrk/post_json.lua http://127.0.0.1:$1/v1/chat/completions | grep WRKJSON | sed 's/WRKJSON //' | python3 -c "import json,sys; d=json.load(sys.stdin)[\"latency_us\"]; print(\"%.2f/%.2f\" % (d[\"p50\"] / 1000, d[\"p99\"] / 1000), end=\"\")"; }
for k in "${!NAMES[@]}"; do run ${PORTS[$k]} ${KEYS[$k]} > /dev/null; done
for r in $(seq $ROUNDS); do line="r$r"; for k in "${!NAMES[@]}"; do line+=" ${NAMES[$k]}=$(run ${PORTS[$k]} ${KEYS[$k]} | tr -d "\\n")"; done; echo "$line"; done
pkill -f "port 1850"; pkill -f "port 1851"; pkill -f "minimal_proxy:app --port 18501"; sleep 0.5
