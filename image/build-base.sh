#!/usr/bin/env bash
# Build the image's base offline: an mmdebstrap tree of image/base-packages.txt, docker-imported
# as TAG. With network access to a registry, image/base.Dockerfile builds the same base.
# Usage: image/build-base.sh TAG   (as root; DOCKER_HOST selects the engine)
set -euo pipefail
tag=${1:?usage: image/build-base.sh TAG}
# What /usr/lib/dinv/image-versions.json lists (`dinv version`; keys as host/versions.ts reads them).
image_versions="dockerCli=docker-cli buildx=docker-buildx compose=docker-compose qemu=qemu-system-x86 virtiofsd=virtiofsd passt=passt node=nodejs"
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../alpine/lib/pinned-suites.sh
. "$here/../alpine/lib/pinned-suites.sh" "$here/base-packages.txt" "${DINV_IMAGE_SUITE:-trixie}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pinned_preferences > "$work/preferences"
# Recommends off and docs out: the image carries only what QEMU and the launcher need at runtime.
# The versions file is written before the trim (dpkg's status is what it reads).
mmdebstrap --variant=minbase --mode=root --format=tar \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --setup-hook="mkdir -p \"\$1/etc/apt/preferences.d\" && cp '$work/preferences' \"\$1/etc/apt/preferences.d/dinv-pins\"" \
  --customize-hook="mkdir -p \"\$1/usr/lib/dinv\" && bash $here/../alpine/lib/package-versions.sh \"\$1\" $image_versions > \"\$1/usr/lib/dinv/image-versions.json\"" \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  --customize-hook="sh $here/trim-base.sh \"\$1\"" \
  --include="$PINNED_INCLUDE" "$PINNED_BASE" "$work/base.tar" "${PINNED_SOURCES[@]}"
docker import --change 'CMD ["/bin/bash"]' "$work/base.tar" "$tag" >/dev/null
echo "base image: $tag ($(docker image inspect --format '{{.Size}}' "$tag") bytes)"
