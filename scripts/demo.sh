#!/usr/bin/env bash
# The main job, end to end on the local sandbox: scaffold a project, build its images through the
# Docker Engine (with their SBOMs and SLSA provenance), push them, scan them for known
# vulnerabilities, sign them and attach the attestations, deploy them through the supply-chain
# policy, then release a new version of catalog by canary with analysis on real metrics. Runs on a fresh machine (installs Node 24, the dependencies and
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

# The OSV database: this machine has no internet, so instead of OSV's npm zip the demo uses a folder
# with one record it writes, a made-up vulnerability (DEMO-2026-0001) in a package version the
# services really lock (prom-client 15.1.3), rated critical.
mkdir -p .retailops/osv
cat > .retailops/osv/DEMO-2026-0001.json <<JSON
{"schema_version": "1.6.0", "id": "DEMO-2026-0001", "aliases": ["CVE-2099-0001"],
 "modified": "$(date -u +%Y-%m-%dT%H:%M:%SZ)", "summary": "A made-up vulnerability for the demo",
 "affected": [{"package": {"ecosystem": "npm", "name": "prom-client"}, "versions": ["15.1.3"]}],
 "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}
JSON
sed -i 's#vulnerabilityDatabase: .retailops/osv-npm.zip#vulnerabilityDatabase: .retailops/osv#' retailops.yaml

step "Keys, build (with SBOMs and provenance), push"
retailops keys generate
retailops build --base-image "$RETAILOPS_BASE_IMAGE"
retailops push

step "Scan the images' SBOMs against the OSV database (table; --sarif for code scanning)"
retailops scan --sarif scan.sarif

step "Sign, attach the SBOM and provenance attestations, verify"
retailops sign
retailops verify

step "Deploy: the supply-chain policy refuses the critical vulnerability (exit 15, nothing applied)"
refused=0
retailops deploy || refused=$?
if [ "$refused" -ne 15 ]; then echo "expected the deploy to be refused with exit 15, got $refused" >&2; exit 1; fi

step "Waive it (reviewed, with a reason and an expiry), then the first release (rolling)"
{
  echo "waivers:"
  for s in $(ls services | grep -v -e lib -e node_modules -e '\.'); do
    echo "  - {id: CVE-2099-0001, service: $s, reason: \"demo: the metrics endpoint is internal only\", expires: $(date -u -d '+30 days' +%Y-%m-%d)}"
  done
} > .retailops/waivers.yaml
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
