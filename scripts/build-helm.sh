#!/usr/bin/env bash
# Builds helm (pinned in tools/helm/go.mod) from the Go module proxy into a cache under $HOME,
# to lint and render the chart in the tests. Idempotent; prints the binary's path last.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$repo/tools/helm"
version=$(awk '$1 == "helm.sh/helm/v3" {print $2}' "$mod/go.mod")
key=$(cat "$mod/go.sum" "$0" | sha256sum | cut -c1-12)
out="${SITEWISE_TOOLS_CACHE:-$HOME/.cache/sitewise-operator/tools}/helm-$version-$key"
if [[ -x "$out/helm" ]]; then
  echo "$out/helm"
  exit 0
fi
command -v go >/dev/null || { echo "[helm] error: Go is not installed" >&2; exit 1; }
echo "[helm] building helm $version (about 2 minutes the first time)" >&2
mkdir -p "$out"
(cd "$mod" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-modcacherw go build -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
  -o "$out/helm.tmp" helm.sh/helm/v3/cmd/helm)
mv "$out/helm.tmp" "$out/helm"
"$out/helm" version --short >&2
echo "$out/helm"
