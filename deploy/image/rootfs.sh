#!/bin/sh
# The whole filesystem of Rampart's image: the binary, the shared libraries it links (from
# ldd), the CA roots for AWS and apiserver TLS, and passwd/group entries for the non-root user
# 65532. Nothing else: no shell, no package manager. Used by the Containerfile's build stage
# and by scripts/image.sh, which assembles the same image without a container engine.
#
#   deploy/image/rootfs.sh BINARY DIR
set -eu
binary="$1"
root="$2"
mkdir -p "$root/etc/ssl/certs" "$root/tmp"
chmod 1777 "$root/tmp"
cp "$binary" "$root/rampart"
chmod 0755 "$root/rampart"
# Every library the dynamic linker resolves, at the path it resolves it from (and the loader).
ldd "$binary" | awk '/=> \// { print $3 } /^[[:space:]]*\/[^ ]+ \(/ { print $1 }' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/:/sbin/nologin\nrampart:x:65532:65532:rampart:/:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nrampart:x:65532:\n' >"$root/etc/group"
