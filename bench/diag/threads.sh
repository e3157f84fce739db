#!/usr/bin/env bash
D=$1
# per-thread CPU of the sluice process during a wrk run at c=16 chat
P=$(cat $D/sluice.pid); KEY=$2; SECS=${3:-8}
snapt() { for t in /proc/$P/task/*; do echo "$(basename $t) $(cat $t/comm) $(awk '{print $14+$15}' $t/stat)"; done; }
snapt > $D/threads-t0
cd "$(dirname "$0")/../.."
out=$(BENCH_BODY=bench/bodies/chat.json BENCH_KEY=$KEY taskset -c 1 wrk -t1 -c16 -d${SECS}s -s bench/wrk/post_json.lua http://127.0.0.1:18401/v1/chat/completions | grep WRKJSON | sed 's/WRKJSON //')
snapt > $D/threads-t1
n=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests"])')
echo "requests=$n rps=$((n/SECS))"
join <(sort $D/threads-t0) <(sort $D/threads-t1) | awk -v n=$n -v tck=$(getconf CLK_TCK) '{d=$5-$3; tot+=d; if (d>0) printf "%s %s %.1f us/req\n", $1, $2, d/tck*1e6/n} END {printf "total %.1f us/req\n", tot/tck*1e6/n}'
