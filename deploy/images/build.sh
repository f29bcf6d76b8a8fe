#!/usr/bin/env bash
# Builds every Emporium image locally with podman from release binaries built on
# this machine, with no registry access: each image is FROM scratch, assembled by
# deploy/docker/collect-rootfs.sh and built from deploy/docker/<image>/Dockerfile
# with BINARY_SOURCE=prebuilt. Prints a Markdown size table at the end (the one in
# docs/deployment.md).
#
# usage: deploy/images/build.sh [--cargo] [--target-dir DIR] [--check] [IMAGE...]
#   IMAGE         a folder of deploy/docker/ (default: all of them)
#   --cargo       first build the binaries (`cargo build --locked --profile <profile> -p …`)
#   --target-dir  cargo's target directory (default: $CARGO_TARGET_DIR, else target/);
#                 service binaries come from its release/, the tools binary from
#                 tools/ (profile `tools` in Cargo.toml: built for size)
#   --check    (root only) mount each built image and let its own ELF interpreter
#              resolve the binary's libraries inside it: proves the image is complete
# env: VERSION (default: `git describe --tags`, else 0.1.0), IMAGE_PREFIX (emporium/)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
docker_dir=$repo/deploy/docker
target_dir=${CARGO_TARGET_DIR:-$repo/target}
run_cargo=false
check=false
images=()

while [[ $# -gt 0 ]]; do
  case $1 in
    --cargo) run_cargo=true ;;
    --check) check=true ;;
    --target-dir) target_dir=$(cd "$2" && pwd); shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "build.sh: unknown option $1" >&2; exit 64 ;;
    *) images+=("$1") ;;
  esac
  shift
done

if [[ ${#images[@]} -eq 0 ]]; then
  for dockerfile in "$docker_dir"/*/Dockerfile; do
    images+=("$(basename "$(dirname "$dockerfile")")")
  done
fi

# The image folder names the binary: `emporium` is the launcher, others are services.
binary_of() { if [[ $1 == emporium ]]; then echo emporium; else echo "emporium-$1"; fi; }
# ... and the cargo profile it is built with: the tools binary links every
# service but runs only batch work, so it is built for size.
profile_of() { if [[ $1 == emporium ]]; then echo tools; else echo release; fi; }

command -v podman >/dev/null || { echo "build.sh: podman not found (apt-get install -y podman)" >&2; exit 69; }

version=${VERSION:-$(git -C "$repo" describe --tags 2>/dev/null || echo 0.1.0)}
version=${version#v}
revision=$(git -C "$repo" rev-parse --verify -q HEAD || echo unknown)
created=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}" +%Y-%m-%dT%H:%M:%SZ)
prefix=${IMAGE_PREFIX:-emporium/}

if $run_cargo; then
  for profile in release tools; do
    packages=()
    for image in "${images[@]}"; do
      [[ $(profile_of "$image") == "$profile" ]] && packages+=(-p "$(binary_of "$image")")
    done
    if [[ ${#packages[@]} -gt 0 ]]; then
      (cd "$repo" && CARGO_TARGET_DIR=$target_dir cargo build --locked --profile "$profile" "${packages[@]}")
    fi
  done
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rows=()
for image in "${images[@]}"; do
  dockerfile=$docker_dir/$image/Dockerfile
  binary=$target_dir/$(profile_of "$image")/$(binary_of "$image")
  [[ -f $dockerfile ]] || { echo "build.sh: no $dockerfile" >&2; exit 66; }
  [[ -x $binary ]] || { echo "build.sh: $binary missing; build it (or pass --cargo)" >&2; exit 66; }

  context=$work/$image
  echo "==> $image: collecting the runtime filesystem"
  "$docker_dir/collect-rootfs.sh" "$context/rootfs" "$binary" | sed 's/^/    /'

  tag=$prefix$image:$version
  echo "==> $image: podman build -t $tag"
  podman build --quiet \
    --build-arg BINARY_SOURCE=prebuilt \
    --build-arg TARGETARCH="$(podman info --format "{{.Host.Arch}}")" \
    --build-arg VERSION="$version" \
    --build-arg REVISION="$revision" \
    --build-arg CREATED="$created" \
    -f "$dockerfile" -t "$tag" "$context" >/dev/null

  if $check; then
    if [[ $(id -u) -ne 0 ]]; then
      echo "build.sh: --check needs root (podman image mount + chroot); skipped" >&2
    else
      mnt=$(podman image mount "$tag")
      interp=$(readelf -l "$binary" | sed -n 's/.*program interpreter: \(.*\)\]/\1/p')
      if ! out=$(chroot "$mnt" "$interp" --list "/usr/local/bin/$(basename "$binary")" 2>&1) || grep -q "not found" <<<"$out"; then
        podman image unmount "$tag" >/dev/null
        echo "build.sh: $tag cannot load its binary:" >&2
        echo "$out" >&2
        exit 1
      fi
      podman image unmount "$tag" >/dev/null
      echo "    check: every library resolves inside the image"
    fi
  fi

  size=$(podman image inspect --format '{{.Size}}' "$tag")
  bin_size=$(stat -c %s "$binary")
  rows+=("$(awk -v i="$prefix$image" -v t="$version" -v s="$size" -v b="$bin_size" \
    'BEGIN { printf "| %s | %s | %.1f MB | %.1f MB |", i, t, s / 1e6, b / 1e6 }')")
done

echo
echo "| image | tag | image size | binary |"
echo "|---|---|---|---|"
printf '%s\n' "${rows[@]}"
