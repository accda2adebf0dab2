#!/usr/bin/env bash
# The main job, end to end on the local sandbox: scaffold a project, build its images through the
# Docker Engine, push and sign them, deploy them, then release a new version of catalog by canary
# with analysis on real metrics. Runs on a fresh machine (installs Node 24, the dependencies and
# the sandbox); safe to run again. RETAILOPS_DEMO_DIR chooses where the project goes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
NODE_BIN="$(bash scripts/setup-node.sh)"
export PATH="$NODE_BIN:$PATH"
npm install --no-audit --no-fund --loglevel=error
npm run build
bash scripts/sandbox.sh up
eval "$(bash scripts/sandbox.sh env)"

DEMO="${RETAILOPS_DEMO_DIR:-$HOME/.cache/retailops-demo}"
retailops() { node "$ROOT/bin/run.js" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
# A throwaway passphrase for the demo's signing key; retailops never prints it.
export COSIGN_PASSWORD="${COSIGN_PASSWORD:-demo-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')}"

step "Scaffold a project in $DEMO"
# A fresh start: the demo owns its folder and its namespace (an earlier run's rollout may be on record).
rm -rf "$DEMO"
kubectl --context "$RETAILOPS_KUBE_CONTEXT" delete namespace demo --ignore-not-found --wait=true
retailops init --directory "$DEMO" --project demo --kube-context "$RETAILOPS_KUBE_CONTEXT" --registry "$RETAILOPS_REGISTRY" --yes
cd "$DEMO"
(cd services && npm ci --no-audit --no-fund --loglevel=error)
retailops doctor || true

step "Keys, build, push, sign, verify"
retailops keys generate
retailops build --base-image "$RETAILOPS_BASE_IMAGE"
retailops push
retailops sign
retailops verify

step "First release (rolling): nothing runs yet, so there is nothing to compare a canary with"
retailops deploy

step "A new catalog release, by canary: 20 %, analysis, 50 %, analysis, 100 %"
echo "// demo release $(date -u +%Y-%m-%dT%H:%M:%SZ)" >> services/catalog/src/app.ts
retailops build catalog --base-image "$RETAILOPS_BASE_IMAGE"
retailops push catalog
retailops sign catalog
node "$ROOT/scripts/demo/traffic.mjs" --project "$DEMO" --service catalog --namespace demo &
traffic=$!
status=0
retailops deploy catalog --canary --steps "20,analysis:3,50,analysis:3,100" || status=$?
# The helper stops by itself when the rollout ends; a release refused before it began has none.
kill "$traffic" 2>/dev/null || true
wait "$traffic" 2>/dev/null || true
retailops rollout history catalog
case "$status" in
  0) step "catalog promoted: the canary passed its analysis against stable" ;;
  *) step "catalog was not promoted (exit $status): see the reason above"; exit "$status" ;;
esac
