#!/usr/bin/env bash
# Client-side balancing benchmark: the gateway and two catalog replicas, each
# its own `emporium serve` process (127.0.0.2 and 127.0.0.3), the replicas
# found under one name ("catalog") through the etcd registry. wrk reads one
# product through the gateway:
#   1. single   - the gateway's catalog URL is one replica's address;
#   2. balanced - the gateway resolves "catalog" to both replicas.
# Prints req/s, p50, p99 of each, the ratio, and how the balanced calls split.
# Everything listens on loopback and everything it starts it stops.
# Usage: bench/balance.sh [seconds per run (default 10)] [connections (default 32)]
# Needs wrk and etcd (Debian packages `wrk`, `etcd-server`; installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conns="${2:-32}"
for tool in wrk:wrk etcd:etcd-server; do
  command -v "${tool%%:*}" >/dev/null || {
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}" >/dev/null
  }
done
cargo build --release --locked -p emporium >/dev/null
bin=target/release/emporium
out=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$out"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 200); do curl -sf -m 2 "$1" >/dev/null && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }

etcd_port=$(free_port)
peer_port=$(free_port)
etcd --data-dir "$out/etcd" --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_port" --listen-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" --initial-cluster "default=http://127.0.0.1:$peer_port" \
  >"$out/etcd.log" 2>&1 </dev/null &
pids+=($!)
wait_http "http://127.0.0.1:$etcd_port/health"

export EMPORIUM_LOG=warn EMPORIUM_LOG_FORMAT=json
# All of wrk's load comes from one address: no per-client limits here.
export EMPORIUM_GATEWAY__RATE_LIMIT__MODE=off
$bin import --data-dir "$out/data" catalog data/catalog.json >/dev/null 2>&1
db="sqlite://$out/data/catalog.db"
grpc=$(free_port)
registry=(EMPORIUM_CATALOG__REGISTRY__URL="http://127.0.0.1:$etcd_port" EMPORIUM_CATALOG__REGISTRY__PREFIX=/bench/)
declare -A admin
for n in 2 3; do
  admin[$n]=$(free_port)
  env "${registry[@]}" EMPORIUM_CATALOG__DATABASE__URL="$db" EMPORIUM_CATALOG__GRPC_ADDR="127.0.0.$n:$grpc" \
    EMPORIUM_CATALOG__ADMIN_ADDR="127.0.0.$n:${admin[$n]}" $bin serve catalog >>"$out/catalog.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.$n:${admin[$n]}/readyz"
done
start_gateway() { # variable to set to its port, then settings
  local port; port=$(free_port)
  # The response cache is off: this measures calls that reach the catalogs.
  env "${@:2}" EMPORIUM_GATEWAY__CACHE__ENABLED=false EMPORIUM_GATEWAY__HTTP_ADDR="127.0.0.1:$port" EMPORIUM_GATEWAY__ADMIN_ADDR="127.0.0.1:$(free_port)" \
    $bin serve gateway >>"$out/gateway-$1.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$port/api/v1/categories"
  printf -v "$1" '%s' "$port"
}
start_gateway single EMPORIUM_GATEWAY__CATALOG__URL="http://127.0.0.2:$grpc"
start_gateway balanced EMPORIUM_GATEWAY__CATALOG__URL="http://catalog:$grpc" \
  EMPORIUM_GATEWAY__REGISTRY__URL="http://127.0.0.1:$etcd_port" EMPORIUM_GATEWAY__REGISTRY__PREFIX=/bench/
product=$(curl -sf "http://127.0.0.1:$single/api/v1/products?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
path="/api/v1/products/$product"

served() { # calls of GetProduct replica 127.0.0.$1 has answered
  curl -sf "http://127.0.0.$1:${admin[$1]}/metrics" | awk '/^grpc_server_requests_total\{.*GetProduct/ {s+=$NF} END {print s+0}'
}
run() { # port -> "req/s p50 p99 non2xx"
  wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$1$path" >"$out/wrk" 2>&1
  python3 bench/wrk_summary.py "$out/wrk"
}
echo "Machine: $(nproc) cores; $(date -u +%F); release build; wrk -t2 -c$conns -d${secs}s GET $path"
run "$single" >/dev/null # warm-up
read -r s_rps s_p50 s_p99 s_bad < <(run "$single")
a0=$(served 2); b0=$(served 3)
read -r b_rps b_p50 b_p99 b_bad < <(run "$balanced")
a1=$(served 2); b1=$(served 3)
printf '| gateway -> catalog | req/s | p50 ms | p99 ms | non-2xx |\n|---|---|---|---|---|\n'
printf '| one endpoint (address) | %s | %s | %s | %s |\n' "$s_rps" "$s_p50" "$s_p99" "$s_bad"
printf '| two endpoints behind "catalog" | %s | %s | %s | %s |\n' "$b_rps" "$b_p50" "$b_p99" "$b_bad"
python3 - "$s_rps" "$b_rps" "$s_p99" "$b_p99" "$((a1 - a0))" "$((b1 - b0))" <<'PY'
import sys
s_rps, b_rps, s_p99, b_p99 = map(float, sys.argv[1:5]); a, b = map(int, sys.argv[5:7])
print(f"throughput ratio balanced/single: {b_rps / s_rps:.2f}; p99 difference: {(b_p99 - s_p99) * 1000:+.0f} us")
total = a + b
print(f"split of the balanced run: 127.0.0.2 {a} ({a / total:.0%}), 127.0.0.3 {b} ({b / total:.0%})" if total else "no calls counted")
PY
