#!/usr/bin/env bash
# The demo (README's first command): installs what is missing, builds, then
# runs the shop demo (examples/shop/run.sh): weftd, five services and a
# shopper, each behind a weft-proxy sidecar with its own SPIFFE certificate,
# and prints a live account of where the shopper's purchases went while the
# mesh's policies (canary, retries, rate limit, outlier ejection,
# authorization, STRICT mTLS) do their work. Ctrl-C stops everything.
#   WEFT_DEMO_SECONDS=N shops for N seconds (default 20).
# The proxyless gRPC demo (gRPC's own xDS resolver against weftd) is
# scripts/demo_grpc.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

scripts/install_deps.sh
echo "== building (the first build takes several minutes)"
scripts/build.sh release weftd weft-proxy shop-service >/dev/null
exec examples/shop/run.sh --seconds="${WEFT_DEMO_SECONDS:-20}"
