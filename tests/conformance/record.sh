#!/usr/bin/env bash
# Re-record every capture of tests/conformance/captures/ with the real clients, each against
# `sluice mock-upstream` behind the recording proxy (capture.py). Needs Node/npm, the repo's
# .venv, and network access to npm and PyPI for the recorder-only clients.
#   bash tests/conformance/record.sh            # every case
#   bash tests/conformance/record.sh codex      # the cases whose name starts with "codex"
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
HERE="$ROOT/tests/conformance"
PY="$ROOT/.venv/bin/python"
ONLY="${1:-}"
make -C "$ROOT" --no-print-directory node-clients
(cd "$HERE/node" && npm install --no-audit --no-fund --silent)
LCVENV="$ROOT/.venv-recorders"
[ -x "$LCVENV/bin/python" ] || python3 -m venv "$LCVENV"
"$LCVENV/bin/pip" install --quiet "langchain-anthropic==1.7.10" "openai>=1.40"
export PATH="$ROOT/tests/clients/node_modules/.bin:$PATH"
CC_VERSION="$(node -p "require('$ROOT/tests/clients/package.json').dependencies['@anthropic-ai/claude-code']")"
CX_VERSION="$(node -p "require('$ROOT/tests/clients/package.json').dependencies['@openai/codex']")"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
# No telemetry, update checks or error reports: the clients reach only the proxy.
export DISABLE_TELEMETRY=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 \
  DISABLE_ERROR_REPORTING=1

capture() {  # capture CLIENT CASE VERSION [capture.py OPTIONS] -- COMMAND...
  local client="$1" case="$2" version="$3" opts=()
  shift 3
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  [[ -z "$ONLY" || "$client-$case" == "$ONLY"* ]] || return 0
  echo "== $client-$case" >&2
  (cd "$ROOT" && PYTHONPATH="$ROOT" "$PY" -m tests.conformance.capture \
    --client "$client" --case "$case" --version "$version" "${opts[@]}" -- "$@") || true
}

claude_home() {  # a fresh HOME; $1=with-agent adds a "mock" subagent (the mock model names it)
  local home="$WORK/claude-$RANDOM"
  mkdir -p "$home/.claude/agents"
  if [ "${1:-}" = with-agent ]; then
    printf -- '---\nname: mock\ndescription: Looks things up.\n---\nYou look things up.\n' \
      > "$home/.claude/agents/mock.md"
  fi
  echo "$home"
}

CC='ANTHROPIC_BASE_URL=$CAPTURE_BASE_URL ANTHROPIC_API_KEY=sk-capture-dummy exec claude'
HOME="$(claude_home)" capture claude-code default "$CC_VERSION" -- \
  sh -c "$CC -p 'List the files here and say what they are.'"
# The mock model calls the first tool (Agent) at every turn, so subagents spawn subagents
# without end: keep the first 8 requests (the parent's two, then subagents' own).
HOME="$(claude_home with-agent)" capture claude-code subagent "$CC_VERSION" --max-requests 8 -- \
  sh -c "git init -q . && git -c user.email=a@b -c user.name=a commit -q --allow-empty -m init && $CC -p 'Ask the mock agent to look up the weather.'"
HOME="$(claude_home)" capture claude-code stream-json "$CC_VERSION" -- \
  sh -c "$CC -p --output-format stream-json --verbose 'List the files here.'"
HOME="$(claude_home)" capture claude-code custom-model "$CC_VERSION" -- \
  sh -c "$CC -p --model agent-mock 'List the files here.'"

CODEX_HOME="$WORK/codex"
mkdir -p "$CODEX_HOME"
CX='cat > $CODEX_HOME/config.toml <<TOML
model = "agent-mock"
model_provider = "sluice"
check_for_update_on_startup = false
[analytics]
enabled = false
[model_providers.sluice]
name = "Sluice"
base_url = "$CAPTURE_BASE_URL/v1"
env_key = "SLUICE_API_KEY"
wire_api = "responses"
TOML
exec codex exec --skip-git-repo-check "List the files here and say what they are."'
HOME="$WORK" CODEX_HOME="$CODEX_HOME" SLUICE_API_KEY=sk-capture-dummy \
  capture codex exec "$CX_VERSION" -- sh -c "$CX"

capture cursor-style chat-tools openai-python -- "$LCVENV/bin/python" "$HERE/cursor_style.py"
for method in json_schema function_calling; do
  capture langchain-anthropic "structured-$method" 1.7.10 -- \
    "$LCVENV/bin/python" "$HERE/langchain_structured.py" "$method"
done
AI_VERSION="$(node -p "require('$HERE/node/package.json').dependencies.ai")"
for api in openai openai-chat anthropic; do
  capture vercel-ai-sdk "generate-object-$api" "$AI_VERSION" -- node "$HERE/node/structured.mjs" "$api"
done
