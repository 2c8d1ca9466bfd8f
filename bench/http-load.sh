#!/usr/bin/env bash
# Load-test POST /v1/authorize over loopback with wrk, beside a bare hyper server that returns
# a fixed SubjectAccessReview, in the same run. Prints both and the throughput ratio.
#
#   bench/http-load.sh [duration-seconds] [connections]
#
# Needs wrk (Debian: apt-get install wrk). Rampart is served over plain HTTP on loopback for
# this measurement (TLS would measure the handshake library, not the webhook), with the demo
# policies plus 10,000 synthetic policies so the index is exercised.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
CONNS="${2:-64}"
THREADS=2
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 1; }

cargo build --release -q -p rampart-cli --bin rampart
cargo build --release -q -p rampart-server --example bare_sar_server
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

mkdir -p "$work/policies"
cp examples/policies/demo/*.yaml "$work/policies/"
python3 - "$work/policies/synthetic.cedar" <<'PY'
import sys
verbs = ["get", "list", "watch", "create", "update", "patch", "delete"]
with open(sys.argv[1], "w") as f:
    for i in range(10000):
        effect = "forbid" if i % 10 == 0 else "permit"
        t = i // len(verbs)
        f.write(f'{effect} (principal in k8s::Group::"team-{t}", action == k8s::Action::"{verbs[i % 7]}", resource is k8s::Resource) '
                f'when {{ resource has namespace && resource.namespace == "ns-{t}" && resource.resource == "pods" }};\n')
PY

./target/release/rampart serve -p "$work/policies" --insecure-http --listen 127.0.0.1:18080 --no-watch --validation off 2>"$work/rampart.log" &
./target/release/examples/bare_sar_server 127.0.0.1:18081 2>/dev/null &
for port in 18080 18081; do
  for _ in $(seq 1 100); do curl -sf -o /dev/null "http://127.0.0.1:$port/healthz" -X POST -d '{}' 2>/dev/null && break; (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
done

run() { SAR_FILE=bench/sar.json wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" -s "bench/$2" "$1" | grep RESULT; }
rps() { sed -E 's/.*rps=([0-9]+).*/\1/' <<<"$1"; }
echo "wrk -t$THREADS -c$CONNS -d${DURATION}s, body bench/sar.json, policies: demo + 10,000 synthetic"
bare=$(run http://127.0.0.1:18081/v1/authorize post.lua)
echo "bare hyper (fixed answer)          : $bare"
same=$(run http://127.0.0.1:18080/v1/authorize post.lua)
echo "rampart, repeated review (cached)  : $same"
uniq=$(run http://127.0.0.1:18080/v1/authorize post-unique.lua)
echo "rampart, every review distinct     : $uniq"
python3 -c "print(f'throughput ratio rampart/bare: repeated {$(rps "$same")/$(rps "$bare"):.2f}, distinct {$(rps "$uniq")/$(rps "$bare"):.2f}')"
