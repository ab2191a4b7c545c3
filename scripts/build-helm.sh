#!/usr/bin/env bash
# Builds helm (pinned in tools/helm/go.mod) from the Go module proxy into a cache under $HOME,
# to lint, render and install the chart in the tests. Idempotent; prints the binary's path last.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=$(awk '$1 == "helm.sh/helm/v3" {print $2}' "$repo/tools/helm/go.mod")
exec bash "$repo/scripts/build-go-tool.sh" tools/helm helm.sh/helm/v3/cmd/helm helm \
  "-X helm.sh/helm/v3/internal/version.version=$version"
