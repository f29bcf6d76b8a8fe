#!/usr/bin/env bash
# Checkout latency benchmark: starts a release `emporium up --ephemeral` on free
# loopback ports and runs bench/checkout.py against it (bounded: USERS checkouts).
# Usage: bench/checkout.sh [users (default 200)] [concurrency (default 8)]
set -euo pipefail
cd "$(dirname "$0")/.."
users="${1:-200}"
concurrency="${2:-8}"
cargo build --release --locked -p emporium >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
out=$(mktemp -d)
export EMPORIUM_GATEWAY__HTTP_ADDR="127.0.0.1:$port" EMPORIUM_LOG=warn EMPORIUM_LOG_FORMAT=json
# Every request comes from 127.0.0.1: rate limits (on by default) would measure
# the limiter, not the store.
export EMPORIUM_GATEWAY__RATE_LIMIT__MODE=off
# Stock enough for every checkout (the seed holds at most 60 per SKU): import a
# deep copy of data/stock.json into the data directory before `up` seeds it.
python3 -c 'import json,sys; d=json.load(open("data/stock.json")); [l.update(available=1000000) for l in d["levels"]]; json.dump(d, open(sys.argv[1], "w"))' "$out/stock.json"
target/release/emporium import --data-dir "$out/data" stock "$out/stock.json" 2>/dev/null
target/release/emporium up --data-dir "$out/data" >"$out/stdout" 2>"$out/stderr" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 1 300); do grep -q "Emporium is up" "$out/stdout" 2>/dev/null && break; sleep 0.05; done
grep -q "Emporium is up" "$out/stdout" || { cat "$out/stderr" >&2; exit 1; }
echo "Machine: $(nproc) cores; $(date -u +%F); all services in one release process, SQLite"
python3 bench/checkout.py --base "http://127.0.0.1:$port" --users "$users" --concurrency "$concurrency"
