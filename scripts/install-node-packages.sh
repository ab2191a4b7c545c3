#!/usr/bin/env bash
# Installs, from Debian's packages, what builds images and runs the test node: buildah (image
# builds without a daemon), containerd and runc (the node's container runtime), the CNI
# plugins (pod network), iptables and conntrack (kube-proxy) and lua5.1 (Argo CD's health checks run on a Lua 5.1 interpreter).
# Idempotent; needs root (or sudo) the first time.
set -euo pipefail
packages=(buildah containerd runc containernetworking-plugins iptables conntrack lua5.1)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
((${#missing[@]})) || exit 0
echo "[packages] installing ${missing[*]}" >&2
sudo=""
((EUID == 0)) || sudo=sudo
$sudo apt-get update -qq >&2 || true
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
