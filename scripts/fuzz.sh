#!/usr/bin/env bash
# Runs every coverage-guided fuzz target in fuzz/ (cargo-fuzz, libFuzzer) for SECONDS each
# (default 60, as .ci/run does) and prints how many inputs each executed. Rust here is stable
# only: cargo-fuzz needs nightly flags (-Z sanitizer), which RUSTC_BOOTSTRAP=1 unlocks.
# A crash stops the run with the input saved in fuzz/artifacts/<target>/.
#
#   scripts/fuzz.sh [--runs N] [--jobs J] [SECONDS] [TARGET…]
#
#   --runs N   stop a target after N executions if that comes before SECONDS
#              (the campaigns in the README: --runs 10000000 1800)
#   --jobs J   fuzz J targets at once (each libFuzzer process uses one core)
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
runs=0
jobs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    *) break ;;
  esac
done
seconds="${1:-60}"
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz (once per machine)" >&2
  cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)
# Build once, before any clock starts, so no target's time goes to compiling.
cargo fuzz build --release >/dev/null 2>&1 || cargo fuzz build --release

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT

fuzz_one() {
  local t="$1" log="$logs/$1.log" started ended
  mkdir -p "corpus/$t"
  started=$(date +%s)
  if ! cargo fuzz run "$t" --release -- -max_total_time="$seconds" -runs="$runs" \
      -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "fuzz.sh: $t failed (input in fuzz/artifacts/$t/)" >&2
    return 1
  fi
  ended=$(date +%s)
  local executed
  executed="$(awk '/stat::number_of_executed_units/ {print $2}' "$log")"
  echo "$t: ${executed:-?} executions in $((ended - started))s, no crash"
}

# -runs=-1 is libFuzzer's "no limit".
[ "$runs" -gt 0 ] || runs=-1
for t in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
  { fuzz_one "$t" || touch "$logs/$t.failed"; } &
done
wait
! compgen -G "$logs/*.failed" >/dev/null
