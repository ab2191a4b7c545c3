#!/usr/bin/env bash
# The whole test suite: unit tests, the CRD drift check, the emulator's Rust SDK and boto3
# contract suites, the end-to-end tests against a real control plane (etcd, kube-apiserver,
# kube-controller-manager built from the Go module proxy and cached under $HOME), and the
# release installed with Helm on a real node (kubelet, kube-scheduler, containerd; needs root).
# Fails loudly if any part cannot run; nothing is skipped.
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

step "node binaries (kubelet, kube-scheduler, pause) and Debian packages (containerd, runc, CNI, buildah, lua5.1)"
SITEWISE_NODE_BINARIES=$(bash scripts/build-node.sh | tail -n 1)
export SITEWISE_NODE_BINARIES

step "kstatus (sigs.k8s.io/cli-utils), to check the health verdicts GitOps tools give"
KSTATUS_BIN=$(bash scripts/build-kstatus.sh | tail -n 1)
export KSTATUS_BIN

step "python environment for the boto3 contract tests"
venv=$(bash scripts/python-env.sh | tail -n 1)

step "building the workspace"
cargo build --workspace --all-targets --locked

step "Rust tests: unit, CRD drift, SiteWise client, SDK contract, end to end, the release on a real node"
cargo test --workspace --locked

step "boto3 contract tests against the emulator binary"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
export SITEWISE_EMULATOR_BIN="$target_dir/debug/sitewise-emulator"
(cd emulator/contract-py && "$venv/bin/pytest" -p no:cacheprovider -q)

printf '\nall test suites passed in %d s\n' "$((SECONDS - start))"
