#!/usr/bin/env bash
# Event-bus benchmark, loopback only: for the embedded SQLite log and for NATS
# JetStream, measures
#   - publish throughput (each publish awaited until durable), sequential and
#     with concurrent publishers;
#   - consume throughput of one durable consumer acknowledging each event;
#   - publish→consume latency p50/p99, idle (one event at a time) and at a
#     steady publish rate (at most 40 % of the measured end-to-end capacity,
#     1 / (1/publish + 1/consume), so the queue stays short).
# Prints a Markdown table; docs/performance.md records a run.
#
# Usage: bench/events.sh [events (default 20000)] [max publish rate of the loaded-latency run, per s (default 1000)]
# NATS is taken from EMPORIUM_BENCH_NATS_URL (default nats://127.0.0.1:4222);
# if it does not answer, only the log is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
events="${1:-20000}"
rate="${2:-1000}"
nats_url="${EMPORIUM_BENCH_NATS_URL:-nats://127.0.0.1:4222}"

cargo build --release --locked -p emporium-eventbus --example eventbench >/dev/null
bin="${CARGO_TARGET_DIR:-target}/release/examples/eventbench"

backend=both
host_port="${nats_url#nats://}"; host_port="${host_port##*@}"
if ! timeout 2 bash -c "exec 3<>/dev/tcp/${host_port%:*}/${host_port##*:}" 2>/dev/null; then
  echo "NATS does not answer at $nats_url: measuring the log only" >&2
  backend=log
fi

# Other work on the machine (it is shared) moves these numbers: record the load.
before=$(cut -d' ' -f1 /proc/loadavg)
table=$("$bin" --backend "$backend" --events "$events" --rate "$rate" --nats-url "$nats_url")
after=$(cut -d' ' -f1 /proc/loadavg)

echo "Machine: $(nproc) cores; $(date -u +%F); release build; nats-server $(nats-server --version 2>/dev/null | awk '{print $2}' || echo '?')"
echo "1-minute load average: $before before the run, $after after."
echo
echo "$table"
