#!/usr/bin/env bash
# Assembles the complete runtime filesystem of an Emporium image in DEST:
#   /usr/local/bin/<binary>        the given (glibc-linked) binaries
#   <ELF interpreter>              e.g. /lib64/ld-linux-x86-64.so.2
#   /lib/<triple>/<soname>         every shared library the binaries need, transitively
#   /etc/passwd, group, nsswitch   user 65532 and "hosts: files dns"
#   /etc/ssl/certs/ca-certificates.crt
#   /tmp                           mount point (1777)
#
# Used both inside the Dockerfiles' builder stage and by deploy/images/build.sh on
# a host, so the two image paths contain the same files. Libraries are looked up by
# the DT_NEEDED entries (readelf), not by running ldd, so it also works for a binary
# cross-compiled for another architecture: the target's libraries come from the
# cross sysroot /usr/<triple>/lib (Debian's libc6-<arch>-cross packages).
#
# usage: collect-rootfs.sh DEST BINARY...
# env:   CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt)
set -euo pipefail

if [[ $# -lt 2 ]]; then
  echo "usage: $0 DEST BINARY..." >&2
  exit 64
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dest=$1
shift
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

command -v readelf >/dev/null || { echo "collect-rootfs: readelf (binutils) is required" >&2; exit 69; }
[[ -r $ca_bundle ]] || { echo "collect-rootfs: CA bundle $ca_bundle not found (install ca-certificates)" >&2; exit 69; }

triple_of() {
  case "$(readelf -h "$1" | sed -n 's/^ *Machine: *//p')" in
    *X86-64*) echo x86_64-linux-gnu ;;
    AArch64) echo aarch64-linux-gnu ;;
    *) echo "collect-rootfs: unsupported architecture of $1" >&2; return 1 ;;
  esac
}

needed_of() {
  readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}

interpreter_of() {
  readelf -l "$1" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p'
}

find_lib() {
  local soname=$1 dir
  for dir in "/lib/$triple" "/usr/lib/$triple" "/usr/$triple/lib"; do
    if [[ -e $dir/$soname ]]; then
      readlink -f "$dir/$soname"
      return 0
    fi
  done
  echo "collect-rootfs: $soname ($triple) not found on this machine" >&2
  return 1
}

triple=$(triple_of "$1")
interp=""
mkdir -p "$dest/usr/local/bin" "$dest/lib/$triple" "$dest/etc/ssl/certs" "$dest/tmp"
chmod 1777 "$dest/tmp"

declare -A seen=()
queue=()
for bin in "$@"; do
  [[ $(triple_of "$bin") == "$triple" ]] || { echo "collect-rootfs: $bin is not $triple" >&2; exit 65; }
  this_interp=$(interpreter_of "$bin")
  [[ -n $this_interp ]] || { echo "collect-rootfs: $bin is statically linked; it needs no libraries" >&2; }
  if [[ -n $this_interp ]]; then
    [[ -z $interp || $interp == "$this_interp" ]] || { echo "collect-rootfs: mixed interpreters" >&2; exit 65; }
    interp=$this_interp
  fi
  install -m 0755 "$bin" "$dest/usr/local/bin/$(basename "$bin")"
  queue+=("$bin")
done

# The interpreter is already mapped when the program starts, so a DT_NEEDED on its
# soname (libc.so.6 has one) is satisfied without a second copy in /lib/<triple>.
interp_soname=${interp##*/}
libs=()
while [[ ${#queue[@]} -gt 0 ]]; do
  elf=${queue[0]}
  queue=("${queue[@]:1}")
  while read -r soname; do
    [[ -z $soname || -n ${seen[$soname]:-} || $soname == "$interp_soname" ]] && continue
    seen[$soname]=1
    path=$(find_lib "$soname")
    install -m 0755 "$path" "$dest/lib/$triple/$soname"
    libs+=("/lib/$triple/$soname")
    queue+=("$path")
  done < <(needed_of "$elf")
done

if [[ -n $interp ]]; then
  install -D -m 0755 "$(find_lib "$interp_soname")" "$dest$interp"
  libs+=("$interp")
fi

install -m 0644 "$here/rootfs/etc/passwd" "$here/rootfs/etc/group" "$here/rootfs/etc/nsswitch.conf" "$dest/etc/"
install -m 0644 "$ca_bundle" "$dest/etc/ssl/certs/ca-certificates.crt"

printf '%s\n' "${libs[@]}" | sort
