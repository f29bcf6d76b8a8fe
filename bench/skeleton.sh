#!/usr/bin/env bash
# Benchmark of the walking skeleton (gateway → catalog → SQLite), on loopback only.
#
# Measures, for the release build of `emporium up`:
#   - time from process start to "all services ready" (median of 5 starts);
#   - idle resident memory (VmRSS) of the whole process after start-up;
#   - throughput and latency percentiles of the public API under load (wrk),
#     and the resident memory after the load.
# Prints a Markdown table; docs/performance.md records a run.
#
# Usage: bench/skeleton.sh [seconds-per-load-run (default 10)]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-10}"

if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq wrk >/dev/null; else echo "install wrk" >&2; exit 1; fi
fi
cargo build --release --locked -p emporium >/dev/null
bin=target/release/emporium

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
http=$(free_port); gw_admin=$(free_port); grpc=$(free_port); cat_admin=$(free_port)
export EMPORIUM_GATEWAY__HTTP_ADDR="127.0.0.1:$http" EMPORIUM_GATEWAY__ADMIN_ADDR="127.0.0.1:$gw_admin"
export EMPORIUM_CATALOG__GRPC_ADDR="127.0.0.1:$grpc" EMPORIUM_CATALOG__ADMIN_ADDR="127.0.0.1:$cat_admin"
export EMPORIUM_LOG=warn EMPORIUM_LOG_FORMAT=json
# Every request comes from 127.0.0.1: rate limits (on by default) would measure
# the limiter, not the store.
export EMPORIUM_GATEWAY__RATE_LIMIT__MODE=off

out=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$out"; }
trap cleanup EXIT

# Starts `up` in the background and waits (bounded) for its table; sets $pid.
start() {
  "$bin" up --ephemeral >"$out/stdout" 2>"$out/stderr" &
  pid=$!
  for _ in $(seq 1 300); do
    grep -q "Emporium is up" "$out/stdout" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "emporium up did not become ready" >&2; cat "$out/stderr" >&2; exit 1
}
stop() { kill -TERM "$pid"; wait "$pid" || true; pid=""; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

ready=()
for _ in 1 2 3 4 5; do
  start
  ready+=("$(sed -n 's/.*Emporium is up in \([0-9]*\) ms.*/\1/p' "$out/stdout")")
  stop
done
ready_median=$(printf '%s\n' "${ready[@]}" | sort -n | sed -n 3p)

start
sleep 1
idle_rss=$(rss_kib "$pid")
base="http://127.0.0.1:$http"
id=$(curl -sf "$base/api/v1/products?limit=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["id"])')

load() { # name path
  local report
  report=$(wrk -t2 -c32 -d"${duration}s" --latency "$base$2")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$report")
  p50=$(awk '$1=="50%" {print $2}' <<<"$report")
  p99=$(awk '$1=="99%" {print $2}' <<<"$report")
  local errors
  errors=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$report")
  [ -z "$errors" ] || { echo "errors during $1: $errors" >&2; exit 1; }
  printf '| %s | %s | %s | %s |\n' "$1" "$rps" "$p50" "$p99"
}

echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); $(date -u +%F); wrk -t2 -c32 -d${duration}s, same host"
echo
echo "| measure | value |"
echo "|---|---|"
echo "| \`emporium up\` start to ready (median of 5) | ${ready_median} ms |"
echo "| idle RSS, whole process (gateway + catalog) | $((idle_rss / 1024)) MiB |"
echo
echo "| request | req/s | p50 | p99 |"
echo "|---|---|---|---|"
load "GET /api/v1/products (20 items)" "/api/v1/products"
load "GET /api/v1/products/{id}" "/api/v1/products/$id"
load "GET /api/v1/products?q=wool" "/api/v1/products?q=wool"
echo
echo "RSS after load: $(( $(rss_kib "$pid") / 1024 )) MiB"
