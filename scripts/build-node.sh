#!/usr/bin/env bash
# Builds what turns the test control plane into a cluster that runs pods: kubelet, kube-proxy
# and kube-scheduler from the same k8s.io/kubernetes module version as the API server (Go module
# proxy), and the pause binary for pod sandboxes (compiled from that module's C source,
# statically). Installs containerd, runc and the CNI plugins from Debian's packages
# (scripts/install-node-packages.sh). Cached under $HOME, keyed by the module's go.sum and this
# script; idempotent.
#
# Prints the binary directory on its last line of stdout; progress goes to stderr.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
module="$repo/tools/testcluster/node"
K8S_VERSION=v1.34.4

log() { printf '[node] %s\n' "$*" >&2; }

bash "$repo/scripts/install-node-packages.sh"
command -v go >/dev/null || { log "error: Go is not installed (need Go >= 1.24)"; exit 1; }

key=$(cat "$module/go.sum" "$0" | sha256sum | cut -c1-12)
out="${SITEWISE_NODE_CACHE:-$HOME/.cache/sitewise-operator/node}/k8s-$K8S_VERSION-$key"
if [[ -f "$out/STAMP" ]]; then
  log "binaries already built in $out"
  echo "$out"
  exit 0
fi
mkdir -p "$out"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-modcacherw

minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
ld="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ld="$ld -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
done
for cmd in kubelet kube-proxy kube-scheduler; do
  log "building $cmd; the first build takes several minutes on 2 cores"
  start=$SECONDS
  (cd "$module" && go build -trimpath -tags selinux,notest,grpcnotrace -ldflags "$ld" \
    -o "$out/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
  mv "$out/$cmd.tmp" "$out/$cmd"
  log "built $cmd in $((SECONDS - start)) s"
done

source_dir=$(cd "$module" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
gcc -static -O2 -DVERSION="$K8S_VERSION" -o "$out/pause" "$source_dir/build/pause/linux/pause.c"

"$out/kubelet" --version >&2
date -u +%FT%TZ >"$out/STAMP"
log "binaries ready in $out ($(du -sh "$out" | cut -f1))"
echo "$out"
