#!/usr/bin/env bash
# Print a JSON object of the Debian versions installed in a tree: one key a component.
# Usage: package-versions.sh ROOT KEY=PACKAGE...   e.g. dockerd=docker.io containerd=containerd
# A package that is not installed is an error naming it (a manifest never claims what is absent).
set -euo pipefail
root=${1:?usage: package-versions.sh ROOT KEY=PACKAGE...}
shift
sep=
printf '{'
for pair in "$@"; do
  key=${pair%%=*} pkg=${pair#*=}
  version=$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${db:Status-Abbrev} ${Version}' "$pkg" 2>/dev/null | awk '$1 == "ii" {print $2}')
  [ -n "$version" ] || { echo "package-versions.sh: $pkg ($key) is not installed in $root" >&2; exit 1; }
  printf '%s"%s": "%s"' "$sep" "$key" "$version"
  sep=', '
done
printf '}\n'
