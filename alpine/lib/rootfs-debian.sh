#!/usr/bin/env bash
# The one distribution-specific step: install the guest packages into a tar.
# Usage: rootfs-debian.sh PACKAGES_FILE OUT_TAR SUITE
# Swap this file for an apk-based one to build an Alpine flavour.
set -euo pipefail
packages_file=$1
out_tar=$2
suite=$3

packages=$(grep -v '^[[:space:]]*#' "$packages_file" | grep -v '^[[:space:]]*$' | paste -sd, -)

# minbase keeps the tree small; recommends off so docker.io does not pull apparmor/git.
mmdebstrap --variant=minbase --mode=root --format=tar \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --include="$packages" \
  "$suite" "$out_tar"
