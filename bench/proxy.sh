#!/usr/bin/env bash
# bench/proxy.sh: weft-proxy's data path against a direct connection and
# nginx, with wrk on loopback (issue 7, "Benchmark"; issue 8 for the policy
# run). docs/benchmarks.md has the method and the figures.
#
# One invocation measures, with 64 connections and then with 1 connection in
# a closed loop (wrk -c1 -t1):
#   direct    wrk -> upstream (nginx answering a small static body)
#   weft      wrk -> one weft-proxy (outbound, plaintext pass-through) -> upstream
#   nginx     wrk -> nginx as a reverse proxy (same worker count) -> upstream
#   pair      wrk -> client sidecar -> mTLS -> server sidecar -> upstream
#   policies  the pair with RBAC (ALLOW the client's SPIFFE ID), a local rate
#             limit far above the offered load and retries on 5xx configured
# and prints requests/s, p50, p99 per run, weft/nginx, what the pair adds over
# direct, and each weft-proxy's peak RSS (VmHWM).
#
# usage: bench/proxy.sh [--duration=10s] [--workers=1] [--wrk-threads=2] [--connections=64]
#                       [--build=build/release] [--keep]
# Needs wrk and nginx (installed with apt-get when missing and run as root;
# nothing else needs root). Builds nothing: run `scripts/build.sh release
# weftd weft-proxy` first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
duration=10s
workers=1
wrk_threads=2
connections=64
build="${root}/build/release"
keep=0
for arg in "$@"; do
  case "${arg}" in
    --duration=*) duration="${arg#*=}" ;;
    --workers=*) workers="${arg#*=}" ;;
    --wrk-threads=*) wrk_threads="${arg#*=}" ;;
    --connections=*) connections="${arg#*=}" ;;
    --build=*) build="${arg#*=}" ;;
    --keep) keep=1 ;;
    *) echo "bench/proxy.sh: unknown argument ${arg}" >&2; exit 2 ;;
  esac
done

weftd_bin="${build}/server/weftd"
proxy_bin="${build}/proxy/weft-proxy"
for b in "${weftd_bin}" "${proxy_bin}"; do
  [[ -x "${b}" ]] || { echo "bench/proxy.sh: ${b} not built (scripts/build.sh release weftd weft-proxy)" >&2; exit 1; }
done

install_missing() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
  ((${#missing[@]} == 0)) && return
  echo "installing ${missing[*]} with apt-get" >&2
  local sudo=()
  ((EUID == 0)) || sudo=(sudo)
  "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
}
install_missing
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"

dir="$(mktemp -d /tmp/weft-bench-proxy-XXXXXX)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "${p}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if ((keep)); then echo "kept ${dir}" >&2; else rm -rf "${dir}"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# 127.0.0.2: the client workload (its sidecar only); 127.0.0.3: the server
# workload (the upstream app and its sidecar); 127.0.0.4: nginx as a proxy.
a_ip=127.0.0.2 b_ip=127.0.0.3 n_ip=127.0.0.4
xds_port=$(free_port) weftd_admin=$(free_port)
a_out=$(free_port) a_in=$(free_port) a_admin=$(free_port) a_app=$(free_port)
b_out=$(free_port) b_in=$(free_port) b_admin=$(free_port) b_app=$(free_port)
n_port=$(free_port)

wait_http() {  # url [expected-code] [seconds]
  local url=$1 want=${2:-200} secs=${3:-30} code
  for ((i = 0; i < secs * 10; ++i)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${url}" || true)
    [[ "${code}" == "${want}" ]] && return 0
    sleep 0.1
  done
  echo "bench/proxy.sh: ${url} did not answer ${want} (last: ${code}); logs in ${dir}" >&2
  keep=1
  exit 1
}

nginx_conf() {  # name listen body
  mkdir -p "${dir}/$1"
  cat >"${dir}/$1/nginx.conf" <<EOF
worker_processes ${workers};
daemon off;
pid ${dir}/$1/nginx.pid;
error_log ${dir}/$1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/$1;
  proxy_temp_path ${dir}/$1;
  fastcgi_temp_path ${dir}/$1;
  uwsgi_temp_path ${dir}/$1;
  scgi_temp_path ${dir}/$1;
  keepalive_requests 100000000;
  default_type text/plain;
  $3
  server {
    listen $2;
    location / { $4 }
  }
}
EOF
  "${nginx_bin}" -p "${dir}/$1" -c "${dir}/$1/nginx.conf" -e "${dir}/$1/error.log" &
  pids+=($!)
}

# The upstream: nginx answering 13 bytes from memory (one worker per proxy
# worker, so that it is never the bottleneck of a proxied run).
nginx_conf upstream "${b_ip}:${b_app}" "" 'return 200 "hello, world\n";'
# nginx as the reference proxy: HTTP/1.1 keep-alive to the upstream.
nginx_conf proxy "${n_ip}:${n_port}" \
  "upstream app { server ${b_ip}:${b_app}; keepalive 256; keepalive_requests 100000000; }" \
  'proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";'

# weftd in file mode with the two workloads and their tokens.
mkdir -p "${dir}/config"
cat >"${dir}/config/tokens.yaml" <<EOF
tokens:
- {token: a-secret, namespace: bench, serviceAccount: a}
- {token: b-secret, namespace: bench, serviceAccount: b}
EOF
echo a-secret >"${dir}/a.token"
echo b-secret >"${dir}/b.token"
cat >"${dir}/config/mesh.yaml" <<EOF
apiVersion: v1
kind: Service
metadata: {name: a, namespace: bench}
spec:
  selector: {app: a}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: b, namespace: bench}
spec:
  selector: {app: b}
  ports: [{name: http, port: 80}]
---
apiVersion: weft.io/v1alpha1
kind: Workload
metadata: {name: a-0, namespace: bench, labels: {app: a}}
spec: {address: ${a_ip}, ports: {http: ${a_in}}, serviceAccount: a}
---
apiVersion: weft.io/v1alpha1
kind: Workload
metadata: {name: b-0, namespace: bench, labels: {app: b}}
spec: {address: ${b_ip}, ports: {http: ${b_in}}, serviceAccount: b}
EOF
"${weftd_bin}" --config-dir="${dir}/config" --ca-dir="${dir}/ca" --xds-addr=127.0.0.1:${xds_port} \
  --admin-addr=127.0.0.1:${weftd_admin} >"${dir}/weftd.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:${weftd_admin}/readyz"

start_proxy() {  # sa ip out in admin app
  "${proxy_bin}" --xds=127.0.0.1:${xds_port} --namespace=bench --service-account="$1" \
    --token-file="${dir}/$1.token" --trust-bundle="${dir}/ca/root-cert.pem" --concurrency="${workers}" \
    --outbound-addr="$2:$3" --inbound-addr="$2:$4" --admin-addr="$2:$5" --app-addr="$2:$6" \
    >"${dir}/proxy-$1.log" 2>&1 &
  pids+=($!)
}
start_proxy a ${a_ip} ${a_out} ${a_in} ${a_admin} ${a_app}
a_pid=${pids[-1]}
start_proxy b ${b_ip} ${b_out} ${b_in} ${b_admin} ${b_app}
b_pid=${pids[-1]}
wait_http "http://${a_ip}:${a_admin}/ready"
wait_http "http://${b_ip}:${b_admin}/ready"

direct_url="http://${b_ip}:${b_app}/"
weft_url="http://${a_ip}:${a_out}/"
weft_host="${b_ip}:${b_app}"  # not a mesh service: passed through in plaintext
nginx_url="http://${n_ip}:${n_port}/"
pair_host="b.bench"           # the mesh service: mTLS to b's sidecar
wait_http "${direct_url}"
wait_http "${nginx_url}"
curl -sf -o /dev/null -H "Host: ${weft_host}" "${weft_url}"
wait_http_host() {  # url host code
  for ((i = 0; i < 300; ++i)); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -H "Host: $2" "$1" || true)" == "$3" ]] && return 0
    sleep 0.1
  done
  echo "bench/proxy.sh: $1 (Host $2) did not answer $3; logs in ${dir}" >&2
  keep=1
  exit 1
}
wait_http_host "${weft_url}" "${pair_host}" 200

# wrk's --latency output -> "rps p50_ms p99_ms errors"
run_wrk() {  # name conns threads url [host]
  local out="${dir}/wrk-$1-c$2.txt" hdr=()
  [[ -n "${5:-}" ]] && hdr=(-H "Host: $5")
  wrk -c"$2" -t"$3" -d"${duration}" --latency "${hdr[@]}" "$4" >"${out}" 2>&1
  awk '
    function ms(v) {
      if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
      if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
      if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
      return v + 0
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    $1 == "Requests/sec:" { rps = $2 }
    /Non-2xx or 3xx responses:/ { errors += $NF }
    /Socket errors:/ { for (i = 3; i <= NF; i += 2) errors += $(i + 1) + 0 }
    END { printf "%.0f %.3f %.3f %d\n", rps, p50, p99, errors }' "${out}"
}

declare -A rps p50 p99 errs
measure() {  # name conns threads url [host]
  local r
  r=($(run_wrk "$@"))
  rps[$1/$2]=${r[0]} p50[$1/$2]=${r[1]} p99[$1/$2]=${r[2]} errs[$1/$2]=${r[3]}
  printf '  %-9s c=%-3s %10s req/s  p50 %8s ms  p99 %8s ms  errors %s\n' "$1" "$2" "${r[0]}" "${r[1]}" "${r[2]}" "${r[3]}"
}

echo "bench/proxy: ${workers} worker(s) per proxy, wrk ${duration} per run; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
for c in "${connections}" 1; do
  t=${wrk_threads}
  ((c == 1)) && t=1
  measure direct "${c}" "${t}" "${direct_url}"
  measure weft "${c}" "${t}" "${weft_url}" "${weft_host}"
  measure nginx "${c}" "${t}" "${nginx_url}"
  measure pair "${c}" "${t}" "${weft_url}" "${pair_host}"
done

# Policies (issue 8): RBAC allowing only a's SPIFFE ID at b, a local rate
# limit far above the offered load, retries on 5xx from a.
cat >"${dir}/config/policies.yaml" <<EOF
apiVersion: weft.io/v1alpha1
kind: AuthorizationPolicy
metadata: {name: b-callers, namespace: bench}
spec:
  selector: {matchLabels: {app: b}}
  action: ALLOW
  rules:
  - from: [{principals: ["spiffe://cluster.local/ns/bench/sa/a"]}]
---
apiVersion: weft.io/v1alpha1
kind: RateLimitPolicy
metadata: {name: b-limit, namespace: bench}
spec:
  targetRefs: [{kind: Service, name: b}]
  local: {requests: 100000000, unit: second, burst: 100000000}
---
apiVersion: weft.io/v1alpha1
kind: TrafficPolicy
metadata: {name: b-retries, namespace: bench}
spec:
  targetRefs: [{kind: Service, name: b}]
  retries: {attempts: 2, perTryTimeout: 2s, retryOn: [5xx, connect-failure, reset]}
  timeout: 10s
EOF
# Applied when a plaintext caller (no SPIFFE ID) is refused by b's RBAC and
# a's configuration carries the retry policy.
wait_http "http://${b_ip}:${b_in}/" 403
for ((i = 0; i < 300; ++i)); do
  curl -s "http://${a_ip}:${a_admin}/config_dump" | grep -q retry && break
  sleep 0.1
done
curl -s "http://${a_ip}:${a_admin}/config_dump" | grep -q retry || { echo "retries not applied" >&2; keep=1; exit 1; }
wait_http_host "${weft_url}" "${pair_host}" 200
for c in "${connections}" 1; do
  t=${wrk_threads}
  ((c == 1)) && t=1
  measure policies "${c}" "${t}" "${weft_url}" "${pair_host}"
done

hwm() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
c=${connections}
echo
echo "summary (${c} connections unless said):"
awk -v w="${rps[weft/$c]}" -v n="${rps[nginx/$c]}" 'BEGIN { printf "  weft-proxy / nginx throughput: %.2f\n", w / n }'
awk -v d="${rps[direct/$c]}" -v w="${rps[weft/$c]}" -v n="${rps[nginx/$c]}" -v p="${rps[pair/$c]}" \
  'BEGIN { printf "  share of direct throughput: weft-proxy %.2f, nginx %.2f, sidecar pair %.2f\n", w / d, n / d, p / d }'
for m in weft nginx pair; do
  awk -v m="${m}" -v a50="${p50[$m/1]}" -v a99="${p99[$m/1]}" -v d50="${p50[direct/1]}" -v d99="${p99[direct/1]}" \
    'BEGIN { printf "  added over direct at 1 connection, %-5s p50 %+.3f ms, p99 %+.3f ms\n", m, a50 - d50, a99 - d99 }'
done
awk -v p="${rps[pair/$c]}" -v q="${rps[policies/$c]}" -v a="${p50[pair/1]}" -v b="${p50[policies/1]}" \
  -v a9="${p99[pair/1]}" -v b9="${p99[policies/1]}" \
  'BEGIN { printf "  policies vs plain pair: throughput %.2f, p50 at 1 connection %+.3f ms, p99 %+.3f ms\n", q / p, b - a, b9 - a9 }'
echo "  weft-proxy peak RSS (VmHWM): client sidecar $(hwm "${a_pid}") MB, server sidecar $(hwm "${b_pid}") MB"
echo "  load after: $(cut -d' ' -f1-3 /proc/loadavg)"
