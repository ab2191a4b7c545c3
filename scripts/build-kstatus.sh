#!/usr/bin/env bash
# Builds tools/kstatus, a small command around kstatus itself (sigs.k8s.io/cli-utils, what Flux
# and cli-utils appliers use to judge health), to check the operator's status conventions in
# the tests. Idempotent; prints the binary's path last.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
exec bash "$repo/scripts/build-go-tool.sh" tools/kstatus . kstatus
