#!/usr/bin/env bash
# The demo (README's first command): installs what is missing, builds, then
#   1. runs the proxyless gRPC demo (scripts/demo_grpc.sh): weftd in file mode
#      on examples/mesh, gRPC backends, and a gRPC client that reaches them only
#      through gRPC's own xDS resolver (xds:///greeter.default.svc.cluster.local:50051);
#   2. runs the shop demo (examples/shop/run.sh): weftd, five services and a
#      shopper, each behind a weft-proxy sidecar with its own SPIFFE
#      certificate, and prints a live account of where the shopper's purchases
#      went while the mesh's policies (canary, retries, rate limit, outlier
#      ejection, authorization, STRICT mTLS) do their work.
# Ctrl-C stops everything.
#   WEFT_DEMO_SECONDS=N shops for N seconds (default 20).
# Each part runs alone too: scripts/demo_grpc.sh, examples/shop/run.sh.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

scripts/install_deps.sh
echo "== building (the first build takes several minutes)"
scripts/build.sh release weftd weft-proxy weftctl shop-service greeter-server greeter-client >/dev/null
echo "== part 1 of 2: proxyless gRPC, routed by weftd over xDS"
scripts/demo_grpc.sh --no-setup
echo "== part 2 of 2: the shop, every workload behind a weft-proxy sidecar"
exec examples/shop/run.sh --seconds="${WEFT_DEMO_SECONDS:-20}"
