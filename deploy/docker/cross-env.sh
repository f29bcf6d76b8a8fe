#!/bin/sh
# Prepares the Rust builder stage to compile for TARGETARCH and writes the cargo
# environment for it to /etc/emporium-build.env (sourced by the build step).
#
# The builder runs on the build machine's own platform ($BUILDPLATFORM), so an
# arm64 image built on amd64 (or the reverse) is cross-compiled at native speed
# instead of running rustc under QEMU. Only the linker and the target's glibc
# come from Debian's cross packages; bundled C code (SQLite) uses the same gcc.
#
# usage: cross-env.sh [TARGETARCH]   (amd64 | arm64; default: the builder's own)
set -eu

build_arch=$(dpkg --print-architecture)
target_arch=${1:-$build_arch}

case "$target_arch" in
  amd64) rust_target=x86_64-unknown-linux-gnu; gnu=x86_64-linux-gnu ;;
  arm64) rust_target=aarch64-unknown-linux-gnu; gnu=aarch64-linux-gnu ;;
  *) echo "cross-env: unsupported TARGETARCH '$target_arch' (amd64 or arm64)" >&2; exit 64 ;;
esac

env_file=/etc/emporium-build.env
echo "export RUST_TARGET=$rust_target" > "$env_file"

if [ "$target_arch" != "$build_arch" ]; then
  # Debian spells the triple with dashes in package names: gcc-x86-64-linux-gnu.
  pkg_gnu=$(echo "$gnu" | tr _ -)
  apt-get update
  apt-get install -y --no-install-recommends "gcc-$pkg_gnu" "libc6-dev-$target_arch-cross"
  rm -rf /var/lib/apt/lists/*
  upper=$(echo "$rust_target" | tr 'a-z-' 'A-Z_')
  lower=$(echo "$rust_target" | tr '-' '_')
  {
    echo "export CARGO_TARGET_${upper}_LINKER=$gnu-gcc"
    echo "export CC_${lower}=$gnu-gcc"
    echo "export AR_${lower}=$gnu-ar"
  } >> "$env_file"
fi

rustup target add "$rust_target"
cat "$env_file"
