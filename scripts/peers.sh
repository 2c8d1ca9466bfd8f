#!/usr/bin/env bash
# Builds the real Kubernetes control plane the end-to-end tests run against — kube-apiserver,
# kube-controller-manager and kubectl from k8s.io/kubernetes, etcd and etcdctl from go.etcd.io/etcd — Helm (helm.sh/helm/v4)
# for the chart tests, cosign and crane for the image-signature tests, and the Go originals
# compared side by side, at the versions pinned in e2e/tools/*/go.mod, into a cache outside the
# clone keyed by version, so only the first run on a machine pays for the build (about 20 minutes
# on 2 cores). Prints the directory holding the binaries. Fails loudly when the go command or a
# build fails: the e2e tests never skip.
#
#   scripts/peers.sh            # build if missing, print the bin directory
#   RAMPART_PEERS_CACHE=DIR     # cache root (default: ~/.cache/rampart)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${RAMPART_PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rampart}"

command -v go >/dev/null || { echo "peers.sh: the go command is needed to build kube-apiserver, kubectl and etcd" >&2; exit 1; }

version_of() { # module path, go.mod → pinned version
  awk -v m="$1" '$1 == "require" && $2 == m { print $3 } $1 == m && $2 ~ /^v/ { print $2 }' "$2" | head -n1
}
k8s_version="$(version_of k8s.io/kubernetes "$root/e2e/tools/kubernetes/go.mod")"
etcd_version="$(version_of go.etcd.io/etcd/server/v3 "$root/e2e/tools/etcd/go.mod")"
bin="$cache/k8s-$k8s_version-etcd-$etcd_version/bin"

# Stamp the release into the binaries, as Kubernetes' own build does, so `kubectl version` and the
# apiserver's /version report it instead of v0.0.0-master.
k8s_minor="${k8s_version#v1.}"; k8s_minor="${k8s_minor%%.*}"
k8s_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"
done

# Each build writes to a file of its own (".tmp.<pid>") and renames it into place: the e2e tests
# and the side-by-side test may run this script at the same time on a new machine.
build() { # tools dir, output name, package, extra ldflags
  local dir="$1" name="$2" pkg="$3" ldflags="${4:-}"
  [ -x "$bin/$name" ] && return 0
  echo "peers.sh: building $name ($pkg) — first run on this machine only" >&2
  mkdir -p "$bin"
  (cd "$root/e2e/tools/$dir" && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w$ldflags" -o "$bin/$name.tmp.$$" "$pkg")
  mv "$bin/$name.tmp.$$" "$bin/$name"
}

# Tools whose versions move independently of the control plane get a cache directory of their
# own, keyed by their version, linked into $bin.
build_linked() { # tools dir, output name, package, version, version variable (for -X)
  local dir="$1" name="$2" pkg="$3" version="$4" variable="$5"
  local own="$cache/$name-$version"
  [ -x "$own/$name" ] || {
    echo "peers.sh: building $name $version ($pkg) — first run on this machine only" >&2
    mkdir -p "$own"
    (cd "$root/e2e/tools/$dir" && CGO_ENABLED=0 go build -trimpath \
      -ldflags="-s -w -X $variable=$version" -o "$own/$name.tmp.$$" "$pkg")
    mv "$own/$name.tmp.$$" "$own/$name"
  }
  ln -sfn "$own/$name" "$bin/$name"
}
helm_version="$(version_of helm.sh/helm/v4 "$root/e2e/tools/helm/go.mod")"
# The Go originals Rampart is compared with side by side (tests/originals.rs), pinned in
# e2e/tools/originals/go.mod. Only aws-iam-authenticator is served by the Go module proxy here;
# see the README's "Compared with the originals" for the others.
authenticator_version="$(version_of sigs.k8s.io/aws-iam-authenticator "$root/e2e/tools/originals/go.mod")"

# The signing peers of the image-signature tests, pinned in e2e/tools/signing/go.mod.
cosign_version="$(version_of github.com/sigstore/cosign/v2 "$root/e2e/tools/signing/go.mod")"
crane_version="$(version_of github.com/google/go-containerregistry "$root/e2e/tools/signing/go.mod")"

build etcd etcd go.etcd.io/etcd/server/v3
build etcd etcdctl go.etcd.io/etcd/etcdctl/v3
build kubernetes kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver "$k8s_ldflags"
build kubernetes kubectl k8s.io/kubernetes/cmd/kubectl "$k8s_ldflags"
build kubernetes kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager "$k8s_ldflags"
build_linked helm helm helm.sh/helm/v4/cmd/helm "$helm_version" helm.sh/helm/v4/internal/version.version
build_linked originals aws-iam-authenticator sigs.k8s.io/aws-iam-authenticator/cmd/aws-iam-authenticator \
  "$authenticator_version" sigs.k8s.io/aws-iam-authenticator/pkg.Version
build_linked signing cosign github.com/sigstore/cosign/v2/cmd/cosign \
  "$cosign_version" sigs.k8s.io/release-utils/version.gitVersion
build_linked signing crane github.com/google/go-containerregistry/cmd/crane \
  "$crane_version" github.com/google/go-containerregistry/cmd/crane/cmd.Version
echo "$bin"
