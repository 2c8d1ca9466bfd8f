#!/usr/bin/env bash
# Regenerates crates/rampart-rbac/data/bootstrap/v<MINOR>.yaml from upstream's golden files of
# kube-apiserver's default RBAC objects at a Kubernetes release (the k8s.io/kubernetes module,
# from the Go module proxy). With --check, compares instead of writing and fails on a difference.
#
#   scripts/bootstrap-roles.sh 1.36.3 [--check]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="${1:?usage: bootstrap-roles.sh VERSION [--check]}"
minor="${version%.*}"
out="$root/crates/rampart-rbac/data/bootstrap/v$minor.yaml"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
dir="$(cd "$work" && go mod init bootstrap-roles >/dev/null 2>&1 && go mod download -json "k8s.io/kubernetes@v$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
data="$dir/plugin/pkg/auth/authorizer/rbac/bootstrappolicy/testdata"
[ -d "$data" ] || { echo "bootstrap-roles.sh: no $data" >&2; exit 1; }
{
  echo "# kube-apiserver v$version's default RBAC objects (kubernetes.io/bootstrapping: rbac-defaults):"
  echo "# upstream's golden files k8s.io/kubernetes@v$version plugin/pkg/auth/authorizer/rbac/bootstrappolicy/testdata/"
  echo "# {cluster-roles,controller-roles,namespace-roles,cluster-role-bindings,controller-role-bindings,namespace-role-bindings}.yaml,"
  echo "# which upstream's own test holds equal to what the apiserver creates with default feature gates."
  echo "# Copyright The Kubernetes Authors, Apache-2.0. Regenerate: scripts/bootstrap-roles.sh $version"
  for f in cluster-roles controller-roles namespace-roles cluster-role-bindings controller-role-bindings namespace-role-bindings; do
    echo "---"
    cat "$data/$f.yaml"
  done
} > "$work/generated.yaml"
if [ "${2:-}" = "--check" ]; then
  diff -q "$work/generated.yaml" "$out" >/dev/null || { echo "bootstrap-roles.sh: $out differs from k8s.io/kubernetes@v$version" >&2; exit 1; }
else
  cp "$work/generated.yaml" "$out"
fi
