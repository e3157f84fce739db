#!/usr/bin/env bash
# ab.sh ROUNDS SECS "name:SRC:ENV" ...: CPU µs per request at c=16 chat of the minimal
# pass-through and of each Sluice variant (SRC: a src/ folder put on PYTHONPATH; ENV: extra
# environment, e.g. X=1 for none), all on core 0, measured in turns, ROUNDS times SECS
# seconds each. Prints each round, the median share per variant and the paired ratio of
# every variant to the first (robust to a host whose speed drifts). Needs the bench venv
# (bash bench/run.sh creates it) and wrk. Example:
#   bash bench/diag/ab.sh 12 2 "base:/tmp/base/src:X=1" "new:$PWD/src:X=1"
set -u
ROUNDS=$1; SECS=$2; shift 2
REPO=$(cd "$(dirname "$0")/../.." && pwd); BV=${VENVS:-$HOME/.cache/sluice-bench}/bench
D=$(mktemp -d /tmp/abn.XXXX)
cd $REPO
taskset -c 1 .venv/bin/sluice mock-upstream --host 127.0.0.1 --port 18500 > $D/mock.log 2>&1 &
(cd bench && UPSTREAM_BASE=http://127.0.0.1:18500/v1 PROXY_KEYS=sk-bench-1234 exec taskset -c 0 $BV/bin/uvicorn minimal_proxy:app --port 18501 --loop uvloop --http httptools --no-access-log --log-level warning > $D/min.log 2>&1) &
sed 's/127.0.0.1:18000/127.0.0.1:18500/' ${CONFIG:-bench/configs/sluice.yaml} > $D/sluice.yaml
export SLUICE_MASTER_KEY=sk-master-ab-0123456789
i=0; NAMES=(); PORTS=(); KEYS=()
for spec in "$@"; do
  IFS=: read -r name src envs <<< "$spec"
  port=$((18510+i)); mkdir -p $D/$name
  key=$(SLUICE_DATABASE_URL=sqlite+aiosqlite:///$D/$name/s.db SLUICE_DATA_DIR=$D/$name PYTHONPATH=$src .venv/bin/sluice keys create --name bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
  SLUICE_DATABASE_URL=sqlite+aiosqlite:///$D/$name/s.db SLUICE_DATA_DIR=$D/$name PYTHONPATH=$src env $envs taskset -c 0 .venv/bin/sluice serve --port $port --config $D/sluice.yaml > $D/$name/log 2>&1 &
  NAMES+=($name); PORTS+=($port); KEYS+=($key); i=$((i+1))
done
for p in 18501 "${PORTS[@]}"; do for j in $(seq 300); do curl -sf http://127.0.0.1:$p/health/live >/dev/null && break; sleep 0.2; done; done
pidof_port() { pgrep -f "port $1" | tail -1; }
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
run() { # port key pid
  local c0=$(cpu $3)
  local n=$(BENCH_BODY=bench/bodies/${BODY:-chat}.json BENCH_KEY=$2 taskset -c 1 wrk -t1 -c16 -d${SECS}s -s bench/wrk/post_json.lua http://127.0.0.1:$1/v1/chat/completions | grep WRKJSON | sed 's/WRKJSON //' | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
  local c1=$(cpu $3)
  python3 -c "print(f'{($c1-$c0)/$(getconf CLK_TCK)*1e6/$n:.1f}')"
}
MP=$(pidof_port 18501)
run 18501 sk-bench-1234 $MP > /dev/null
for k in "${!NAMES[@]}"; do run ${PORTS[$k]} ${KEYS[$k]} $(pidof_port ${PORTS[$k]}) > /dev/null; done
for r in $(seq $ROUNDS); do
  line="r$r min=$(run 18501 sk-bench-1234 $MP)"
  for k in "${!NAMES[@]}"; do line+=" ${NAMES[$k]}=$(run ${PORTS[$k]} ${KEYS[$k]} $(pidof_port ${PORTS[$k]}))"; done
  echo "$line" | tee -a $D/results
done
python3 - $D/results <<'PY'
import sys, statistics as st, collections
vals = collections.defaultdict(list); shares = collections.defaultdict(list)
for line in open(sys.argv[1]):
    parts = dict(p.split("=") for p in line.split()[1:])
    m = float(parts["min"])
    for k, v in parts.items():
        vals[k].append(float(v))
        if k != "min": shares[k].append(m / float(v))
names = [k for k in vals if k != "min"]
rows = [dict(p.split("=") for p in line.split()[1:]) for line in open(sys.argv[1])]
for k in names[1:]:
    r = [float(x[k]) / float(x[names[0]]) for x in rows]
    print(f"paired {k}/{names[0]}: median {st.median(r):.3f}  mean {st.mean(r):.3f}  ({sum(1 for v in r if v < 1)}/{len(r)} rounds lower)")
for k in vals:
    print(f"{k:10s} median {st.median(vals[k]):6.1f} us" + (f"  share median {st.median(shares[k]):.3f}  (min {min(shares[k]):.3f} max {max(shares[k]):.3f})" if k in shares else ""))
PY
pkill -f "port 1850"; pkill -f "port 1851"; sleep 0.5
