#!/usr/bin/env bash
# Assembles Rampart's container image without a container engine: the filesystem of
# deploy/image/rootfs.sh (what the Containerfile's final stage holds), FROM scratch, as an OCI
# image layout made with umoci (Debian's package), configured as the Containerfile configures
# it: user 65532, entrypoint /rampart. No base image is pulled.
#
#   scripts/image.sh BINARY OUT_DIR [TAG]    writes OUT_DIR/layout; prints the image reference
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
binary="$1"
out="$2"
tag="${3:-latest}"
command -v umoci >/dev/null || { echo "image.sh: umoci is needed (apt-get install umoci)" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
layout="$out/layout"
umoci init --layout "$layout"
umoci new --image "$layout:$tag"
umoci unpack --image "$layout:$tag" "$out/bundle" >/dev/null
"$root/deploy/image/rootfs.sh" "$binary" "$out/bundle/rootfs"
umoci repack --image "$layout:$tag" "$out/bundle" >/dev/null
umoci config --image "$layout:$tag" --config.user 65532:65532 --config.entrypoint /rampart \
  --config.cmd serve --config.cmd --help --config.exposedports 10288/tcp \
  --config.label org.opencontainers.image.title=rampart \
  --config.label org.opencontainers.image.source=https://github.com/rampart-k8s/rampart
umoci gc --layout "$layout"
rm -rf "$out/bundle"
echo "$layout:$tag"
