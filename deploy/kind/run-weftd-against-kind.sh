#!/usr/bin/env bash
# Runs weftd in Kubernetes mode against a real API server: creates a kind
# cluster, installs Weft's CRDs (deploy/crds/, or the minimal ones below when
# that directory does not exist yet) and the Gateway API HTTPRoute CRD,
# applies the greeter example, writes a kubeconfig for a dedicated
# service account with read/watch and status-write rights, and starts
# weftd --registry=kubernetes --kubeconfig=... on the host.
#
# Needs: docker (a running engine), kind, kubectl, and a built weftd
# (scripts/build.sh). Usage:
#   deploy/kind/run-weftd-against-kind.sh [BUILD_DIR]   (default: build/release)
# Environment: CLUSTER (default weft), KEEP_CLUSTER=1 to keep it afterwards.
#
# NOTE: written for issue 4 but not run there (no Docker engine in that
# environment); the fake API server tests cover the protocol.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${1:-$ROOT/build/release}"
CLUSTER="${CLUSTER:-weft}"
WORK="$(mktemp -d /tmp/weft-kind-XXXXXX)"
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.1.0}"

for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "run-weftd-against-kind: $tool is required" >&2; exit 1; }
done
docker info >/dev/null 2>&1 || { echo "run-weftd-against-kind: the Docker engine is not running" >&2; exit 1; }
WEFTD="$BUILD_DIR/server/weftd"
[[ -x "$WEFTD" ]] || { echo "run-weftd-against-kind: $WEFTD not built (scripts/build.sh)" >&2; exit 1; }

cleanup() {
  [[ -n "${WEFTD_PID:-}" ]] && kill "$WEFTD_PID" 2>/dev/null || true
  if [[ "${KEEP_CLUSTER:-0}" != 1 ]]; then kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --wait 120s
fi
KCTX="kind-$CLUSTER"
k() { kubectl --context "$KCTX" "$@"; }

# CRDs: Weft's own, then the Gateway API's HTTPRoute (standard channel).
if [[ -d "$ROOT/deploy/crds" ]]; then
  k apply -f "$ROOT/deploy/crds/"
else
  for kind_plural in Workload:workloads TrafficPolicy:trafficpolicies AuthorizationPolicy:authorizationpolicies \
                     RateLimitPolicy:ratelimitpolicies MTLSPolicy:mtlspolicies; do
    kind_name="${kind_plural%%:*}"; plural="${kind_plural##*:}"
    cat <<CRD | k apply -f -
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: $plural.weft.io}
spec:
  group: weft.io
  scope: Namespaced
  names: {kind: $kind_name, plural: $plural, singular: $(echo "$kind_name" | tr 'A-Z' 'a-z')}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
CRD
  done
fi
k apply -f "https://github.com/kubernetes-sigs/gateway-api/releases/download/$GATEWAY_API_VERSION/standard-install.yaml"
k wait --for=condition=Established crd --all --timeout=60s

# A service account for weftd with exactly what it needs: the same
# Namespace, ServiceAccount and RBAC as the in-cluster install (deploy/weftd/).
k apply -f "$ROOT/deploy/weftd/namespace.yaml" -f "$ROOT/deploy/weftd/serviceaccount.yaml" \
  -f "$ROOT/deploy/weftd/rbac.yaml"

# The example mesh, as kubectl applies it (the same YAML as file mode).
k apply -f "$ROOT/examples/mesh/greeter.yaml"

# A kubeconfig for the service account: the cluster's server and CA from
# kind's kubeconfig, a bound token (1 h).
SERVER="$(k config view --minify --raw -o jsonpath='{.clusters[0].cluster.server}')"
CA_DATA="$(k config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')"
TOKEN="$(k -n weft-system create token weftd --duration=1h)"
cat > "$WORK/kubeconfig" <<KC
apiVersion: v1
kind: Config
current-context: weftd
clusters:
- name: kind
  cluster: {server: "$SERVER", certificate-authority-data: "$CA_DATA"}
users:
- name: weftd
  user: {token: "$TOKEN"}
contexts:
- name: weftd
  context: {cluster: kind, user: weftd}
KC
chmod 600 "$WORK/kubeconfig"

ADMIN_PORT=15014
"$WEFTD" --registry=kubernetes --kubeconfig="$WORK/kubeconfig" --ca-dir="$WORK/ca" \
  --xds-addr=127.0.0.1:15012 --xds-plaintext-addr=127.0.0.1:15010 --admin-addr=127.0.0.1:$ADMIN_PORT \
  >"$WORK/weftd.log" 2>&1 &
WEFTD_PID=$!

for _ in $(seq 1 60); do
  curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
  sleep 1
done
curl -fsS "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null || { cat "$WORK/weftd.log"; exit 1; }
echo "weftd is in sync with kind cluster $CLUSTER; services:"
curl -fsS "http://127.0.0.1:$ADMIN_PORT/api/v1/services"; echo

# A change through kubectl reaches weftd.
k -n default patch workload greeter-v1 --type=merge -p '{"spec":{"ports":{"grpc":50099}}}'
for _ in $(seq 1 20); do
  curl -fsS "http://127.0.0.1:$ADMIN_PORT/api/v1/services" | grep -q 50099 && { echo "endpoint move seen"; break; }
  sleep 0.5
done
# An invalid object gets Accepted=False with the field path.
cat <<'BAD' | k apply -f -
apiVersion: weft.io/v1alpha1
kind: Workload
metadata: {name: broken, namespace: default}
spec: {address: not-an-ip, ports: {grpc: 70000}}
BAD
sleep 2
k -n default get workload broken -o jsonpath='{.status.conditions}'; echo
echo "weftd log: $WORK/weftd.log"
