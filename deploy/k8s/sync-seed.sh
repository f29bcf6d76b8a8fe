#!/usr/bin/env bash
# Copies the catalog data file into the Kustomize tree (kustomize reads nothing
# outside its root). Run after editing data/catalog.json; deploy/tests fails while
# the copy differs.
#
# usage: deploy/k8s/sync-seed.sh [--check]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
src=$repo/data/catalog.json
dst=$repo/deploy/k8s/base/seed/catalog.json

if [[ ${1:-} == --check ]]; then
  if cmp -s "$src" "$dst"; then
    echo "seed copy is up to date"
  else
    echo "deploy/k8s/base/seed/catalog.json differs from data/catalog.json; run deploy/k8s/sync-seed.sh" >&2
    exit 1
  fi
  exit 0
fi

# A ConfigMap holds at most 1 MiB; leave headroom for metadata.
size=$(stat -c %s "$src")
if (( size > 900 * 1024 )); then
  echo "data/catalog.json is $size bytes: too large for a ConfigMap (1 MiB)" >&2
  exit 1
fi
install -m 0644 "$src" "$dst"
echo "copied data/catalog.json -> deploy/k8s/base/seed/catalog.json ($size bytes)"
