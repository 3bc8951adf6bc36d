#!/usr/bin/env bash
# Lints docs/openapi.yaml with the pinned @redocly/cli (scripts/setup runs npm ci).
# Exit 77 (skipped) when Node is older than the linter needs.
set -euo pipefail
cd "$1"
if ! command -v node >/dev/null; then echo "node is not installed (scripts/setup installs it)"; exit 1; fi
if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>20||(a==20&&b>=19)?0:1)'; then
  echo "skipped: @redocly/cli 2.77.0 needs Node >= 20.19, this is $(node --version)"; exit 77
fi
if [ ! -x node_modules/.bin/redocly ]; then echo "node_modules/.bin/redocly is missing: run npm ci (scripts/setup does)"; exit 1; fi
exec node_modules/.bin/redocly lint --max-problems 50 docs/openapi.yaml
