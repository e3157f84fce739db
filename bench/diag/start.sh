# Sourced by ab.sh and lat.sh (after ROUNDS/SECS are shifted off): starts the mock upstream
# (core 1), the minimal pass-through and one Sluice per "name:SRC:ENV" argument (core 0),
# waits until all answer. Sets D (work folder), BV, MIN_PORT/MIN_KEY and the arrays
# NAMES/PORTS/KEYS of the Sluice variants; stop_all stops every server started here.
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd); BV=${VENVS:-$HOME/.cache/sluice-bench}/bench
D=$(mktemp -d /tmp/${DIAG:-diag}.XXXX); cd $REPO
MIN_PORT=18501; MIN_KEY=sk-bench-1234
taskset -c 1 .venv/bin/sluice mock-upstream --host 127.0.0.1 --port 18500 > $D/mock.log 2>&1 &
(cd bench && UPSTREAM_BASE=http://127.0.0.1:18500/v1 PROXY_KEYS=$MIN_KEY exec taskset -c 0 $BV/bin/uvicorn minimal_proxy:app --port $MIN_PORT --loop uvloop --http httptools --no-access-log --log-level warning > $D/min.log 2>&1) &
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
for p in $MIN_PORT "${PORTS[@]}"; do for j in $(seq 300); do curl -sf http://127.0.0.1:$p/health/live >/dev/null && break; sleep 0.2; done; done
stop_all() { pkill -f "port 1850"; pkill -f "port 1851"; pkill -f "minimal_proxy:app --port $MIN_PORT"; sleep 0.5; }
