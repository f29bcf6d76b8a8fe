#!/usr/bin/env bash
# Public reads through the gateway, compared in ONE run on this machine:
#   1. nginx   - nginx (Debian package) with proxy_cache in front of a gateway
#                whose own cache is off: what a user would put in front instead;
#   2. cache   - the gateway of `emporium up` with its own response cache;
#   3. direct  - that second gateway, uncached (every read reaches the catalog).
# for one product, the first page of the list and a search. Prints a Markdown
# table (req/s, p50, p99, non-2xx) and the ratios cache/nginx.
# Everything listens on loopback; everything it starts it stops.
# Usage: bench/gateway.sh [seconds per run (default 10)] [connections (default 32)]
# Needs wrk and nginx (Debian packages `wrk`, `nginx`; installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-10}"
conns="${2:-32}"
for tool in wrk:wrk nginx:nginx; do
  command -v "${tool%%:*}" >/dev/null || {
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${tool#*:}" >/dev/null
  }
done
cargo build --release --locked -p emporium >/dev/null
bin=target/release/emporium
out=$(mktemp -d)
pids=()
cleanup() {
  [[ -f $out/nginx.pid ]] && kill "$(cat "$out/nginx.pid")" 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$out"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 300); do curl -sf -m 2 "$1" >/dev/null && return 0; sleep 0.05; done; echo "no answer from $1" >&2; exit 1; }

export EMPORIUM_LOG=warn EMPORIUM_LOG_FORMAT=json
# All of wrk's load comes from one address: the rate limiter counts every
# request (its cost is in the figures) but refuses none.
export EMPORIUM_GATEWAY__RATE_LIMIT__MODE=shadow
cached=$(free_port)
EMPORIUM_GATEWAY__HTTP_ADDR="127.0.0.1:$cached" $bin up --ephemeral >"$out/up.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$cached/api/v1/categories"

# The second gateway: the same upstreams (up's default ports), no cache of its own.
direct=$(free_port)
EMPORIUM_GATEWAY__CACHE__ENABLED=false EMPORIUM_GATEWAY__HTTP_ADDR="127.0.0.1:$direct" \
  EMPORIUM_GATEWAY__ADMIN_ADDR="127.0.0.1:$(free_port)" \
  EMPORIUM_GATEWAY__CATALOG__URL=http://127.0.0.1:50051 EMPORIUM_GATEWAY__ACCOUNTS__URL=http://127.0.0.1:50057 \
  EMPORIUM_GATEWAY__CART__URL=http://127.0.0.1:50052 EMPORIUM_GATEWAY__CURRENCY__URL=http://127.0.0.1:50053 \
  EMPORIUM_GATEWAY__CHECKOUT__URL=http://127.0.0.1:50058 \
  $bin serve gateway >"$out/direct.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$direct/api/v1/categories"

# nginx with a cache in front of it, as fresh as the gateway's (1 s, stale while updating).
nginx_port=$(free_port)
mkdir -p "$out/nginx-cache" "$out/nginx-tmp"
cat >"$out/nginx.conf" <<EOF
user root;
worker_processes auto;
pid $out/nginx.pid;
error_log $out/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $out/nginx-tmp/body;
  proxy_temp_path $out/nginx-tmp/proxy;
  fastcgi_temp_path $out/nginx-tmp/fastcgi;
  uwsgi_temp_path $out/nginx-tmp/uwsgi;
  scgi_temp_path $out/nginx-tmp/scgi;
  proxy_cache_path $out/nginx-cache levels=1:2 keys_zone=api:10m max_size=64m inactive=60s use_temp_path=off;
  upstream gateway { server 127.0.0.1:$direct; keepalive 64; }
  server {
    listen 127.0.0.1:$nginx_port;
    location / {
      proxy_pass http://gateway;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache api;
      proxy_cache_valid 200 1s;
      proxy_cache_lock on;
      proxy_cache_background_update on;
      proxy_cache_use_stale updating error timeout http_502 http_503 http_504;
      add_header X-Cache \$upstream_cache_status;
    }
  }
}
EOF
nginx -c "$out/nginx.conf"
wait_http "http://127.0.0.1:$nginx_port/api/v1/categories"

product=$(curl -sf "http://127.0.0.1:$cached/api/v1/products?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')
declare -A paths=(
  [product]="/api/v1/products/$product"
  [list]="/api/v1/products"
  [search]="/api/v1/products?q=wool"
)
run() { # port path -> "req/s p50 p99 non2xx"
  wrk -t2 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$1$2" >"$out/wrk" 2>&1
  python3 bench/wrk_summary.py "$out/wrk"
}
echo "Machine: $(nproc) cores; $(date -u +%F); release build; wrk -t2 -c$conns -d${secs}s; $(nginx -v 2>&1)"
printf '| read | setup | req/s | p50 ms | p99 ms | non-2xx |\n|---|---|---|---|---|---|\n'
ratios=()
for what in product list search; do
  path=${paths[$what]}
  for port in "$nginx_port" "$cached" "$direct"; do run "$port" "$path" >/dev/null; done # warm-up
  read -r n_rps n_p50 n_p99 n_bad < <(run "$nginx_port" "$path")
  read -r c_rps c_p50 c_p99 c_bad < <(run "$cached" "$path")
  read -r d_rps d_p50 d_p99 d_bad < <(run "$direct" "$path")
  printf '| %s | nginx proxy_cache -> gateway | %s | %s | %s | %s |\n' "$what" "$n_rps" "$n_p50" "$n_p99" "$n_bad"
  printf '| %s | gateway cache | %s | %s | %s | %s |\n' "$what" "$c_rps" "$c_p50" "$c_p99" "$c_bad"
  printf '| %s | gateway uncached | %s | %s | %s | %s |\n' "$what" "$d_rps" "$d_p50" "$d_p99" "$d_bad"
  ratios+=("$(python3 -c "print(f'$what: gateway cache / nginx = {$c_rps / $n_rps:.2f}x throughput, p99 {$c_p99:.2f} vs {$n_p99:.2f} ms')")")
done
printf '%s\n' "${ratios[@]}"
