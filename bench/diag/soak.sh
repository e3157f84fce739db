#!/usr/bin/env bash
# diagnostic soak: mock + sluice (bench config, SQLite, real key), wrk segments, tracemalloc snaps
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
D=${D:-/tmp/sluice-soak}
TM=${TM:-1}   # tracemalloc frames (0 = off)
rm -rf $D; mkdir -p $D
cd $REPO
taskset -c 1 .venv/bin/sluice mock-upstream --host 127.0.0.1 --port 18400 > $D/mock.log 2>&1 &
echo $! > $D/mock.pid
[ -n "${DB_FROM:-}" ] && cp $DB_FROM $D/sluice.db
sed 's/127.0.0.1:18000/127.0.0.1:18400/' bench/configs/sluice.yaml > $D/sluice.yaml
export SLUICE_DATABASE_URL=sqlite+aiosqlite:///$D/sluice.db SLUICE_MASTER_KEY=sk-master-perf2-0123456789 SLUICE_DATA_DIR=$D
KEY=$(.venv/bin/sluice keys create --name bench --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
echo $KEY > $D/key
if [ "$TM" != 0 ]; then export PERF2_TRACEMALLOC=$TM PERF2_OUT=$D PYTHONPATH=$REPO/bench/diag; fi
env ${EXTRA_ENV:-} setsid taskset -c 0 .venv/bin/sluice serve --port 18401 --config $D/sluice.yaml --workers 1 > $D/sluice.log 2>&1 &
echo $! > $D/sluice.pid
for i in $(seq 600); do curl -sf http://127.0.0.1:18401/health/live >/dev/null && break; sleep 0.2; done
SPID=$(pgrep -P $(cat $D/sluice.pid) -f 'sluice serve' || cat $D/sluice.pid)
rssof() { ps -o rss= -p $(cat $D/sluice.pid) $(pgrep -P $(cat $D/sluice.pid)) | awk '{s+=$1} END {print s}'; }
snap() { [ "$TM" = 0 ] && { SP=$(pgrep -f "port 18401 "); echo "$1 rss_kib=$(rssof) threads=$(ls /proc/$SP/task | wc -l) $(python3 $REPO/bench/diag/maps.py $SP)" >> $D/mem.log; return; }; echo $1 > $D/snap.trigger; while [ ! -f $D/snap-$1.done ]; do sleep 0.2; done; }
sleep 3; snap 0k
total=0; seg=0
for target in ${TARGETS:-10 30 60 100}; do
  while [ $total -lt $((target*1000)) ]; do
    mode=chat; [ $((seg % 2)) = 1 ] && mode=chat_stream
    n=$(BENCH_BODY=bench/bodies/$mode.json BENCH_KEY=$KEY taskset -c 1 wrk -t1 -c16 -d${SEG:-5}s -s bench/wrk/post_json.lua http://127.0.0.1:18401/v1/chat/completions | grep WRKJSON | sed 's/WRKJSON //' | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
    [ -z "$n" ] && { echo "wrk failed" >> $D/progress.log; exit 1; }
    total=$((total+n)); seg=$((seg+1))
    echo "seg $seg $mode n=$n total=$total rss=$(rssof)" >> $D/progress.log
  done
  snap ${target}k
done
echo "done total=$total" >> $D/progress.log
