#!/usr/bin/env bash
# Runs the shop demo from built binaries: weftd in file mode on a copy of
# examples/shop/mesh, eight shop-service processes and a shopper, each behind
# its own weft-proxy, every workload on its own loopback address (like pods):
#
#   127.0.10.1   weftd        xDS+CA (TLS) :15012, admin :15014
#   127.0.10.2   frontend-0
#   127.0.10.3   orders-v1-0     127.0.10.4  orders-v2-0
#   127.0.10.5   inventory-0     127.0.10.6  inventory-1 (flaky: every 3rd answer fails)
#   127.0.10.7   payments-0      127.0.10.8  payments-1  (broken: every answer fails)
#   127.0.10.9   shipping-0
#   127.0.10.10  shopper-0 (the customer)
#
# On each workload address: the app on :8080, its sidecar's inbound :15006
# (the workload port in the manifests), outbound :15001, admin :15000.
#
# usage: run.sh [--seconds=N] [--summary=FILE] [--bin=DIR] [--keep=DIR]
#   WEFT_SHOP_NET=127.0.11 moves everything to another /24 of loopback.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "${here}/../.." && pwd)"
seconds=20
summary=""
bin="${root}/build/release"
keep=""
for arg in "$@"; do
  case "${arg}" in
    --seconds=*) seconds="${arg#*=}" ;;
    --summary=*) summary="${arg#*=}" ;;
    --bin=*) bin="${arg#*=}" ;;
    --keep=*) keep="${arg#*=}" ;;
    *) echo "run.sh: unknown argument ${arg}" >&2; exit 2 ;;
  esac
done
net="${WEFT_SHOP_NET:-127.0.10}"
weftd="${bin}/server/weftd"
proxy="${bin}/proxy/weft-proxy"
app="${bin}/examples/shop-service"
weftctl="${bin}/cli/weftctl"  # optional: shows what each sidecar holds
for b in "${weftd}" "${proxy}" "${app}"; do
  [[ -x "${b}" ]] || { echo "run.sh: ${b} is not built (scripts/build.sh release)" >&2; exit 1; }
done

work="${keep:-$(mktemp -d)}"
mkdir -p "${work}"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "${pid}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [[ -n "${keep}" ]] || rm -rf "${work}"
}
trap cleanup EXIT INT TERM

mkdir -p "${work}/mesh" "${work}/logs" "${work}/tokens"
for f in "${here}"/mesh/*.yaml; do
  sed "s/127\.0\.10\./${net}./g" "${f}" >"${work}/mesh/$(basename "${f}")"
done

"${weftd}" --config-dir="${work}/mesh" --ca-dir="${work}/ca" --xds-addr="${net}.1:15012" \
  --admin-addr="${net}.1:15014" >"${work}/logs/weftd.log" 2>&1 &
pids+=($!)
for _ in $(seq 150); do
  curl -fs "http://${net}.1:15014/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "http://${net}.1:15014/readyz" >/dev/null || { echo "weftd did not start:" >&2; cat "${work}/logs/weftd.log" >&2; exit 1; }

# workload name, address, service account, app flags...
start_workload() {
  local name="$1" ip="$2" sa="$3"
  shift 3
  echo "${sa}-demo-token" >"${work}/tokens/${sa}"
  chmod 600 "${work}/tokens/${sa}"
  if [[ "${sa}" != shopper ]]; then
    "${app}" --name="${name}" --addr="${ip}:8080" --proxy="${ip}:15001" "$@" >"${work}/logs/${name}.log" 2>&1 &
    pids+=($!)
  fi
  "${proxy}" --xds="${net}.1:15012" --xds-server-name=weftd.weft-system.svc --namespace=shop --service-account="${sa}" \
    --token-file="${work}/tokens/${sa}" --trust-bundle="${work}/ca/root-cert.pem" \
    --outbound-addr="${ip}:15001" --inbound-addr="${ip}:15006" --admin-addr="${ip}:15000" \
    --app-addr="${ip}:8080" >"${work}/logs/${name}-proxy.log" 2>&1 &
  pids+=($!)
}
start_workload frontend-0 "${net}.2" frontend --role=frontend
start_workload orders-v1 "${net}.3" orders --role=orders
start_workload orders-v2 "${net}.4" orders --role=orders
start_workload inventory-0 "${net}.5" inventory --role=inventory
start_workload inventory-1 "${net}.6" inventory --role=inventory --fail-every=3
start_workload payments-0 "${net}.7" payments --role=payments
start_workload payments-1 "${net}.8" payments --role=payments --fail-every=1
start_workload shipping-0 "${net}.9" shipping --role=shipping
start_workload shopper-0 "${net}.10" shopper

for n in 2 3 4 5 6 7 8 9 10; do
  for _ in $(seq 200); do
    curl -fs "http://${net}.${n}:15000/ready" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fs "http://${net}.${n}:15000/ready" >/dev/null || {
    echo "the sidecar on ${net}.${n} is not ready; its log:" >&2
    tail -n 20 "${work}"/logs/*-proxy.log >&2
    exit 1
  }
done

cat <<EOF
== the shop is open: 9 workloads, each behind a weft-proxy with its own SPIFFE certificate
   (weftd admin API: http://${net}.1:15014/api/v1/proxies; logs in ${work}/logs)
   policies (examples/shop/mesh/policies.yaml): STRICT mTLS mesh-wide; orders 90% v1 / 10% v2;
   retries on inventory (inventory-1 fails every 3rd call); inventory limited to 15 req/s per instance;
   payments-1 (always failing) ejected after 3 failures; only orders may call payments.
EOF
if [[ -x "${weftctl}" ]]; then
  echo "== weftctl proxies: what weftd sent each sidecar and what it acknowledged"
  for _ in $(seq 50); do  # until every sidecar has acknowledged its configuration
    "${weftctl}" --admin-addr="${net}.1:15014" proxies 2>/dev/null | grep -q 'STALE\|NACKED' || break
    sleep 0.1
  done
  "${weftctl}" --admin-addr="${net}.1:15014" proxies | sed 's/^/   /' || true
fi
cat <<EOF
== the shopper buys for ${seconds} seconds (20 a second, and a flash sale of 40 at once in second 3):
EOF
"${app}" --role=shopper --proxy="${net}.10:15001" --seconds="${seconds}" --rps=20 \
  ${summary:+--summary="${summary}"}

metric() {  # sidecar address, metric name prefix -> sum of its samples
  curl -fs "http://$1:15000/stats/prometheus" 2>/dev/null |
    awk -v m="$2" 'index($0, m) == 1 { s += $NF } END { printf "%d", s }'
}
retries=$(metric "${net}.3" weft_proxy_upstream_retries_total)
retries=$((retries + $(metric "${net}.4" weft_proxy_upstream_retries_total)))
limited=$(( $(metric "${net}.5" weft_proxy_ratelimited_total) + $(metric "${net}.6" weft_proxy_ratelimited_total) ))
denied=$(( $(metric "${net}.7" weft_proxy_rbac_denied_total) + $(metric "${net}.8" weft_proxy_rbac_denied_total) ))
ejections=$(( $(metric "${net}.3" weft_proxy_outlier_ejections_total) + $(metric "${net}.4" weft_proxy_outlier_ejections_total) ))
plain=$(curl -s -o /dev/null -w '%{http_code}' "http://${net}.7:15006/pay" 2>/dev/null || true)
cat <<EOF
== what the sidecars did (from their /stats/prometheus):
   retries by the orders sidecars: ${retries}          requests the inventory sidecars rate-limited: ${limited}
   payments instances ejected by the orders sidecars: ${ejections}   calls the payments sidecars refused (RBAC): ${denied}
   a plaintext request to payments-0's sidecar (STRICT mTLS): $([[ "${plain}" == 000 ]] && echo "refused" || echo "answered ${plain}")
EOF
