#!/usr/bin/env bash
# Fetch Debian's generic kernel package and produce:
#   OUT/vmlinux            uncompressed kernel (microvm boots it via PVH, skipping ~3 s of xz under TCG)
#   OUT/vmlinuz            the bzImage as shipped (fallback)
#   OUT/kernel.release     module directory name
#   OUT/modules/           the full module tree of the package (selection happens later)
# Usage: kernel.sh PACKAGE OUT
set -euo pipefail
pkg=$1
out=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# _apt cannot write into a root-owned temp dir; apt-get download then falls back to root and warns.
(cd "$work" && apt-get download -q "$pkg" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
deb=$(ls "$work"/*.deb)
dpkg-deb -x "$deb" "$work/tree"

release=$(ls "$work/tree/lib/modules")
mkdir -p "$out"
cp "$work/tree/boot/vmlinuz-$release" "$out/vmlinuz"
printf '%s\n' "$release" > "$out/kernel.release"
rm -rf "$out/modules"
mkdir -p "$out/modules"
cp -a "$work/tree/lib/modules/$release" "$out/modules/"

# The bzImage payload is xz (CONFIG_KERNEL_XZ); find its magic and decompress the ELF vmlinux.
offset=$(LC_ALL=C grep -obUaP '\xFD7zXZ\x00' "$out/vmlinuz" | head -n 1 | cut -d: -f1)
[ -n "$offset" ] || { echo "kernel.sh: no xz payload found in $pkg's bzImage" >&2; exit 1; }
tail -c +"$((offset + 1))" "$out/vmlinuz" | xz -dc > "$out/vmlinux" 2>/dev/null || true
# Trailing bytes after the xz stream make xz exit non-zero; the ELF magic tells success.
[ "$(head -c 4 "$out/vmlinux" | od -An -tx1 | tr -d ' ')" = "7f454c46" ] \
  || { echo "kernel.sh: decompressed payload is not an ELF kernel" >&2; exit 1; }
echo "kernel: $pkg ($release)"
