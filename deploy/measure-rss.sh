#!/usr/bin/env bash
# Measures the memory the Kubernetes `resources` are sized from
# (docs/performance.md, "Idle memory per service binary").
#
# Starts each service's release binary ALONE on loopback (embedded SQLite in a
# temporary directory where it keeps data; upstreams are lazily connected, so none
# needs to run), waits for /readyz, lets it settle, and reads the resident set
# (VmRSS) and its high-water mark (VmHWM) from /proc. Then sends SIGTERM and
# checks that the service drains and exits 0.
#
# With --sign-ins N[,N…] it also measures accounts under a burst of N concurrent
# sign-ups through the gateway (each hashes one password with argon2id: about
# PASSWORD_HASHING__MEMORY_KIB of memory per concurrent hash) and reports the
# peak (VmHWM) and what stays resident afterwards.
#
# usage: deploy/measure-rss.sh [--bin-dir DIR] [--settle SECONDS] [--sign-ins N,N…]
#                              [--env VAR=value]… [SERVICE…]
#   default SERVICEs: every deploy/k8s/base folder with a config.env that sets an admin address
#   --env      an extra variable for every service started (e.g. GLIBC_TUNABLES=…)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin_dir=$repo/target/release
settle=5
sign_ins=""
extra_env=()
services=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --bin-dir) bin_dir=$(cd "$2" && pwd); shift ;;
    --settle) settle=$2; shift ;;
    --sign-ins) sign_ins=$2; shift ;;
    --env) extra_env+=("$2"); shift ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    -*) echo "measure-rss.sh: unknown option $1" >&2; exit 64 ;;
    *) services+=("$1") ;;
  esac
  shift
done
if [[ ${#services[@]} -eq 0 ]]; then
  for env in "$repo"/deploy/k8s/base/*/config.env; do
    svc=$(basename "$(dirname "$env")")
    grep -q "^EMPORIUM_${svc^^}__ADMIN_ADDR=" "$env" && services+=("$svc")
  done
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

kib() { awk -v k="$1" '/^'"$1"':/ { print $2 }' "/proc/$2/status"; }
mib() { awk -v v="$1" 'BEGIN { printf "%.1f MiB", v / 1024 }'; }

# The environment of one service on loopback: ports from its base config.env,
# admin on 19090+i, data in $work/<svc>.
service_env() {
  local svc=$1 admin=$2 up=${1^^} env=$repo/deploy/k8s/base/$1/config.env
  local out=("EMPORIUM_LOG=warn" "EMPORIUM_${up}__ADMIN_ADDR=127.0.0.1:$admin")
  local addr
  for key in GRPC_ADDR HTTP_ADDR; do
    addr=$(sed -n "s/^EMPORIUM_${up}__${key}=.*:\([0-9]*\)$/\1/p" "$env")
    [[ -n $addr ]] && out+=("EMPORIUM_${up}__${key}=127.0.0.1:$addr")
  done
  mkdir -p "$work/$svc"
  if [[ -f $repo/deploy/k8s/base/$svc/database.env || $svc == cart ]]; then
    out+=("EMPORIUM_${up}__DATABASE__URL=sqlite://$work/$svc/$svc.db")
  fi
  case $svc in
    accounts) out+=("EMPORIUM_ACCOUNTS__SIGNING_KEY_PATH=$work/$svc/key.pem") ;;
    currency) out+=("EMPORIUM_CURRENCY__RATES_PATH=$repo/data/currency-rates.json") ;;
  esac
  printf '%s\n' "${out[@]}"
}

start() { # svc admin_port [VAR=value…]; sets $pid
  local svc=$1 admin=$2 binary=$bin_dir/emporium-$1
  shift 2
  [[ -x $binary ]] || { echo "measure-rss.sh: $binary missing" >&2; exit 66; }
  mapfile -t vars < <(service_env "$svc" "$admin")
  (cd "$work/$svc" && exec env -i PATH=/usr/bin:/bin "${vars[@]}" "${extra_env[@]}" "$@" "$binary" >"$work/$svc.log" 2>&1) &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "http://127.0.0.1:$admin/readyz" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "measure-rss.sh: $svc did not become ready:" >&2
  cat "$work/$svc.log" >&2
  exit 1
}

stop() { # pid svc
  kill -TERM "$1"
  local rc=0
  wait "$1" || rc=$?
  [[ $rc -eq 0 ]] || { echo "measure-rss.sh: $2 exited $rc after SIGTERM" >&2; cat "$work/$2.log" >&2; exit 1; }
}

echo "| service | binary | idle RSS | high-water mark at idle |"
echo "|---|---|---|---|"
i=0
for svc in "${services[@]}"; do
  admin=$((19090 + i)); i=$((i + 1))
  start "$svc" "$admin"
  sleep "$settle"
  rss=$(kib VmRSS "$pid"); hwm=$(kib VmHWM "$pid")
  size=$(stat -c %s "$bin_dir/emporium-$svc")
  stop "$pid" "$svc"
  awk -v s="$svc" -v b="$size" -v r="$rss" -v h="$hwm" \
    'BEGIN { printf "| %s | %.1f MB | %.1f MiB | %.1f MiB |\n", s, b / 1e6, r / 1024, h / 1024 }'
done

[[ -z $sign_ins ]] && exit 0

# accounts under concurrent sign-ups, through the gateway's public API.
echo
echo "| concurrent sign-ups | accounts peak RSS (VmHWM) | resident after | wall time |"
echo "|---|---|---|---|"
IFS=, read -ra bursts <<<"$sign_ins"
for n in "${bursts[@]}"; do
  rm -rf "$work/accounts" "$work/gateway"
  start accounts 19190
  acc=$pid
  start gateway 19191 EMPORIUM_GATEWAY__ACCOUNTS__URL=http://127.0.0.1:50057
  gw=$pid
  start_ns=$(date +%s%N)
  curls=()
  for j in $(seq 1 "$n"); do
    curl -sS -o /dev/null -w '%{http_code}\n' -H 'content-type: application/json' \
      -d "{\"email\":\"user$j@example.com\",\"password\":\"correct horse $j\",\"name\":\"User $j\"}" \
      http://127.0.0.1:8080/api/v1/auth/signup >"$work/status.$j" &
    curls+=($!)
  done
  wait "${curls[@]}"
  elapsed=$(( ($(date +%s%N) - start_ns) / 1000000 ))
  ok=$(cat "$work"/status.* | grep -c '^201$' || true)
  rm -f "$work"/status.*
  [[ $ok -eq $n ]] || { echo "measure-rss.sh: only $ok of $n sign-ups answered 201" >&2; cat "$work/gateway.log" "$work/accounts.log" >&2; exit 1; }
  sleep 2
  hwm=$(kib VmHWM "$acc"); rss=$(kib VmRSS "$acc")
  stop "$gw" gateway
  stop "$acc" accounts
  echo "| $n | $(mib "$hwm") | $(mib "$rss") | $elapsed ms |"
done
