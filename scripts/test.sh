#!/usr/bin/env bash
# The whole test suite: formatting, lints (warnings are errors), then every test of the
# workspace — unit, conformance, property, HTTP integration, CLI, the IAM tests against moto and
# the AWS CLI, and the end-to-end tests through a real kube-apiserver, etcd and kubectl.
#
# Installs what it needs on first run: the moto/awscli/boto3 peers into .venv-peers,
# network-config-analyzer into .venv-nca, and
# kube-apiserver, kubectl, etcd and helm, built with the go command from the versions pinned
# in e2e/tools/ into ~/.cache/rampart (about 10 minutes once per machine; scripts/peers.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v openssl >/dev/null || ! command -v curl >/dev/null || ! command -v umoci >/dev/null \
  || ! command -v docker-registry >/dev/null; then
  # The e2e harness makes its throw-away PKI with openssl and probes health with curl; the
  # image test assembles the container image with umoci; the image-signature tests push to
  # the CNCF distribution registry (Debian's docker-registry).
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -qq openssl curl umoci docker-registry >/dev/null
  fi
fi
for tool in go python3 openssl curl umoci chroot unshare docker-registry; do
  command -v "$tool" >/dev/null || { echo "test.sh: $tool is required" >&2; exit 1; }
done

if [ ! -x .venv-peers/bin/moto_server ] || [ ! -x .venv-peers/bin/aws ]; then
  echo "installing test peers (moto, awscli, boto3) into .venv-peers" >&2
  python3 -m venv .venv-peers
  .venv-peers/bin/pip install --quiet --disable-pip-version-check "moto[server]" awscli boto3
fi
# network-config-analyzer, the anchor of the NetworkPolicy differential test, in a venv of its
# own: it pins a PyYAML that moto's dependencies refuse.
if [ ! -x .venv-nca/bin/nca ]; then
  echo "installing network-config-analyzer into .venv-nca" >&2
  python3 -m venv .venv-nca
  .venv-nca/bin/pip install --quiet --disable-pip-version-check network-config-analyzer
fi
export RAMPART_AWS_PEERS_BIN="$PWD/.venv-peers/bin"
export RAMPART_REQUIRE_AWS_PEERS=1

# The real control plane: built here once, then reused (the e2e tests fail, never skip,
# without it).
scripts/peers.sh >/dev/null

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

# Every fuzz target for 60 s, two at a time (one per core): 5 minutes for the nine.
# scripts/fuzz.sh --runs 10000000 1800 is the long campaign the README reports.
scripts/fuzz.sh --jobs 2 "${RAMPART_FUZZ_SECONDS:-60}"
