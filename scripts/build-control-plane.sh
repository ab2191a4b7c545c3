#!/usr/bin/env bash
# Builds etcd, kube-apiserver and kube-controller-manager from the Go module proxy into a
# cache under $HOME, keyed by the pinned versions and the go.sum files. Idempotent: when the
# binaries for this key are already there it prints their directory and exits at once.
#
# Prints the binary directory on its last line of stdout; progress goes to stderr.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tools="$repo/tools/testcluster"
K8S_VERSION=v1.34.4
ETCD_VERSION=v3.6.4

log() { printf '[control-plane] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "error: Go is not installed (need Go >= 1.24)"; exit 1; }

key=$(cat "$tools/kube/go.sum" "$tools/etcd/go.sum" "$0" | sha256sum | cut -c1-12)
out="${SITEWISE_CONTROL_PLANE_CACHE:-$HOME/.cache/sitewise-operator/control-plane}/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-$key"

if [[ -f "$out/STAMP" ]]; then
  log "binaries already built in $out"
  echo "$out"
  exit 0
fi

avail_kb=$(df -Pk "$HOME" | awk 'NR==2 {print $4}')
if (( avail_kb < 6 * 1024 * 1024 )); then
  log "error: less than 6 GiB free under $HOME; the cold build needs about 5 GiB (Go caches)"
  exit 1
fi

mkdir -p "$out"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-modcacherw

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done

build() { # name, module dir, package, extra args...
  local name=$1 dir=$2 pkg=$3; shift 3
  log "building $name ($pkg); the first build takes several minutes on 2 cores"
  local start=$SECONDS
  (cd "$dir" && go build -trimpath "$@" -o "$out/$name.tmp" "$pkg")
  mv "$out/$name.tmp" "$out/$name"
  log "built $name in $((SECONDS - start)) s"
}

build etcd "$tools/etcd" go.etcd.io/etcd/server/v3 -ldflags "-s -w"
build kube-apiserver "$tools/kube" k8s.io/kubernetes/cmd/kube-apiserver \
  -tags selinux,notest,grpcnotrace -ldflags "$ld"
build kube-controller-manager "$tools/kube" k8s.io/kubernetes/cmd/kube-controller-manager \
  -tags selinux,notest,grpcnotrace -ldflags "$ld"

"$out/etcd" --version >&2
"$out/kube-apiserver" --version >&2
date -u +%FT%TZ > "$out/STAMP"
log "binaries ready in $out ($(du -sh "$out" | cut -f1))"
echo "$out"
