#!/usr/bin/env bash
# The whole test suite: unit tests, the CRD drift check, the emulator's Rust SDK and boto3
# contract suites, and the end-to-end tests against a real control plane (etcd,
# kube-apiserver, kube-controller-manager built from the Go module proxy and cached under
# $HOME). Fails loudly if any part cannot run; nothing is skipped.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
step() { printf '\n==> %s\n' "$*"; }
start=$SECONDS

step "control-plane binaries (built once, then reused from the cache)"
KUBEBUILDER_ASSETS=$(bash scripts/build-control-plane.sh | tail -n 1)
export KUBEBUILDER_ASSETS

step "helm, to lint and render the chart (built once, then reused from the cache)"
HELM_BIN=$(bash scripts/build-helm.sh | tail -n 1)
export HELM_BIN

step "python environment for the boto3 contract tests"
venv=$(bash scripts/python-env.sh | tail -n 1)

step "building the workspace"
cargo build --workspace --all-targets --locked

step "Rust tests: unit, CRD drift, SiteWise client, SDK contract, end to end"
cargo test --workspace --locked

step "boto3 contract tests against the emulator binary"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export SITEWISE_EMULATOR_BIN="$target_dir/debug/sitewise-emulator"
(cd emulator/contract-py && "$venv/bin/pytest" -p no:cacheprovider -q)

printf '\nall test suites passed in %d s\n' "$((SECONDS - start))"
