#!/usr/bin/env bash
# Fetch Debian's generic kernel package of SUITE and produce:
#   OUT/vmlinux            uncompressed kernel (microvm boots it via PVH, skipping its decompression under TCG)
#   OUT/vmlinuz            the bzImage as shipped (fallback)
#   OUT/kernel.release     module directory name
#   OUT/modules/           the full module tree of the package (selection happens later)
# Usage: kernel.sh PACKAGE OUT SUITE APT_CACHE
set -euo pipefail
pkg=$1 out=$2 suite=$3 apt_cache=$4
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=apt-suite.sh
. "$here/apt-suite.sh" "$suite" "$apt_cache"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && apt_suite_download "$pkg")
deb=$(ls "$work"/*.deb)
dpkg-deb -x "$deb" "$work/tree"

# bookworm ships modules under /lib/modules, trixie (merged /usr) under /usr/lib/modules.
mods=$work/tree/lib/modules
[ -d "$mods" ] || mods=$work/tree/usr/lib/modules
release=$(ls "$mods")
mkdir -p "$out"
cp "$work/tree/boot/vmlinuz-$release" "$out/vmlinuz"
printf '%s\n' "$release" > "$out/kernel.release"
rm -rf "$out/modules"
mkdir -p "$out/modules"
cp -a "$mods/$release" "$out/modules/"

# The bzImage payload is xz (Debian 12's 6.1) or zstd (Debian 13's 6.12): find the first magic and
# decompress the ELF vmlinux. Trailing bytes after the stream make either tool exit non-zero; the
# ELF magic tells success.
xz_at=$(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$out/vmlinuz" | head -n 1 | cut -d: -f1 || true)
zstd_at=$(LC_ALL=C grep -obUaP '\x28\xB5\x2F\xFD' "$out/vmlinuz" | head -n 1 | cut -d: -f1 || true)
if [ -n "$zstd_at" ] && { [ -z "$xz_at" ] || [ "$zstd_at" -lt "$xz_at" ]; }; then
  tail -c +"$((zstd_at + 1))" "$out/vmlinuz" | zstd -dcq > "$out/vmlinux" 2>/dev/null || true
elif [ -n "$xz_at" ]; then
  tail -c +"$((xz_at + 1))" "$out/vmlinuz" | xz -dc > "$out/vmlinux" 2>/dev/null || true
else
  echo "kernel.sh: no xz or zstd payload found in $pkg's bzImage" >&2; exit 1
fi
[ "$(head -c 4 "$out/vmlinux" | od -An -tx1 | tr -d ' ')" = "7f454c46" ] \
  || { echo "kernel.sh: decompressed payload is not an ELF kernel" >&2; exit 1; }
echo "kernel: $pkg ($release, $suite)"
