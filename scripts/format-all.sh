#!/usr/bin/env bash
# Formats the whole tree with Prettier (.prettierrc) once, regenerates the generated files and
# deletes .prettier-pending, after which .ci/run checks formatting (npm run format:check).
# Run it on main as the last commit of a session, when no other branch still edits the files
# (a mass reformat conflicts with every open branch). `--commit` also commits the result.
# Safe to run again: on a formatted tree it changes nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$(bash scripts/setup-node.sh | tail -1):$PATH"

commit=false
[ "${1:-}" = "--commit" ] && commit=true
if $commit && [ -n "$(git status --porcelain)" ]; then
  echo "format-all: the work tree has uncommitted changes; commit or stash them first (--commit commits only the formatting)" >&2
  exit 2
fi

npm run format
# A second pass: Prettier's layout of a long member chain can change once more on its own output
# (test/unit/dr/aws-backup.test.ts does), and the check below must find a settled tree.
npm run format
rm -f .prettier-pending
npm run build
# Formatting must change nothing but layout: the type check, the lint and the unit tests still pass.
npm run format:check
npm run lint
npx vitest run --project unit

if $commit; then
  git add -A
  git commit -q -m "Format the tree with Prettier (scripts/format-all.sh): printWidth 120, no semicolons, single quotes; .ci/run checks formatting from now on" 
  git log --oneline -1
else
  echo "format-all: done; review with git diff --stat, then commit (with .prettier-pending deleted)"
fi
