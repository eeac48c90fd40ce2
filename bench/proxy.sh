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
#   nginxeq   the same nginx configured to do to each request what weft-proxy
#             does: keep the Host header, add X-Request-ID when absent, set
#             X-Forwarded-Proto (weft-proxy also adds a traceparent, which
#             stock nginx cannot make: nginx still does less)
#   pair      wrk -> client sidecar -> mTLS -> server sidecar -> upstream
#   npair     the same path through two nginx (client certificates both ways,
#             kept-alive TLS between them): the baseline for the pair
#   policies  the pair with RBAC (ALLOW the client's SPIFFE ID), a local rate
#             limit far above the offered load and retries on 5xx configured
# and prints requests/s, p50, p99 per run, weft/nginx, what the pair adds over
# direct, and each weft-proxy's peak RSS (VmHWM). Then bench/latency_interleave
# takes the same paths in turn at one connection each, so that every path
# sees the same moments of the machine (its tail at one connection moves by
# more than the differences between paths).
#
# usage: bench/proxy.sh [--duration=10s] [--warmup=3s] [--repeat=3] [--workers=1] [--wrk-threads=2] [--connections=64]
#                       [--build=build/release] [--proxy=PATH to another weft-proxy]
#                       [--only=weft,pair (profiling: these cases only; direct weft nginx nginxeq pair npair)] [--keep]
# Needs wrk, nginx and openssl (installed with apt-get when missing and run as root;
# nothing else needs root). Builds nothing: run `scripts/build.sh release
# weftd weft-proxy latency_interleave` first.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
duration=10s
warmup=3s
workers=1
wrk_threads=2
connections=64
build="${root}/build/release"
keep=0
repeat=3
all_cases="direct weft nginx nginxeq pair npair"
only="${all_cases}"
proxy_bin=""
for arg in "$@"; do
  case "${arg}" in
    --duration=*) duration="${arg#*=}" ;;
    --warmup=*) warmup="${arg#*=}" ;;
    --workers=*) workers="${arg#*=}" ;;
    --wrk-threads=*) wrk_threads="${arg#*=}" ;;
    --connections=*) connections="${arg#*=}" ;;
    --build=*) build="${arg#*=}" ;;
    --proxy=*) proxy_bin="${arg#*=}" ;;
    --repeat=*) repeat="${arg#*=}" ;;
    --only=*) only="${arg#*=}"; only="${only//,/ }" ;;
    --keep) keep=1 ;;
    *) echo "bench/proxy.sh: unknown argument ${arg}" >&2; exit 2 ;;
  esac
done

weftd_bin="${build}/server/weftd"
proxy_bin="${proxy_bin:-${build}/proxy/weft-proxy}"
interleave_bin="${build}/bench/latency_interleave"
[[ "${duration}" =~ ^[0-9]+s?$ && "${warmup}" =~ ^[0-9]+s?$ ]] ||
  { echo "bench/proxy.sh: --duration and --warmup take seconds (5s or 5)" >&2; exit 2; }
for b in "${weftd_bin}" "${proxy_bin}" "${interleave_bin}"; do
  [[ -x "${b}" ]] || {
    echo "bench/proxy.sh: ${b} not built (scripts/build.sh release weftd weft-proxy latency_interleave)" >&2
    exit 1
  }
done

install_missing() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
  command -v openssl >/dev/null || missing+=(openssl)  # the nginx pair's certificates
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
# workload (the upstream app and its sidecar); 127.0.0.4: nginx as a proxy
# (both configurations);
# 127.0.0.5 and 127.0.0.6: the nginx pair's client and server sides.
a_ip=127.0.0.2 b_ip=127.0.0.3 n_ip=127.0.0.4 na_ip=127.0.0.5 nb_ip=127.0.0.6
xds_port=$(free_port) weftd_admin=$(free_port)
a_out=$(free_port) a_in=$(free_port) a_admin=$(free_port) a_app=$(free_port)
b_out=$(free_port) b_in=$(free_port) b_admin=$(free_port) b_app=$(free_port)
n_port=$(free_port) neq_port=$(free_port) na_port=$(free_port) nb_port=$(free_port)

wait_http() {  # url [expected-code] [host]
  local url=$1 want=${2:-200} hdr=() code
  [[ -n "${3:-}" ]] && hdr=(-H "Host: $3")
  for ((i = 0; i < 300; ++i)); do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "${hdr[@]}" "${url}" || true)
    [[ "${code}" == "${want}" ]] && return 0
    sleep 0.1
  done
  echo "bench/proxy.sh: ${url} ${3:+(Host $3) }did not answer ${want} (last: ${code}); logs in ${dir}" >&2
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
nginx_proxy_master=${pids[-1]}
# The same with the request headers weft-proxy adds or keeps by default (as
# Envoy does): the client's Host (nginx would send the upstream block's
# name), X-Request-ID kept or generated ($request_id: 16 random bytes in hex),
# X-Forwarded-Proto. The comparison of equal work; "nginx" above forwards
# less.
nginx_conf nginxeq "${n_ip}:${neq_port}" \
  "upstream app { server ${b_ip}:${b_app}; keepalive 256; keepalive_requests 100000000; }
  map \$http_x_request_id \$bench_request_id { '' \$request_id; default \$http_x_request_id; }" \
  'proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
    proxy_set_header Host $http_host; proxy_set_header X-Request-ID $bench_request_id;
    proxy_set_header X-Forwarded-Proto $scheme;'
nginxeq_master=${pids[-1]}
# The nginx pair: the sidecar pair's path with nginx on both sides, mTLS
# between them with P-256 keys as the sidecars have (certificates from a
# throw-away CA made here; the server side requires and verifies the client
# certificate, the client side verifies the server's name; TLS 1.3 as the
# sidecars negotiate, where nginx 1.22 would stop at 1.2), the TLS
# connections kept alive as the sidecars pool theirs.
pki="${dir}/nginx-pki"
mkdir -p "${pki}"
(
  cd "${pki}"
  openssl ecparam -name prime256v1 -genkey -noout -out ca.key
  openssl req -x509 -new -key ca.key -subj /CN=bench-ca -days 2 -out ca.crt
  for n in a b; do
    openssl ecparam -name prime256v1 -genkey -noout -out "${n}.key"
    openssl req -new -key "${n}.key" -subj "/CN=${n}" -out "${n}.csr"
    printf 'subjectAltName=DNS:%s.bench,URI:spiffe://cluster.local/ns/bench/sa/%s\nextendedKeyUsage=serverAuth,clientAuth\n' \
      "${n}" "${n}" >"${n}.ext"
    openssl x509 -req -in "${n}.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile "${n}.ext" -out "${n}.crt"
  done
) >"${pki}/openssl.log" 2>&1 || { echo "bench/proxy.sh: openssl failed; see ${pki}/openssl.log" >&2; keep=1; exit 1; }
nginx_conf npair-b "${nb_ip}:${nb_port} ssl" \
  "upstream app { server ${b_ip}:${b_app}; keepalive 256; keepalive_requests 100000000; }
  ssl_certificate ${pki}/b.crt; ssl_certificate_key ${pki}/b.key;
  ssl_client_certificate ${pki}/ca.crt; ssl_verify_client on; ssl_protocols TLSv1.2 TLSv1.3;" \
  'proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";'
nginx_conf npair-a "${na_ip}:${na_port}" \
  "upstream peer { server ${nb_ip}:${nb_port}; keepalive 256; keepalive_requests 100000000; }" \
  "proxy_pass https://peer; proxy_http_version 1.1; proxy_set_header Connection \"\";
    proxy_ssl_certificate ${pki}/a.crt; proxy_ssl_certificate_key ${pki}/a.key;
    proxy_ssl_trusted_certificate ${pki}/ca.crt; proxy_ssl_verify on; proxy_ssl_name b.bench;
    proxy_ssl_protocols TLSv1.2 TLSv1.3;"
npair_masters=("${pids[-2]}" "${pids[-1]}")

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
nginxeq_url="http://${n_ip}:${neq_port}/"
npair_url="http://${na_ip}:${na_port}/"
pair_host="b.bench"           # the mesh service: mTLS to b's sidecar
wait_http "${direct_url}"
wait_http "${nginx_url}"
wait_http "${nginxeq_url}" 200 "${weft_host}"
wait_http "${npair_url}"
hwm() { awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
idle_rss="client sidecar $(hwm "${a_pid}") MB, server sidecar $(hwm "${b_pid}") MB"
wait_http "${weft_url}" 200 "${weft_host}"
wait_http "${weft_url}" 200 "${pair_host}"

# wrk's --latency output -> "rps p50_ms p99_ms errors requests"
run_wrk() {  # out conns threads url [host]
  local hdr=()
  [[ -n "${5:-}" ]] && hdr=(-H "Host: $5")
  wrk -c"$2" -t"$3" -d"${duration}" --latency "${hdr[@]}" "$4" >"$1" 2>&1
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
    $2 == "requests" && $3 == "in" { requests = $1 }
    /Non-2xx or 3xx responses:/ { errors += $NF }
    /Socket errors:/ { for (i = 3; i <= NF; i += 2) errors += $(i + 1) + 0 }
    END { printf "%.0f %.3f %.3f %d %d\n", rps, p50, p99, errors, requests }' "$1"
}

# CPU time (utime + stime, in clock ticks) of the given processes.
cpu_ticks() { for p in "$@"; do cut -d' ' -f14-15 "/proc/${p}/stat"; done | awk '{ t += $1 + $2 } END { print t + 0 }'; }
clk_tck=$(getconf CLK_TCK)

# Each case's figures over the repetitions, medians reported; CPU per
# request of the proxies in the path (load on the machine does not change
# it much, unlike requests/s).
declare -A rps p50 p99 errs cpu
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
measure() {  # name conns threads url host
  local procs=() r before after
  case $1 in
    weft) procs=("${a_pid}") ;;
    nginx) procs=($(pgrep -P "${nginx_proxy_master}")) ;;
    nginxeq) procs=($(pgrep -P "${nginxeq_master}")) ;;
    npair) procs=($(pgrep -P "${npair_masters[0]}") $(pgrep -P "${npair_masters[1]}")) ;;
    pair | policies) procs=("${a_pid}" "${b_pid}") ;;
  esac
  # Unmeasured first: on this machine the first 2-4 s of load on a path,
  # after idling or after another path, run ~10 % slower (docs/benchmarks.md,
  # Session 10), which penalised whichever case came right after direct.
  if [[ "${warmup%s}" != 0 ]]; then
    duration="${warmup%s}s" run_wrk "${dir}/wrk-$1-c$2-${rep}-warmup.txt" "$2" "$3" "$4" "${5:-}" >/dev/null
  fi
  before=$(cpu_ticks "${procs[@]}")
  r=($(run_wrk "${dir}/wrk-$1-c$2-${rep}.txt" "$2" "$3" "$4" "${5:-}"))
  after=$(cpu_ticks "${procs[@]}")
  local k=$1/$2
  rps[$k]+=" ${r[0]}" p50[$k]+=" ${r[1]}" p99[$k]+=" ${r[2]}" errs[$k]=$((${errs[$k]:-0} + r[3]))
  cpu[$k]+=" $(awk -v d=$((after - before)) -v n="${r[4]}" -v hz="${clk_tck}" 'BEGIN { printf "%.1f", n ? d * 1e6 / hz / n : 0 }')"
}
report() {  # name conns
  local k=$1/$2
  for m in rps p50 p99 cpu; do
    local -n arr=${m}
    arr[$k]=$(median <<<"${arr[$k]}")
  done
  printf '  %-9s c=%-3s %8s req/s  p50 %7s ms  p99 %8s ms  proxy CPU %6s us/req  errors %s\n' "$1" "$2" \
    "${rps[$k]}" "${p50[$k]}" "${p99[$k]}" "${cpu[$k]}" "${errs[$k]}"
}
cases() {  # conns name...
  local c=$1 t=${wrk_threads}
  shift
  ((c == 1)) && t=1
  for name in "$@"; do
    case ${name} in
      direct) measure direct "${c}" "${t}" "${direct_url}" ;;
      weft) measure weft "${c}" "${t}" "${weft_url}" "${weft_host}" ;;
      nginx) measure nginx "${c}" "${t}" "${nginx_url}" ;;
      nginxeq) measure nginxeq "${c}" "${t}" "${nginxeq_url}" "${weft_host}" ;;  # the Host weft gets
      npair) measure npair "${c}" "${t}" "${npair_url}" ;;
      pair | policies) measure "${name}" "${c}" "${t}" "${weft_url}" "${pair_host}" ;;
    esac
  done
}

echo "bench/proxy: ${workers} worker(s) per proxy, wrk ${duration} per run after ${warmup} unmeasured, medians of ${repeat}; load before: $(cut -d' ' -f1-3 /proc/loadavg)"
# At one connection a request is mostly processes waking each other. On a
# virtual machine whose idle CPUs halt at once (guest halt polling off), a
# wake-up on an idle CPU goes through the hypervisor, and that sets the
# latencies at one connection (docs/benchmarks.md). Printed so that figures
# from different machines can be compared.
idle_driver=$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo unknown)
halt_poll=/sys/module/haltpoll/parameters/guest_halt_poll_ns
echo "  cpuidle driver ${idle_driver}$([[ -r ${halt_poll} ]] && echo ", guest_halt_poll_ns $(cat ${halt_poll})"), $(nproc) CPUs"
for ((rep = 1; rep <= repeat; ++rep)); do
  for c in "${connections}" 1; do cases "${c}" ${only}; done
done
for c in "${connections}" 1; do
  for name in ${only}; do report "${name}" "${c}"; done
done
# One connection per path, the paths in turn (bench/latency_interleave.cc):
# every path sees the same moments. The upstream serves every request of
# every path, the proxies only their own, so this favours direct; compare
# the proxies with each other here, and with direct in the wrk runs above.
target() {  # name url [host]
  local hp=${2#http://}
  hp=${hp%/}
  echo "--target=$1,${hp}${3:+,$3}"
}
interleave_targets=()
for name in ${only}; do
  case ${name} in
    direct) interleave_targets+=("$(target direct "${direct_url}")") ;;
    weft) interleave_targets+=("$(target weft "${weft_url}" "${weft_host}")") ;;
    nginx) interleave_targets+=("$(target nginx "${nginx_url}")") ;;
    nginxeq) interleave_targets+=("$(target nginxeq "${nginxeq_url}" "${weft_host}")") ;;
    pair) interleave_targets+=("$(target pair "${weft_url}" "${pair_host}")") ;;
    npair) interleave_targets+=("$(target npair "${npair_url}")") ;;
  esac
done
echo
"${interleave_bin}" --duration=$((${duration%s} * repeat)) "${interleave_targets[@]}" | tee "${dir}/interleave.txt"
[[ "${only}" == "${all_cases}" ]] || exit 0  # a partial run (profiling): no policies, no summary

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
retries_applied() { [[ "$(curl -s "http://${a_ip}:${a_admin}/config_dump")" == *retry_policy* ]]; }
for ((i = 0; i < 600; ++i)); do
  retries_applied && break
  sleep 0.1
done
retries_applied || { echo "bench/proxy.sh: the retry policy did not reach the client sidecar; logs in ${dir}" >&2; keep=1; exit 1; }
wait_http "${weft_url}" 200 "${pair_host}"
for ((rep = 1; rep <= repeat; ++rep)); do
  for c in "${connections}" 1; do cases "${c}" policies; done
done
for c in "${connections}" 1; do report policies "${c}"; done

c=${connections}
echo
echo "summary (${c} connections unless said):"
awk -v w="${rps[weft/$c]}" -v n="${rps[nginx/$c]}" -v cw="${cpu[weft/$c]}" -v cn="${cpu[nginx/$c]}" \
  'BEGIN { printf "  weft-proxy / nginx: throughput %.2f, CPU per request %.2f\n", w / n, cw / cn }'
awk -v w="${rps[weft/$c]}" -v n="${rps[nginxeq/$c]}" -v cw="${cpu[weft/$c]}" -v cn="${cpu[nginxeq/$c]}" \
  'BEGIN { printf "  weft-proxy / nginx with the same request headers (nginxeq): throughput %.2f, CPU per request %.2f\n", w / n, cw / cn }'
awk -v d="${rps[direct/$c]}" -v w="${rps[weft/$c]}" -v n="${rps[nginx/$c]}" -v p="${rps[pair/$c]}" \
  'BEGIN { printf "  share of direct throughput: weft-proxy %.2f, nginx %.2f, sidecar pair %.2f\n", w / d, n / d, p / d }'
awk -v p="${rps[pair/$c]}" -v q="${rps[npair/$c]}" -v cp="${cpu[pair/$c]}" -v cq="${cpu[npair/$c]}" \
  'BEGIN { printf "  sidecar pair / nginx pair: throughput %.2f, CPU per request %.2f\n", p / q, cp / cq }'
for m in weft nginx nginxeq pair npair; do
  awk -v m="${m}" -v a50="${p50[$m/1]}" -v a99="${p99[$m/1]}" -v d50="${p50[direct/1]}" -v d99="${p99[direct/1]}" \
    'BEGIN { printf "  added over direct at 1 connection, %-7s p50 %+.3f ms, p99 %+.3f ms\n", m, a50 - d50, a99 - d99 }'
done
sed -n 's/^  added over direct: /  interleaved at 1 connection, added over direct: /p' "${dir}/interleave.txt"
awk -v p="${rps[pair/$c]}" -v q="${rps[policies/$c]}" -v a="${p50[pair/1]}" -v b="${p50[policies/1]}" \
  -v a9="${p99[pair/1]}" -v b9="${p99[policies/1]}" \
  'BEGIN { printf "  policies vs plain pair: throughput %.2f, p50 at 1 connection %+.3f ms, p99 %+.3f ms\n", q / p, b - a, b9 - a9 }'
echo "  weft-proxy peak RSS (VmHWM) before traffic: ${idle_rss}"
echo "  weft-proxy peak RSS (VmHWM) after all runs: client sidecar $(hwm "${a_pid}") MB, server sidecar $(hwm "${b_pid}") MB"
echo "  load after: $(cut -d' ' -f1-3 /proc/loadavg)"
rss_split() { awk '/RssAnon|RssFile/ { printf "%s%s %.1f MB", sep, $1, $2 / 1024; sep = ", " }' "/proc/$1/status"; }
echo "  now: client sidecar $(rss_split "${a_pid}"); server sidecar $(rss_split "${b_pid}")"
echo "  client sidecar upstream connections opened: $(curl -s "http://${a_ip}:${a_admin}/stats/prometheus" |
  awk '/^weft_proxy_upstream_connections_total/ { printf "%s%s", sep, $0; sep = ", " }')"
