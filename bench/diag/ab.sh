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
DIAG=abn source "$(dirname "$0")/start.sh"
pidof_port() { pgrep -f "port $1" | tail -1; }
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
run() { # port key pid
  local c0=$(cpu $3)
  local n=$(BENCH_BODY=bench/bodies/${BODY:-chat}.json BENCH_KEY=$2 taskset -c 1 wrk -t1 -c16 -d${SECS}s -s bench/wrk/post_json.lua http://127.0.0.1:$1/v1/chat/completions | grep WRKJSON | sed 's/WRKJSON //' | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
  local c1=$(cpu $3)
  python3 -c "print(f'{($c1-$c0)/$(getconf CLK_TCK)*1e6/$n:.1f}')"
}
MP=$(pidof_port $MIN_PORT)
run $MIN_PORT $MIN_KEY $MP > /dev/null
for k in "${!NAMES[@]}"; do run ${PORTS[$k]} ${KEYS[$k]} $(pidof_port ${PORTS[$k]}) > /dev/null; done
for r in $(seq $ROUNDS); do
  line="r$r min=$(run $MIN_PORT $MIN_KEY $MP)"
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
stop_all
