#!/usr/bin/env bash
# Build the image's base offline: an mmdebstrap tree of image/base-packages.txt, docker-imported
# as TAG. With network access to a registry, image/base.Dockerfile builds the same base.
# Usage: image/build-base.sh TAG   (as root; DOCKER_HOST selects the engine)
set -euo pipefail
tag=${1:?usage: image/build-base.sh TAG}
here=$(cd "$(dirname "$0")" && pwd)
packages=$(grep -v '^[[:space:]]*#' "$here/base-packages.txt" | grep -v '^[[:space:]]*$' | paste -sd, -)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Recommends off and docs out: the image carries only what QEMU and the launcher need at runtime.
mmdebstrap --variant=minbase --mode=root --format=tar \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  --customize-hook="sh $here/trim-base.sh \"\$1\"" \
  --include="$packages" "${DINV_IMAGE_SUITE:-trixie}" "$work/base.tar"
docker import --change 'CMD ["/bin/bash"]' "$work/base.tar" "$tag" >/dev/null
echo "base image: $tag ($(docker image inspect --format '{{.Size}}' "$tag") bytes)"
