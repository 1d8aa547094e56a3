#!/usr/bin/env bash
# Build the guest OS: kernel, initramfs and read-only root image, into OUT (default build/guest).
# Usage: alpine/build.sh AGENT_BUNDLE [OUT]
# A stage is skipped when the hash of its inputs did not change (see OUT/manifest.json).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
agent=${1:?usage: alpine/build.sh AGENT_BUNDLE [OUT]}
out=${2:-$repo/build/guest}
cache=${DINV_BUILD_CACHE:-$repo/build/cache}

die() { echo "alpine/build.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap, mkfs and module trees need it); try: sudo npm run build"
for tool in mmdebstrap mkfs.ext4 cpio depmod modprobe apt-get apt-cache dpkg-deb xz zstd sha256sum tar qemu-x86_64; do
  command -v "$tool" >/dev/null || die "missing tool '$tool': apt-get install mmdebstrap e2fsprogs cpio kmod xz-utils zstd qemu-user"
done
[ -f "$agent" ] || die "agent bundle '$agent' not found (run: npm run build:bundles)"
mkdir -p "$out" "$cache"

hash_files() { (cd "$repo" && for f in "$@"; do printf '%s\n' "$f"; sha256sum < "$f"; done) | sha256sum | cut -c1-16; }

# The guest's Debian suite: packages and kernel both come from it (apt lists of its own, under the cache).
suite=${DINV_GUEST_SUITE:-trixie}
# shellcheck source=lib/apt-suite.sh
. "$here/lib/apt-suite.sh" "$suite" "$cache"
# The kernel package the suite's meta package points at (pinned per build by its name).
kpkg=${DINV_KERNEL_PACKAGE:-$(apt_suite cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')}
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 from $suite's package lists"

guest_files=$(cd "$repo" && find alpine -type f | LC_ALL=C sort)
# shellcheck disable=SC2086
recipe=$( { printf '%s\n' "$suite" "$kpkg"; hash_files $guest_files; sha256sum < "$agent"; } | sha256sum | cut -c1-16)
if [ -f "$out/manifest.json" ] && grep -q "\"recipe\": \"$recipe\"" "$out/manifest.json"; then
  echo "guest: up to date (recipe $recipe)"
  exit 0
fi
started=$(date +%s)

# 1. kernel (cached by package name)
kdir="$cache/kernel/$kpkg"
[ -f "$kdir/vmlinux" ] || bash "$here/lib/kernel.sh" "$kpkg" "$kdir" "$suite" "$cache"
release=$(cat "$kdir/kernel.release")

# 2. package tree (cached by the package list and the install step)
tree_key=$( { printf '%s\n' "$suite"; hash_files alpine/packages.txt alpine/lib/rootfs-debian.sh; } | sha256sum | cut -c1-16)
tree_tar="$cache/rootfs-$tree_key.tar"
if [ ! -f "$tree_tar" ]; then
  bash "$here/lib/rootfs-debian.sh" "$here/packages.txt" "$tree_tar.tmp" "$suite"
  mv "$tree_tar.tmp" "$tree_tar"
fi

work=$(mktemp -d "$cache/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 3. initramfs: busybox from the package tree, the init script, the modules that reach the root
ird="$work/initramfs"
mkdir -p "$ird"/{bin,dev,proc,sys,etc}
tar -C "$work" -xf "$tree_tar" ./usr/bin/busybox
cp "$work/usr/bin/busybox" "$ird/bin/busybox"
cp "$here/initramfs/init" "$ird/init"
bash "$here/lib/modules.sh" "$kdir/modules" "$release" "$here/modules-initramfs.txt" "$ird" "$ird/etc/dinv-modules.order"
# Uncompressed: under TCG, unpacking is cheaper than decompressing.
(cd "$ird" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$work/initramfs.cpio"

# 4. root image: the package tree, pruned, plus modules, guest scripts and the agent
root="$work/root"
mkdir -p "$root"
tar -C "$root" -xf "$tree_tar"
rm -rf "$root"/usr/share/{doc,man,info,locale,lintian}/* "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* \
  "$root"/var/log/*.log "$root"/usr/lib/modules/* 2>/dev/null || true
bash "$here/lib/modules.sh" "$kdir/modules" "$release" "$here/modules-root.txt" "$root"
cp -a "$here/rootfs/." "$root/"
cp "$agent" "$root/usr/lib/dinv/dinv-agent.js"
bash "$here/lib/agent-snapshot.sh" "$root"
mkdir -p "$root/var/lib/docker" "$root/etc/docker" "$root/run" "$root/run/lock"
echo dinv > "$root/etc/hostname"
size_mb=$(( $(du -sm "$root" | cut -f1) * 115 / 100 + 64 ))
# No journal: the image is only ever mounted read-only.
mkfs.ext4 -q -F -O ^has_journal -L dinv-root -m 0 -d "$root" "$work/rootfs.img" "${size_mb}M"

cp "$kdir/vmlinux" "$work/vmlinux.out"
mv "$work/vmlinux.out" "$out/vmlinux"
cp "$kdir/vmlinuz" "$out/vmlinuz"
mv "$work/initramfs.cpio" "$out/initramfs.cpio"
mv "$work/rootfs.img" "$out/rootfs.img"
cat > "$out/manifest.json" <<JSON
{
  "recipe": "$recipe",
  "suite": "$suite",
  "dockerVersion": "$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f '${Version}' docker.io)",
  "kernelPackage": "$kpkg",
  "kernelRelease": "$release",
  "rootImageBytes": $(stat -c %s "$out/rootfs.img"),
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
JSON
echo "guest: built in $(( $(date +%s) - started ))s (recipe $recipe, kernel $release, root image ${size_mb} MB)"
