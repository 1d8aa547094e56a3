#!/usr/bin/env bash
# The docker clients of the image (image/base-packages.txt: docker-cli, docker-buildx and
# docker-compose, from the suite that list names) for the tests and benchmarks on this machine
# (Debian 12 has CLI 20.10 without buildx): Go binaries that run on Debian 12's libc, unpacked into
# OUT, not installed:
#   OUT/bin/docker                       the CLI
#   OUT/docker-config/cli-plugins/...    its buildx and compose plugins (DOCKER_CONFIG=OUT/docker-config)
# Usage: scripts/clients.sh OUT CACHE   (skipped when OUT holds the same package versions)
set -euo pipefail
out=${1:?usage: clients.sh OUT CACHE} cache=${2:?usage: clients.sh OUT CACHE}
here=$(cd "$(dirname "$0")" && pwd)
packages=(docker-cli docker-buildx docker-compose)
# shellcheck source=../alpine/lib/pinned-suites.sh
. "$here/../alpine/lib/pinned-suites.sh" "$here/../image/base-packages.txt" trixie
suite=trixie
for s in "${PINNED_SUITES[@]}"; do pinned_packages "$s" | grep -qx docker-cli && suite=$s; done
for p in "${packages[@]}"; do
  [ "$suite" = trixie ] || pinned_packages "$suite" | grep -qx "$p" || { echo "clients.sh: $p must come from $suite like docker-cli (image/base-packages.txt)" >&2; exit 1; }
done
# shellcheck source=../alpine/lib/apt-suite.sh
. "$here/../alpine/lib/apt-suite.sh" "$suite" "$cache"
versions=$(for p in "${packages[@]}"; do apt_suite cache show --no-all-versions "$p" | awk -v p="$p" '/^Version:/ {print p "=" $2}'; done)
[ -f "$out/versions" ] && [ "$(cat "$out/versions")" = "$versions" ] && exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt_suite_download "${packages[@]}")
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/tree"; done
rm -rf "$out"
mkdir -p "$out/bin" "$out/docker-config/cli-plugins"
cp "$work/tree/usr/bin/docker" "$out/bin/docker"
cp "$work/tree/usr/libexec/docker/cli-plugins/docker-buildx" "$work/tree/usr/libexec/docker/cli-plugins/docker-compose" "$out/docker-config/cli-plugins/"
printf '%s\n' "$versions" > "$out/versions"
echo "clients: $(echo "$versions" | paste -sd' ') in $out"
