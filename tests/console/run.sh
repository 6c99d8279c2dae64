#!/usr/bin/env bash
# Runs the console's browser test (console_test.mjs) for CTest.
#   tests/console/run.sh PIPEBRIDGE_BINARY SCREENSHOT_DIR
# Needs node (>= 18, Debian 12's), npm and Debian's chromium; installs playwright-core from
# the committed package-lock.json into tests/console/node_modules (npm ci)
# when it is missing or out of date. A missing tool FAILS the test with a
# message: the console is not tested silently by nobody.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
chromium=${CHROMIUM:-/usr/bin/chromium}

fail() { echo "console test: $*" >&2; exit 1; }
command -v node >/dev/null || fail "node is not installed (Debian: apt-get install nodejs npm; scripts/deps.sh test does it)"
command -v npm >/dev/null || fail "npm is not installed (Debian: apt-get install npm; scripts/deps.sh test does it)"
[ -x "$chromium" ] || fail "$chromium is missing (Debian: apt-get install chromium; scripts/deps.sh test does it)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 18 ] || fail "node $(node --version) is too old: playwright-core needs node 18 or later"

# npm ci when node_modules does not hold what the lock file says
stamp="$here/node_modules/.package-lock.json"
if [ ! -f "$stamp" ] || ! cmp -s <(node -e 'const l=require(process.argv[1]);console.log(JSON.stringify(l.packages["node_modules/playwright-core"]?.version))' "$here/package-lock.json") \
                                  <(node -e 'const l=require(process.argv[1]);console.log(JSON.stringify(l.packages["node_modules/playwright-core"]?.version))' "$stamp"); then
  echo "console test: npm ci in $here" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci failed (is the npm registry reachable?)"
fi

node "$here/sha256_check.mjs" "$here/../../web/console/app.js"
exec node "$here/console_test.mjs" "$@"
