#!/usr/bin/env bash
# Copies the repository's data files (data/*.json: the seed catalog, the seed
# stock, the currency rates) into the Kustomize tree, which reads nothing outside
# its root. Run after editing a file in data/; deploy/tests fails while a copy
# differs.
#
# usage: deploy/k8s/sync-seed.sh [--check]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dst_dir=$repo/deploy/k8s/base/seed

status=0
for src in "$repo"/data/*.json; do
  name=$(basename "$src")
  dst=$dst_dir/$name
  if [[ ${1:-} == --check ]]; then
    if cmp -s "$src" "$dst"; then
      echo "seed/$name is up to date"
    else
      echo "deploy/k8s/base/seed/$name differs from data/$name; run deploy/k8s/sync-seed.sh" >&2
      status=1
    fi
    continue
  fi
  # A ConfigMap holds at most 1 MiB; leave headroom for metadata.
  size=$(stat -c %s "$src")
  if (( size > 900 * 1024 )); then
    echo "data/$name is $size bytes: too large for a ConfigMap (1 MiB)" >&2
    exit 1
  fi
  install -m 0644 "$src" "$dst"
  echo "copied data/$name -> deploy/k8s/base/seed/$name ($size bytes)"
done
exit $status
