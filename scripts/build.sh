#!/usr/bin/env bash
# Configures and builds one configuration. usage: build.sh [release|asan] [targets...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
preset="${1:-release}"
shift || true

# ccache keys on paths relative to the checkout, so clones in other folders
# (CI) reuse the cache.
export CCACHE_BASEDIR="${root}"
export CCACHE_NOHASHDIR=1
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"

cd "${root}"
cmake --preset "${preset}" >/dev/null
if (($# > 0)); then
  cmake --build --preset "${preset}" -- "$@"
else
  cmake --build --preset "${preset}"
fi
