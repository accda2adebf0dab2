#!/usr/bin/env bash
# The whole test suite on a fresh machine: Node 24, dependencies, the build, the sandbox, then
# unit and integration tests. Safe to run again: every step is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
NODE_BIN="$(bash scripts/setup-node.sh)"
export PATH="$NODE_BIN:$PATH"
npm ci --no-audit --no-fund --loglevel=error
# The bundled services carry their own dependencies (copied into their images).
(cd services && npm ci --no-audit --no-fund --loglevel=error)
npm run build
bash scripts/sandbox.sh up
eval "$(bash scripts/sandbox.sh env)"
npx vitest run --reporter=default --reporter=json --outputFile=.vitest-results.json "$@" || status=$?
node scripts/test-summary.mjs .vitest-results.json
exit "${status:-0}"
