#!/usr/bin/env bash
# The one distribution-specific step: install the guest packages into a tar.
# Usage: rootfs-debian.sh PACKAGES_FILE OUT_TAR SUITE
# A package list line `NAME OTHER_SUITE` takes NAME from that suite through apt pinning (the Docker
# stack from forky on a trixie base); see pinned-suites.sh. Swap this file for an apk-based one to
# build an Alpine flavour.
set -euo pipefail
packages_file=$1
out_tar=$2
suite=$3
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=pinned-suites.sh
. "$here/pinned-suites.sh" "$packages_file" "$suite"
prefs=$(mktemp)
trap 'rm -f "$prefs"' EXIT
pinned_preferences > "$prefs"

# minbase keeps the tree small; recommends off so docker.io does not pull apparmor/git. The
# preferences are in place before mmdebstrap's first apt update (a setup hook).
mmdebstrap --variant=minbase --mode=root --format=tar \
  --aptopt='APT::Install-Recommends "false"' \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  --setup-hook="mkdir -p \"\$1/etc/apt/preferences.d\" && cp '$prefs' \"\$1/etc/apt/preferences.d/dinv-pins\"" \
  --include="$PINNED_INCLUDE" \
  "$suite" "$out_tar" "${PINNED_SOURCES[@]}"
