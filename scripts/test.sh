#!/usr/bin/env bash
# The whole test suite: formatting, lints (warnings are errors), then every test of the
# workspace (unit, conformance, property, HTTP integration, CLI, and the end-to-end IAM tests
# against moto and the AWS CLI, which this script installs into .venv-peers on first run).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv-peers/bin/moto_server ] || [ ! -x .venv-peers/bin/aws ]; then
  echo "installing test peers (moto, awscli) into .venv-peers" >&2
  python3 -m venv .venv-peers
  .venv-peers/bin/pip install --quiet --disable-pip-version-check "moto[server]" awscli boto3
fi
export RAMPART_AWS_PEERS_BIN="$PWD/.venv-peers/bin"
export RAMPART_REQUIRE_AWS_PEERS=1

cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
