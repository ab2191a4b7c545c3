#!/usr/bin/env bash
# Builds a Go command pinned by one of the tools/ modules, from the Go module proxy, into a
# cache under $HOME keyed by the module's go.sum and this script. Idempotent; prints the
# binary's path last.
#
#   scripts/build-go-tool.sh MODULE_DIR PACKAGE NAME [LDFLAGS]
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mod="$repo/$1" package=$2 name=$3 ldflags=${4:-}
# The module's own sources count too (tools/kstatus is a program of ours).
key=$(cat "$mod/go.sum" "$0" $(find "$mod" -maxdepth 1 -name "*.go" | sort) | sha256sum | cut -c1-12)
out="${SITEWISE_TOOLS_CACHE:-$HOME/.cache/sitewise-operator/tools}/$name-$key"
if [[ -x "$out/$name" ]]; then
  echo "$out/$name"
  exit 0
fi
command -v go >/dev/null || { echo "[$name] error: Go is not installed" >&2; exit 1; }
echo "[$name] building $package (a few minutes the first time)" >&2
mkdir -p "$out"
(cd "$mod" && GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-modcacherw go build -trimpath \
  -ldflags "-s -w $ldflags" -o "$out/$name.tmp" "$package")
mv "$out/$name.tmp" "$out/$name"
echo "$out/$name"
