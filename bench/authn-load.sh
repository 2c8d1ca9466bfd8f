#!/usr/bin/env bash
# TokenReview load, side by side: `rampart serve` and aws-iam-authenticator (the Go original,
# built by scripts/peers.sh) on loopback, both over TLS, both verifying against the same local
# STS stub (crates/rampart-cli/examples/sts_stub.rs, which answers at once, so the
# authenticators are measured, not STS). Two loads with wrk: the same token every time (an
# identity an authenticator may cache) and a new token every request. Prints requests/s, p50,
# p99, CPU time per request and resident memory after the load, and Rampart's ratio.
#
#   bench/authn-load.sh [duration-seconds] [connections]
#
# Needs root (a mount namespace for the original's /etc/hosts, port 443 on 127.0.0.2), wrk,
# util-linux's unshare and the go command (for the original).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNS="${2:-32}"
THREADS=2
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }

cargo build --release -q -p rampart-cli --bin rampart --example sts_stub
original="$(scripts/peers.sh)/aws-iam-authenticator"
work=$(mktemp -d)
# The original does not stop on SIGTERM while connections linger: kill it outright.
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -9 -f "$work/authenticator.yaml" || true; rm -rf "$work"' EXIT

./target/release/examples/sts_stub 127.0.0.1:18090 127.0.0.2:443 "$work/sts-ca.pem" 2>/dev/null &
for _ in $(seq 1 100); do [ -s "$work/sts-ca.pem" ] && break; sleep 0.1; done

mapping='- userarn: arn:aws:iam::123456789012:user/bench
  username: bench
  groups: [benchers]'
printf 'data:\n  mapUsers: |\n%s\n' "$(sed 's/^/    /' <<<"$mapping")" >"$work/aws-auth.yaml"
printf 'clusterID: bench\nserver:\n  mapUsers:\n%s\n' "$(sed 's/^/  /' <<<"$mapping")" >"$work/authenticator.yaml"
printf '127.0.0.1 localhost\n127.0.0.2 sts.amazonaws.com sts.us-east-1.amazonaws.com\n' >"$work/hosts"
mkdir -p "$work/policies" "$work/state"
echo 'permit (principal, action, resource);' >"$work/policies/p.cedar"

./target/release/rampart serve -p "$work/policies" --no-watch --listen 127.0.0.1:18091 \
  --cert-dir "$work/rampart-certs" \
  --cluster-id bench --aws-auth "$work/aws-auth.yaml" --authentication-mode CONFIG_MAP \
  --sts-endpoint http://127.0.0.1:18090 --region us-east-1 2>"$work/rampart.log" &
rampart_pid=$!
SSL_CERT_FILE="$work/sts-ca.pem" unshare --mount --propagation private -- \
  sh -c 'mount --bind "$0" /etc/hosts && exec "$@"' "$work/hosts" \
  "$original" server -c "$work/authenticator.yaml" --address 127.0.0.1 --port 18092 \
  --state-dir "$work/state" --generate-kubeconfig="$work/state/kubeconfig.yaml" >/dev/null 2>"$work/original.log" &
original_pid=$!
for port in 18091 18092; do
  for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done
# The original's pid is unshare's until it execs; the server is its only child then.
sleep 0.5
original_pid=$(pgrep -P "$original_pid" -f aws-iam-authenticator || echo "$original_pid")

now=$(date -u +%Y%m%dT%H%M%SZ)
export TOKEN_URL="https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIABENCH%2F${now:0:8}%2Fus-east-1%2Fsts%2Faws4_request&X-Amz-Date=$now&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# One load: prints "rps p50 p99 cpu_us_per_request rss_mib".
load() { # url, pid, distinct
  local before after result
  before=$(cpu_ticks "$2")
  result=$(DISTINCT="$3" wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s bench/authn.lua "$1" | grep RESULT)
  after=$(cpu_ticks "$2")
  grep -q 'socket_errors=0 non2xx=0$' <<<"$result" || { echo "errors under load: $result" >&2; exit 1; }
  python3 - "$result" "$before" "$after" "$(getconf CLK_TCK)" "$(awk '/VmRSS/ {print $2}' "/proc/$2/status")" <<'PY'
import re, sys
r = dict(re.findall(r"(\w+)=(\d+)", sys.argv[1]))
ticks = int(sys.argv[3]) - int(sys.argv[2])
cpu_us = ticks / int(sys.argv[4]) * 1e6 / int(r["requests"])
print(f'{r["rps"]} {r["p50_us"]} {r["p99_us"]} {cpu_us:.1f} {int(sys.argv[5]) / 1024:.0f}')
PY
}

echo "TokenReview load: wrk -t$THREADS -c$CONNS -d${DURATION}s over TLS on loopback, STS stubbed"
printf '%-34s %10s %9s %9s %12s %9s\n' "" "req/s" "p50 µs" "p99 µs" "CPU µs/req" "RSS MiB"
declare -A R
for case in same:0 distinct:1; do
  name=${case%%:*}; distinct=${case##*:}
  R[rampart-$name]=$(load https://127.0.0.1:18091/v1/authenticate "$rampart_pid" "$distinct")
  R[original-$name]=$(load https://127.0.0.1:18092/authenticate "$original_pid" "$distinct")
  printf '%-34s %10s %9s %9s %12s %9s\n' "rampart, $name token" ${R[rampart-$name]}
  printf '%-34s %10s %9s %9s %12s %9s\n' "aws-iam-authenticator, $name token" ${R[original-$name]}
done
for name in same distinct; do
  read -r r_rps _ r_p99 _ <<<"${R[rampart-$name]}"
  read -r o_rps _ o_p99 _ <<<"${R[original-$name]}"
  python3 -c "print(f'$name token: rampart/original throughput {$r_rps/$o_rps:.2f}x, p99 {$r_p99/$o_p99:.2f}x')"
done
