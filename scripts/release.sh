#!/usr/bin/env bash
# Builds a release: the operator and emulator images (scripts/build-image.sh, saved as OCI
# archives) and the Helm chart packaged with those images' reference, then prints what to push
# where. Pushes nothing itself.
#
#   scripts/release.sh --registry REGISTRY [--tag TAG] [--out DIR]
#
# REGISTRY is where the images will live (e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com or
# ghcr.io/acme); TAG defaults to the operator's version; DIR defaults to <target dir>/dist.
# The last lines of stdout are `operator-image=PATH`, `emulator-image=PATH` and `chart=PATH`.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[release] %s\n' "$*" >&2; }

registry="" tag="" out=""
while (($#)); do
  case $1 in
    --registry) registry=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) log "unknown argument $1"; exit 2 ;;
  esac
done
[[ -n $registry ]] || { log "usage: scripts/release.sh --registry REGISTRY [--tag TAG] [--out DIR]"; exit 2; }
source "$repo/scripts/cargo-meta.sh"
tag=${tag:-$version}
out=${out:-$target_dir/dist}
mkdir -p "$out"

# The images first, and nothing else when they fail (a process substitution would hide it).
built=$(bash "$repo/scripts/build-image.sh" --registry "$registry" --tag "$tag" --out "$out") ||
  { log "building the images failed (see above); no release made"; exit 1; }
mapfile -t archives < <(tail -n 2 <<< "$built")
[[ ${#archives[@]} -eq 2 ]] || { log "build-image.sh named no image archives"; exit 1; }

helm=${HELM_BIN:-$(bash "$repo/scripts/build-helm.sh" | tail -n 1)}
chart_src=$(mktemp -d)
trap 'rm -rf "$chart_src"' EXIT
cp -r "$repo/deploy/helm/sitewise-operator" "$chart_src/"
values="$chart_src/sitewise-operator/values.yaml"
# The packaged chart names the released image; users override nothing to install it.
sed -i "s|^  repository: .*|  repository: $registry/sitewise-operator|; s|^  tag: \"\" .*|  tag: \"$tag\"|" "$values"
grep -q "repository: $registry/sitewise-operator" "$values" || { log "could not set the image in values.yaml"; exit 1; }
chart_version=${tag#v}
"$helm" package "$chart_src/sitewise-operator" --version "$chart_version" --app-version "$tag" -d "$out" >&2
chart="$out/sitewise-operator-$chart_version.tgz"

cat >&2 <<EOT

Release $tag is in $out. To publish it:
  skopeo copy oci-archive:${archives[0]} docker://$registry/sitewise-operator:$tag
  skopeo copy oci-archive:${archives[1]} docker://$registry/sitewise-emulator:$tag
  helm push $chart oci://$registry/charts
(podman load -i ARCHIVE, then podman push, works too.) Install it with:
  helm install sitewise-operator oci://$registry/charts/sitewise-operator --version $chart_version \\
    -n sitewise-system --create-namespace --set aws.region=REGION
EOT
echo "operator-image=${archives[0]}"
echo "emulator-image=${archives[1]}"
echo "chart=$chart"
