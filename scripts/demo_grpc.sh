#!/usr/bin/env bash
# The proxyless gRPC demo: installs what is missing, builds,
# then runs weftd in file mode on examples/mesh, two greeter backends and a
# proxyless gRPC client that finds them only through xDS
# (xds:///greeter.default.svc.cluster.local:50051). Ctrl-C stops everything.
#   --no-setup skips installing and building (scripts/demo.sh has done both).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${root}"

if [[ "${1:-}" != --no-setup ]]; then
  scripts/install_deps.sh
  echo "== building (first build takes a few minutes)"
  scripts/build.sh release weftd greeter-server greeter-client >/dev/null
fi
bin="${root}/build/release"

xds_port="${WEFT_DEMO_XDS_PORT:-15010}"
tls_port="${WEFT_DEMO_TLS_PORT:-15012}"
admin_port="${WEFT_DEMO_ADMIN_PORT:-15014}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "${pid}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "${work}"
}
trap cleanup EXIT INT TERM

cp -r examples/mesh "${work}/mesh"

echo "== starting weftd (file mode, config dir ${work}/mesh)"
"${bin}/server/weftd" --config-dir="${work}/mesh" --ca-dir="${work}/ca" \
  --xds-addr="127.0.0.1:${tls_port}" --xds-plaintext-addr="127.0.0.1:${xds_port}" \
  --admin-addr="127.0.0.1:${admin_port}" >"${work}/weftd.log" 2>&1 &
pids+=($!)
echo "== starting greeter backends: greeter-v1 on 127.0.0.1:50061, greeter-v2 on 127.0.0.1:50062"
"${bin}/examples/greeter-server" --addr=127.0.0.1:50061 --name=greeter-v1 >"${work}/v1.log" 2>&1 &
pids+=($!)
"${bin}/examples/greeter-server" --addr=127.0.0.1:50062 --name=greeter-v2 >"${work}/v2.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:${admin_port}/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done

echo "== services weftd knows (GET /api/v1/services):"
curl -s "http://127.0.0.1:${admin_port}/api/v1/services" | grep -E '"(host|address|port)"' | sed 's/^/   /'

echo "== the client calls xds:///greeter.default.svc.cluster.local:50051 (only greeter-v1 is in the mesh)"
"${bin}/examples/greeter-client" --xds-server="127.0.0.1:${xds_port}" --count=4 --interval=250ms 2>/dev/null

echo "== adding greeter-v2 to the mesh by editing the manifest (weftd picks it up live)"
cat >>"${work}/mesh/greeter.yaml" <<'YAML'
---
apiVersion: weft.io/v1alpha1
kind: Workload
metadata: {name: greeter-v2, namespace: default, labels: {app: greeter, version: v2}}
spec: {address: 127.0.0.1, ports: {grpc: 50062}, serviceAccount: greeter}
YAML
sleep 1
"${bin}/examples/greeter-client" --xds-server="127.0.0.1:${xds_port}" --count=6 --interval=250ms 2>/dev/null

echo "== proxies connected to weftd (GET /api/v1/proxies) while a client streams:"
"${bin}/examples/greeter-client" --xds-server="127.0.0.1:${xds_port}" --count=8 --interval=250ms >/dev/null 2>&1 &
client=$!
sleep 1
curl -s "http://127.0.0.1:${admin_port}/api/v1/proxies" | grep -E '"(id|status|versionAcked)"' | sed 's/^/   /'
wait "${client}" || true

echo "== a broken manifest is reported and traffic keeps flowing"
printf 'apiVersion: v1\nkind: Service\nmetadata: {name: broken}\nspec:\n  ports: [{port: "eighty"}]\n' >"${work}/mesh/broken.yaml"
sleep 1
curl -s "http://127.0.0.1:${admin_port}/api/v1/policies" | grep -E '"(source|field|reason)"' | sed 's/^/   /'
"${bin}/examples/greeter-client" --xds-server="127.0.0.1:${xds_port}" --count=2 --interval=250ms 2>/dev/null

echo "== demo done. weftd's log: "
sed 's/^/   /' "${work}/weftd.log" | tail -n 15
