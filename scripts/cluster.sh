#!/usr/bin/env bash
# A real Kubernetes control plane on loopback, with Rampart wired in exactly as
# `rampart kube-config --target apiserver` prints it: etcd, kube-apiserver (RBAC + Node +
# Rampart authorization, Rampart's token authentication and admission webhooks, audit log),
# moto as AWS STS, `rampart serve`, and kube-controller-manager for ClusterRole aggregation
# (admin/edit/view as a cluster really has them). No scheduler or kubelet: pods stay Pending,
# which is all admission needs.
#
#   scripts/cluster.sh up        start everything (builds the binaries on first use)
#   scripts/cluster.sh env       print shell exports: eval "$(scripts/cluster.sh env)"
#   scripts/cluster.sh down      stop everything and delete the state
#   scripts/cluster.sh rampart-stop | rampart-start   stop or restart Rampart only
#   scripts/cluster.sh kms-stop | kms-start           stop or restart the KMS plugin only
#
# Options (before or after the command):
#   --dir DIR          state directory (default: $RAMPART_CLUSTER_DIR or target/e2e-cluster)
#   --owner-pid PID    tear down by itself when that process exits (used by the e2e tests)
# Environment: RAMPART_BIN (the rampart binary; default: build target/release/rampart),
# RAMPART_AWS_PEERS_BIN (where moto_server lives; default: .venv-peers/bin, then PATH).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${RAMPART_CLUSTER_DIR:-$root/target/e2e-cluster}"
owner=""
cmd=""
# The comment block at the top of this file, without its '#'.
usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir="$2"; shift 2 ;;
    --owner-pid) owner="$2"; shift 2 ;;
    up|down|env|rampart-stop|rampart-start|kms-stop|kms-start) cmd="$1"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "cluster.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$cmd" ] || { usage >&2; exit 2; }
if [ "$cmd" = up ]; then mkdir -p "$dir"; fi
[ -d "$dir" ] || { echo "cluster.sh: no cluster in $dir (run: scripts/cluster.sh up)" >&2; exit 1; }
dir="$(cd "$dir" && pwd)"
CLUSTER_ID=rampart-e2e
SELF=system:serviceaccount:rampart-system:rampart

log() { echo "cluster.sh: $*" >&2; }
die() { log "$*"; exit 1; }

# Start a long-running process in its own session, output to logs/NAME.log, pid in pids/NAME.
launch() {
  local name="$1"; shift
  mkdir -p "$dir/logs" "$dir/pids"
  setsid "$@" >"$dir/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/pids/$name"
}

# A process that exited but was not reaped yet (a zombie) counts as gone.
alive() { [ -r "/proc/$1/stat" ] && ! awk '{exit ($3 == "Z") ? 0 : 1}' "/proc/$1/stat"; }

stop() { # name…
  local name pid
  for name in "$@"; do
    [ -f "$dir/pids/$name" ] || continue
    pid="$(cat "$dir/pids/$name")"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/pids/$name"
  done
}

# wait_for WHAT SECONDS COMMAND…: retry until the command succeeds, or fail with the log tail.
wait_for() {
  local what="$1" seconds="$2"; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ -f "$dir/pids/$what" ] && ! kill -0 "$(cat "$dir/pids/$what")" 2>/dev/null; then
      tail -n 30 "$dir/logs/$what.log" >&2 || true
      die "$what exited during start (log: $dir/logs/$what.log)"
    fi
    if [ $SECONDS -ge $deadline ]; then
      tail -n 30 "$dir/logs/$what.log" >&2 || true
      die "$what did not become ready in ${seconds}s (log: $dir/logs/$what.log)"
    fi
    sleep 0.2
  done
}

free_ports() { # n → n free loopback ports
  python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# Throw-away PKI: a CA, the apiserver's serving certificate, client certificates, and the
# service-account signing key. Nothing here outlives `down`.
pki() {
  local p="$dir/pki"
  mkdir -p "$p"
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -days 2 \
    -subj "/CN=rampart-e2e-ca" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
  issue apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1
extendedKeyUsage=serverAuth"
  issue admin "/O=system:masters/CN=e2e-admin" "extendedKeyUsage=clientAuth"
  issue rampart "/CN=$SELF" "extendedKeyUsage=clientAuth"
  issue sample-user "/O=sample-group/O=requires-labels/CN=sample-user" "extendedKeyUsage=clientAuth"
  issue kube-scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
  issue kube-controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
  issue node "/O=system:nodes/CN=system:node:e2e-node" "extendedKeyUsage=clientAuth"
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
}

issue() { # name subject extensions
  local p="$dir/pki"
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj "$2" \
    -keyout "$p/$1.key" -out "$p/$1.csr" 2>/dev/null
  openssl x509 -req -in "$p/$1.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial -days 2 -sha256 \
    -extfile <(printf '%s\n' "$3") -out "$p/$1.crt" 2>/dev/null
  rm -f "$p/$1.csr"
}

kubeconfig() { # name → kubeconfig using pki/name.{crt,key}
  local out="$dir/users/$1.kubeconfig"
  mkdir -p "$dir/users"
  KUBECONFIG="$out" "$bin/kubectl" config set-cluster e2e --server="https://127.0.0.1:$api_port" \
    --certificate-authority="$dir/pki/ca.crt" --embed-certs >/dev/null
  KUBECONFIG="$out" "$bin/kubectl" config set-credentials "$1" --client-certificate="$dir/pki/$1.crt" \
    --client-key="$dir/pki/$1.key" --embed-certs >/dev/null
  KUBECONFIG="$out" "$bin/kubectl" config set-context e2e --cluster=e2e --user="$1" >/dev/null
  KUBECONFIG="$out" "$bin/kubectl" config use-context e2e >/dev/null
}

load_state() {
  [ -f "$dir/state" ] || die "no cluster in $dir (run: scripts/cluster.sh up)"
  # shellcheck disable=SC1091
  . "$dir/state"
}

# Image signatures: a loopback registry (the CNCF distribution server), a cosign key pair, and
# the ImagePolicy `rampart serve --image-policy` loads: images under signed/ need the key.
images() {
  mkdir -p "$dir/images" "$dir/signing"
  cat >"$dir/images/registry.yml" <<EOF
version: 0.1
storage: {filesystem: {rootdirectory: $dir/images/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$registry_port}
log: {level: error}
EOF
  launch registry docker-registry serve "$dir/images/registry.yml"
  wait_for registry 30 curl -sf "http://127.0.0.1:$registry_port/v2/"
  (cd "$dir/signing" && COSIGN_PASSWORD='' "$bin/cosign" generate-key-pair >/dev/null 2>&1) \
    || die "cosign generate-key-pair failed"
  cat >"$dir/images/policy.yaml" <<EOF
apiVersion: rampart.dev/v1alpha1
kind: ImagePolicy
metadata: {name: e2e-signed}
spec:
  images: ["127.0.0.1:$registry_port/signed/*"]
  authorities:
    - name: e2e-key
      key: {file: $dir/signing/cosign.pub}
EOF
}

# Secrets at rest: a key in moto's KMS behind alias/rampart-e2e, wrapping the plugin's key.
aws_env() { # command… → run with moto as AWS (a command, not a function: launch execs it)
  env AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 \
    AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_EC2_METADATA_DISABLED=true "$@"
}

kms_key() {
  local key
  key="$(aws_env "$aws" kms create-key --query KeyMetadata.KeyId --output text)" || die "cannot create the KMS key in moto"
  aws_env "$aws" kms create-alias --alias-name alias/rampart-e2e --target-key-id "$key" || die "cannot create the KMS alias"
}

start_kms() {
  load_state
  launch kms env AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 \
    AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_EC2_METADATA_DISABLED=true \
    "$rampart" kms-plugin --socket "$dir/kms.sock" --aws-kms-key alias/rampart-e2e \
    --cluster-name "$CLUSTER_ID" --health-ttl 1s
  wait_for kms 30 "$rampart" kms status --socket "$dir/kms.sock"
}

start_rampart() {
  load_state
  launch rampart "$rampart" serve \
    --listen "127.0.0.1:$rampart_port" --cert-dir "$dir/rampart-certs" \
    -p "$dir/policies/e2e" -p "$dir/policies/demo" --policies-from-cluster \
    --unified "$dir/policies/unified" \
    --guardrails "$root/e2e/cluster/guardrails.yaml" --namespaces-from-cluster \
    --kubeconfig "$dir/users/rampart.kubeconfig" --cluster-refresh-interval 1s \
    --cluster-id "$CLUSTER_ID" --aws-auth-from-cluster --access-entries "$root/e2e/cluster/access-entries.yaml" \
    --sts-endpoint "http://127.0.0.1:$sts_port" --region us-east-1 \
    --identity-from-cluster --service-account-lookup-grace-period 3s --aws-default-region us-east-1 \
    --oidc-issuer https://kubernetes.default.svc --service-account-key-file "$dir/pki/sa.pub" \
    --self-identity "$SELF" \
    --image-policy "$dir/images/policy.yaml" --image-policies-from-cluster \
    --insecure-registry "127.0.0.1:$registry_port"
  wait_for rampart 30 curl -sf --cacert "$dir/rampart-certs/ca.crt" "https://127.0.0.1:$rampart_port/readyz"
}

up() {
  [ -f "$dir/state" ] && die "a cluster already runs in $dir (scripts/cluster.sh down first)"
  bin="$("$root/scripts/peers.sh")"
  rampart="${RAMPART_BIN:-}"
  if [ -z "$rampart" ]; then
    (cd "$root" && cargo build --release --quiet -p rampart-cli) || die "cannot build rampart"
    rampart="$root/target/release/rampart"
  fi
  local peers="${RAMPART_AWS_PEERS_BIN:-$root/.venv-peers/bin}"
  moto="$peers/moto_server"
  [ -x "$moto" ] || moto="$(command -v moto_server || true)"
  [ -n "$moto" ] || die "moto_server not found: run scripts/test.sh once (it installs .venv-peers) or pip install 'moto[server]'"
  aws="$peers/aws"
  [ -x "$aws" ] || aws="$(command -v aws || true)"
  [ -n "$aws" ] || die "the AWS CLI is needed to create the KMS key: run scripts/test.sh once or pip install awscli"
  command -v openssl >/dev/null || die "openssl is needed for the throw-away PKI"

  command -v docker-registry >/dev/null || die "docker-registry is needed for the image-signature tests (apt-get install docker-registry)"
  read -r etcd_port etcd_peer_port api_port rampart_port moto_port sts_port registry_port <<<"$(free_ports 7)"
  cat >"$dir/state" <<EOF
bin=$bin
rampart=$rampart
etcd_port=$etcd_port
api_port=$api_port
rampart_port=$rampart_port
moto_port=$moto_port
sts_port=$sts_port
registry_port=$registry_port
aws=$aws
EOF
  log "state in $dir; apiserver on https://127.0.0.1:$api_port, Rampart on https://127.0.0.1:$rampart_port"
  if [ -n "$owner" ]; then
    # Reaper: tears the cluster down when the owning process (a test run) ends, however it ends.
    setsid bash -c "while kill -0 $owner 2>/dev/null; do sleep 1; done; exec '$0' down --dir '$dir'" \
      >/dev/null 2>&1 </dev/null &
  fi
  pki
  mkdir -p "$dir/policies"
  cp -r "$root/examples/policies/demo" "$dir/policies/demo"
  cp -r "$root/e2e/cluster/policies/e2e" "$dir/policies/e2e"
  cp -r "$root/e2e/cluster/unified" "$dir/policies/unified"
  images


  # The wiring, exactly as a user gets it.
  "$rampart" kube-config --target apiserver --output-dir "$dir/wiring" --cert-dir "$dir/rampart-certs" \
    --url "https://127.0.0.1:$rampart_port" --self-identity "$SELF" \
    --cluster-id "$CLUSTER_ID" --api-server "https://127.0.0.1:$api_port" --api-server-ca "$dir/pki/ca.crt" \
    --workload-identity --unified --images --encryption --kms-socket "$dir/kms.sock" >"$dir/wiring.txt"

  # moto first: it is AWS KMS for the KMS plugin the apiserver needs from its start.
  launch moto "$moto" -H 127.0.0.1 -p "$moto_port"
  wait_for moto 30 curl -sf "http://127.0.0.1:$moto_port/moto-api/"
  kms_key
  start_kms

  launch etcd "$bin/etcd" --name e2e --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
    --initial-cluster "e2e=http://127.0.0.1:$etcd_peer_port" --log-level warn
  wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"

  # shellcheck disable=SC2046  # one flag per line, no spaces inside
  launch kube-apiserver "$bin/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port" \
    --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc --api-audiences https://kubernetes.default.svc,sts.amazonaws.com \
    --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
    --service-cluster-ip-range 10.0.0.0/24 --allow-privileged \
    --audit-policy-file "$root/e2e/cluster/audit-policy.yaml" --audit-log-path "$dir/logs/audit.log" \
    --enable-admission-plugins NodeRestriction --disable-admission-plugins PodSecurity \
    $(cat "$dir/wiring/kube-apiserver.flags")
  for user in admin rampart sample-user kube-scheduler kube-controller-manager node; do kubeconfig "$user"; done
  export KUBECONFIG="$dir/users/admin.kubeconfig"
  wait_for kube-apiserver 120 "$bin/kubectl" get --raw /readyz
  "$bin/kubectl" apply -f "$root/e2e/cluster/bootstrap.yaml" -f "$root/deploy/pod-identity/crd.yaml" \
    -f "$root/deploy/policies/crd.yaml" -f "$root/deploy/images/crd.yaml" >/dev/null
  "$bin/kubectl" wait --for condition=established crd/policies.cedar.k8s.aws >/dev/null
  "$bin/kubectl" apply -f "$root/deploy/policies/rbac.yaml" >/dev/null
  # The ServiceAccount admission plugin needs a namespace's default service account: created
  # here rather than awaited from the controller-manager, so the first test cannot race it.
  "$bin/kubectl" create serviceaccount default -n default --dry-run=client -o yaml | "$bin/kubectl" apply -f - >/dev/null
  start_controller_manager

  launch sts-proxy python3 "$root/e2e/cluster/sts-proxy.py" "$sts_port" "http://127.0.0.1:$moto_port"

  start_rampart
  "$bin/kubectl" apply -f "$dir/wiring/validating-webhook.yaml" -f "$dir/wiring/mutating-webhook.yaml" \
    -f "$dir/wiring/unified-webhook.yaml" -f "$dir/wiring/images-webhook.yaml" >/dev/null
  log "ready: eval \"\$(scripts/cluster.sh env --dir $dir)\" then use kubectl"
}

# Each controller with a service account of its own (--use-service-account-credentials), as
# clusters run it, so its requests pass the same authorizer chain — Rampart's webhook included —
# as any other client's. Only ClusterRole aggregation: the tests make their namespaces' service
# accounts themselves, and a garbage collector would race the objects they create.
start_controller_manager() {
  launch kube-controller-manager "$bin/kube-controller-manager" \
    --kubeconfig "$dir/users/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$dir/users/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$dir/users/kube-controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
    --use-service-account-credentials \
    --controllers clusterrole-aggregation
  # Ready once admin/edit/view carry their aggregated rules.
  wait_for kube-controller-manager 60 \
    sh -c "'$bin/kubectl' get clusterrole admin -o jsonpath='{.rules[0].verbs}' | grep -q ."
}

down() {
  # Only ever delete a directory this script made (it holds the state file).
  [ -f "$dir/state" ] || die "no cluster in $dir: nothing to stop"
  stop rampart sts-proxy kube-controller-manager kube-apiserver kms moto registry etcd
  rm -rf "$dir"
}

env_cmd() {
  load_state
  cat <<EOF
export PATH="$bin:\$PATH"
export KUBECONFIG="$dir/users/admin.kubeconfig"
export RAMPART_E2E_DIR="$dir"
export RAMPART_E2E_API="https://127.0.0.1:$api_port"
export RAMPART_E2E_RAMPART="https://127.0.0.1:$rampart_port"
export RAMPART_E2E_MOTO="http://127.0.0.1:$moto_port"
export RAMPART_E2E_STS="http://127.0.0.1:$sts_port"
export RAMPART_E2E_CLUSTER_ID="$CLUSTER_ID"
export RAMPART_E2E_REGISTRY="127.0.0.1:$registry_port"
export RAMPART_E2E_ETCD="http://127.0.0.1:$etcd_port"
export RAMPART_E2E_AWS="$aws"
EOF
}

case "$cmd" in
  up) up ;;
  down) down ;;
  env) env_cmd ;;
  rampart-stop) stop rampart ;;
  rampart-start) start_rampart ;;
  kms-stop) stop kms ;;
  kms-start) start_kms ;;
esac
