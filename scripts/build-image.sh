#!/usr/bin/env bash
# Builds the operator and emulator images from Containerfile with buildah (no Docker engine,
# no registry pull) and saves each as an OCI archive.
#
#   scripts/build-image.sh [--tag TAG] [--registry REGISTRY] [--out DIR]
#
# TAG defaults to the operator's version; REGISTRY (default: localhost) prefixes the image
# names; DIR (default: <cargo target dir>/images) receives sitewise-operator-TAG.tar and
# sitewise-emulator-TAG.tar. Prints the two archive paths on its last two lines of stdout.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[image] %s\n' "$*" >&2; }

source "$repo/scripts/cargo-meta.sh"
tag=$version registry=localhost out="$target_dir/images"
while (($#)); do
  case $1 in
    --tag) tag=$2; shift 2 ;;
    --registry) registry=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) log "unknown argument $1"; exit 2 ;;
  esac
done

command -v buildah >/dev/null || bash "$repo/scripts/install-node-packages.sh" >&2

log "building the release binaries"
(cd "$repo" && cargo build --release --locked -p sitewise-operator -p sitewise-emulator --bins >&2)

context="$target_dir/image-context"
rm -rf "$context"
stage() { # image, binary
  local root="$context/$1" bin="$target_dir/release/$2"
  mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp"
  chmod 1777 "$root/tmp"
  cp "$bin" "$root/usr/local/bin/"
  # The dynamic loader and every library the binary links, at the paths it looks them up.
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  printf 'root:x:0:0:root:/:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$root/etc/group"
}
stage operator sitewise-operator
stage emulator sitewise-emulator

storage=$(mktemp -d)
trap 'rm -rf "$storage"' EXIT
buildah_() { buildah --storage-driver vfs --root "$storage/root" --runroot "$storage/run" "$@"; }
mkdir -p "$out"
archives=()
for image in operator emulator; do
  ref="$registry/sitewise-$image:$tag"
  archive="$out/sitewise-$image-$tag.tar"
  log "building $ref"
  buildah_ bud --quiet --layers=false --target "$image" -t "$ref" -f "$repo/Containerfile" "$context" >&2
  rm -f "$archive"
  buildah_ push --quiet "$ref" "oci-archive:$archive:$ref" >&2
  log "$ref saved as $archive ($(du -h "$archive" | cut -f1))"
  archives+=("$archive")
done
printf '%s\n' "${archives[@]}"
