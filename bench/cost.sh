#!/usr/bin/env bash
# Runs the cost benchmark (bench/cost.ts) against the sandbox with the built CLI. The build goes to
# a private folder (with the same package.json, bin/ and manifest), so a colleague's `npm run build`
# (which empties dist/) cannot pull the CLI away mid-benchmark.
#   bash bench/cost.sh [--rounds 5] [--nodes 200] [--pods 5000]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(bash scripts/setup-node.sh):$PATH"
[ -n "${RETAILOPS_BENCH_KEEP_ENV:-}" ] || eval "$(bash scripts/sandbox.sh env)"
OUT="$(mktemp -d /tmp/retailops-bench-cost.XXXXXX)"
trap 'rm -rf "$OUT"' EXIT
npx tsc -p tsconfig.build.json --outDir "$OUT/dist"
cp package.json "$OUT/"
cp -r bin "$OUT/"
ln -s "$PWD/node_modules" "$OUT/node_modules"
(cd "$OUT" && npx oclif manifest >/dev/null)
npx tsx bench/cost.ts --bin "$OUT/bin/run.js" "$@"
