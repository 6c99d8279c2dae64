#!/usr/bin/env bash
# Installs the Debian 12 packages pipebridge needs to build, run and test,
# when any is missing. Used by `make run`, `make test` and .ci/run.
# Usage: scripts/deps.sh [build|test]
set -euo pipefail

build_pkgs=(gcc make cmake pkg-config libc6-dev zlib1g-dev libmicrohttpd-dev libsqlite3-dev libssl-dev libjansson-dev libcurl4-openssl-dev)
test_pkgs=(libcmocka-dev clang libclang-rt-14-dev python3 awscli python3-boto3 chromium)

want=("${build_pkgs[@]}")
if [ "${1:-build}" = test ]; then
  want+=("${test_pkgs[@]}")
  # the console's browser test (tests/console) runs node and npm: Debian's, unless
  # some other node (NodeSource's bundles npm) is installed already
  command -v node >/dev/null || want+=(nodejs)
  command -v npm >/dev/null || want+=(npm)
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=
if [ "$(id -u)" != 0 ]; then
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
