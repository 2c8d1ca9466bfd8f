#!/usr/bin/env bash
# Runs every coverage-guided fuzz target in fuzz/ (cargo-fuzz, libFuzzer) for SECONDS each
# (default 60, as .ci/run does) and prints how many inputs each executed. Rust here is stable
# only: cargo-fuzz needs nightly flags (-Z sanitizer), which RUSTC_BOOTSTRAP=1 unlocks.
# A crash stops the run with the input saved in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-60}"
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz (once per machine)" >&2
  cargo install cargo-fuzz --locked --quiet
fi
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
export RUSTC_BOOTSTRAP=1
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  log="$(mktemp)"
  if ! cargo fuzz run "$t" --release -- -max_total_time="$seconds" -rss_limit_mb=2048 \
      -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz.sh: $t failed (input in fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  runs="$(awk '/stat::number_of_executed_units/ {print $2}' "$log")"
  echo "$t: ${runs:-?} executions in ${seconds}s, no crash"
  rm -f "$log"
done
