#!/usr/bin/env bash
# Sluice benchmark, one command:   bash bench/run.sh        (QUICK=1 for a short check)
#
#   1. installs what is missing: wrk (apt-get), a venv for the minimal
#      pass-through and one for the LiteLLM proxy, both outside the repo
#      under $VENVS (default $HOME/.cache/sluice-bench);
#   2. bench_runner.py: starts `sluice mock-upstream` (core 1), then each system
#      pinned to core 0 (direct, minimal pass-through, Sluice, LiteLLM), drives
#      wrk from core 1, records RPS, latency, CPU/request, RSS, start-up time,
#      then a 100k-request memory soak of Sluice;
#   3. report.py: writes the tables into docs/benchmarks.md (between markers)
#      and into $OUT/report.md.
# All load goes to 127.0.0.1 and is bounded by wrk's -d; every server is
# stopped by its PID at the end (also on Ctrl-C).
#
# Knobs (environment, defaults in brackets):
#   QUICK=1          short run: DURATION=3 WARMUP=2 REPEATS=1 CONCURRENCY=1,16
#                    SOAK_REQUESTS=10000 STARTUP_TRIALS=1 PROFILE=0, and docs/ is left alone
#   DURATION [10]    seconds per measured point      WARMUP [5]  seconds of warm-up per mode
#   REPEATS [2]      repeats (each restarts every system)
#   SYSTEMS [direct,minimal,sluice,litellm]          CONCURRENCY [1,16,64]
#   SOAK_REQUESTS [100000]  Sluice memory soak (0 = none)   STARTUP_TRIALS [3]
#   PROFILE [1]      py-spy profile of Sluice under load (its own phase, after the measured points)
#   OUT [bench/results/<timestamp>]   DOC [docs/benchmarks.md; empty with QUICK=1]
#   VENVS [$HOME/.cache/sluice-bench]  LITELLM_SPEC [litellm[proxy]]
#   SLUICE_BIN [<repo>/.venv/bin/sluice]  MOCK_CMD [{sluice} mock-upstream --host {host} --port {port}]
#   SLUICE_SRC [HEAD]  git revision whose src/ is snapshotted and benchmarked ("worktree" = live tree);
#                      the snapshot keeps edits made during the run out of the measurement
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"

CMDLINE=""
for v in QUICK DURATION WARMUP REPEATS SYSTEMS CONCURRENCY SOAK_REQUESTS STARTUP_TRIALS PROFILE SLUICE_SRC OUT DOC MOCK_CMD SLUICE_BENCH_CONFIG; do
  if [ -n "${!v+x}" ]; then CMDLINE+="$v=$(printf %q "${!v}") "; fi
done
CMDLINE+="bash bench/run.sh"

if [ "${QUICK:-0}" = "1" ]; then
  : "${DURATION:=3}" "${WARMUP:=2}" "${REPEATS:=1}" "${CONCURRENCY:=1,16}"
  : "${SOAK_REQUESTS:=10000}" "${STARTUP_TRIALS:=1}" "${PROFILE:=0}" "${DOC=}"
fi
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-5}
REPEATS=${REPEATS:-2}
SYSTEMS=${SYSTEMS:-direct,minimal,sluice,litellm}
CONCURRENCY=${CONCURRENCY:-1,16,64}
SOAK_REQUESTS=${SOAK_REQUESTS:-100000}
STARTUP_TRIALS=${STARTUP_TRIALS:-3}
PROFILE=${PROFILE:-1}
OUT=${OUT:-$HERE/results/$(date +%Y%m%d-%H%M%S)}
DOC=${DOC-$REPO/docs/benchmarks.md}
VENVS=${VENVS:-$HOME/.cache/sluice-bench}
BENCH_VENV="$VENVS/bench"
LITELLM_VENV="$VENVS/litellm"
LITELLM_SPEC=${LITELLM_SPEC:-'litellm[proxy]'}
SLUICE_BIN=${SLUICE_BIN:-$REPO/.venv/bin/sluice}
SLUICE_SRC=${SLUICE_SRC:-HEAD}
MOCK_CMD=${MOCK_CMD:-'{sluice} mock-upstream --host {host} --port {port}'}

# ---- tools and venvs (reused when present)
if ! command -v wrk >/dev/null; then
  echo "installing wrk ..."
  apt-get update -qq && apt-get install -y -qq wrk
fi
command -v taskset >/dev/null || { apt-get update -qq && apt-get install -y -qq util-linux; }
if ! "$BENCH_VENV/bin/python" -c 'import uvicorn, uvloop, httptools, aiohttp, orjson' 2>/dev/null \
   || [ ! -x "$BENCH_VENV/bin/py-spy" ]; then
  echo "creating $BENCH_VENV ..."
  python3 -m venv "$BENCH_VENV"
  "$BENCH_VENV/bin/pip" install -q --upgrade pip
  "$BENCH_VENV/bin/pip" install -q uvicorn uvloop httptools aiohttp orjson py-spy
fi
case ",$SYSTEMS," in
  *,litellm,*)
    if [ ! -x "$LITELLM_VENV/bin/litellm" ]; then
      echo "creating $LITELLM_VENV (pip install '$LITELLM_SPEC') ..."
      python3 -m venv "$LITELLM_VENV"
      "$LITELLM_VENV/bin/pip" install -q --upgrade pip
      "$LITELLM_VENV/bin/pip" install -q "$LITELLM_SPEC"
    fi ;;
esac
case ",$SYSTEMS,$MOCK_CMD" in
  *,sluice,*|*'{sluice}'*)
    if [ ! -x "$SLUICE_BIN" ]; then
      echo "no Sluice at $SLUICE_BIN: install it first (e.g. .venv/bin/pip install -e .) or set SLUICE_BIN" >&2
      exit 1
    fi ;;
esac

# ---- run and report
mkdir -p "$OUT"
echo "results -> $OUT"
BENCH_COMMAND="$CMDLINE" "$BENCH_VENV/bin/python" "$HERE/bench_runner.py" \
  --systems "$SYSTEMS" --concurrency "$CONCURRENCY" \
  --duration "$DURATION" --warmup "$WARMUP" --repeats "$REPEATS" \
  --soak-requests "$SOAK_REQUESTS" --startup-trials "$STARTUP_TRIALS" \
  $([ "$PROFILE" = 1 ] && echo --profile) \
  --sluice-bin "$SLUICE_BIN" --sluice-src "$SLUICE_SRC" --mock-cmd "$MOCK_CMD" \
  --bench-venv "$BENCH_VENV" --litellm-venv "$LITELLM_VENV" \
  --out "$OUT" 2>&1 | tee "$OUT/runner.log" || rc=$?
rc=${rc:-0}
[ "$rc" = 0 ] || echo "bench_runner.py exited with $rc; reporting what it saved" >&2
[ -f "$OUT/results.json" ] || exit "$rc"

"$BENCH_VENV/bin/python" "$HERE/report.py" "$OUT/results.json" > "$OUT/report.md"
echo "report: $OUT/report.md"
if [ -n "$DOC" ]; then
  "$BENCH_VENV/bin/python" "$HERE/report.py" "$OUT/results.json" --doc "$DOC"
fi
exit "$rc"
