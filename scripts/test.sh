#!/usr/bin/env bash
# The whole test suite: formatting, lints (warnings are errors), then every test of the
# workspace (unit, conformance, property, HTTP integration and CLI tests).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
