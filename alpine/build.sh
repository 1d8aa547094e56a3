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
for tool in mmdebstrap mkfs.ext4 mkfs.erofs cpio depmod modprobe apt-get apt-cache dpkg-deb xz zstd sha256sum tar qemu-x86_64 cc; do
  command -v "$tool" >/dev/null || die "missing tool '$tool': apt-get install mmdebstrap e2fsprogs erofs-utils cpio kmod xz-utils zstd qemu-user gcc"
done
[ -f "$agent" ] || die "agent bundle '$agent' not found (run: npm run build:bundles)"
# The values the guest's scripts share with the TypeScript, rendered beside the agent bundle.
constants=$(dirname "$agent")/guest-constants.sh
[ -f "$constants" ] || die "'$constants' not found (run: npm run build:bundles)"
mkdir -p "$out" "$cache"

hash_files() { (cd "$repo" && for f in "$@"; do printf '%s\n' "$f"; sha256sum < "$f"; done) | sha256sum | cut -c1-16; }

# The guest's Debian suite: packages and kernel both come from it (apt lists of its own, under the cache).
suite=${DINV_GUEST_SUITE:-trixie}
# The root image's filesystem: erofs (read-only, compact, uncompressed: nothing to decompress on the
# guest's vCPU), erofs-lz4hc (compressed in the guest's kernel) or ext4 (a sparse file). The image
# ships it as rootfs.img.zst and the launcher unpacks it natively at start (host/boot/root-image.ts).
root_fs=${DINV_ROOT_FS:-erofs}
case $root_fs in erofs|erofs-lz4hc|ext4) ;; *) die "DINV_ROOT_FS=$root_fs: erofs, erofs-lz4hc or ext4" ;; esac
mount_type=${root_fs%%-*}
# shellcheck source=lib/apt-suite.sh
. "$here/lib/apt-suite.sh" "$suite" "$cache"
# The kernel package the suite's meta package points at (pinned per build by its name).
kpkg=${DINV_KERNEL_PACKAGE:-$(apt_suite cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')}
[ -n "$kpkg" ] || die "cannot resolve linux-image-amd64 from $suite's package lists"

guest_files=$(cd "$repo" && find alpine -type f | LC_ALL=C sort)
# shellcheck disable=SC2086
recipe=$( { printf '%s\n' "$suite" "$kpkg" "$root_fs"; hash_files $guest_files; sha256sum < "$agent"; sha256sum < "$constants"; sha256sum < "$(dirname "$agent")/containerd.toml"; } | sha256sum | cut -c1-16)
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
tree_key=$( { printf '%s\n' "$suite"; hash_files alpine/packages.txt alpine/lib/rootfs-debian.sh alpine/lib/pinned-suites.sh; } | sha256sum | cut -c1-16)
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
# The initramfs mounts the root image with the filesystem it was made with.
echo "$mount_type" > "$ird/etc/root-fs-type"
cp "$constants" "$ird/etc/dinv-constants.sh"
bash "$here/lib/modules.sh" "$kdir/modules" "$release" "$here/modules-initramfs.txt" "$ird" "$ird/etc/dinv-modules.order"
# Uncompressed: under TCG, unpacking is cheaper than decompressing.
(cd "$ird" && find . | LC_ALL=C sort | cpio -o -H newc --quiet) > "$work/initramfs.cpio"

# 4. root image: the package tree, pruned, plus modules, guest scripts and the agent
root="$work/root"
mkdir -p "$root"
tar -C "$root" -xf "$tree_tar"
# What the tree installed, for the manifest; never an unmaintained engine by a silent fall-back.
versions=$(bash "$here/lib/package-versions.sh" "$root" dockerd=docker.io containerd=containerd runc=runc node=nodejs)
# shellcheck disable=SC1090
. "$constants"
major() { printf '%s' "$versions" | sed -n "s/.*\"$1\": \"\([0-9]*\).*/\1/p"; }
[ "$(major dockerd)" -ge "$DINV_MIN_DOCKERD_MAJOR" ] 2>/dev/null ||
  die "the package lists give dockerd $(major dockerd) (docker.io), older than $DINV_MIN_DOCKERD_MAJOR: forky no longer offers a maintained engine; pin another suite in alpine/packages.txt"
[ "$(major containerd)" -ge "$DINV_MIN_CONTAINERD_MAJOR" ] 2>/dev/null ||
  die "the package lists give containerd $(major containerd), older than $DINV_MIN_CONTAINERD_MAJOR; pin another suite in alpine/packages.txt"
docker_version=$(printf '%s' "$versions" | sed -n 's/.*"dockerd": "\([^"]*\)".*/\1/p')
# What the guest never runs: documentation, package management, containerd's own CLI and its legacy
# shims (dockerd uses containerd-shim-runc-v2), iconv modules, perl (no guest script uses it),
# corepack and type declarations (the agent is one bundle).
rm -rf "$root"/usr/share/{doc,man,info,locale,lintian,bash-completion,zsh}/* "$root"/var/cache/* "$root"/var/lib/apt \
  "$root"/var/log/*.log "$root"/usr/lib/modules/* "$root"/usr/bin/{ctr,containerd-stress,containerd-shim,containerd-shim-runc-v1} \
  "$root"/usr/lib/x86_64-linux-gnu/gconv "$root"/usr/bin/perl* "$root"/usr/lib/x86_64-linux-gnu/perl-base "$root"/usr/share/perl5 \
  "$root"/usr/bin/apt* "$root"/usr/lib/apt "$root"/usr/lib/x86_64-linux-gnu/libapt-* \
  "$root"/usr/share/nodejs/corepack "$root"/usr/share/nodejs/@types "$root"/usr/bin/corepack 2>/dev/null || true
bash "$here/lib/modules.sh" "$kdir/modules" "$release" "$here/modules-root.txt" "$root"
cp -a "$here/rootfs/." "$root/"
cp "$agent" "$root/usr/lib/dinv/dinv-agent.js"
cp "$constants" "$root/usr/lib/dinv/constants.sh"
cp "$(dirname "$agent")/containerd.toml" "$root$DINV_CONTAINERD_TOML"
# The agent renews a restored guest with it (a warm start: two ioctls Node lacks, the clock, ids).
cc -Os -s -Wall -Werror -o "$root/usr/lib/dinv/dinv-renew" "$here/tools/renew.c"
bash "$here/lib/agent-snapshot.sh" "$root"
mkdir -p "$root/var/lib/docker" "$root/etc/docker" "$root/run" "$root/run/lock"
echo dinv > "$root/etc/hostname"
if [ "$root_fs" = erofs ]; then
  mkfs.erofs -T0 "$work/rootfs.img" "$root" >/dev/null
elif [ "$root_fs" = erofs-lz4hc ]; then
  # lz4hc: the cheapest decompression under TCG of what the kernel's erofs reads; 64 KiB clusters.
  mkfs.erofs -zlz4hc,12 -C65536 -T0 "$work/rootfs.img" "$root" >/dev/null
else
  size_mb=$(( $(du -sm "$root" | cut -f1) * 115 / 100 + 64 ))
  # No journal: the image is only ever mounted read-only.
  mkfs.ext4 -q -F -O ^has_journal -L dinv-root -m 0 -d "$root" "$work/rootfs.img" "${size_mb}M"
fi

# The image ships the compressed kernel; the launcher extracts vmlinux (PVH boot) at start. A
# development build keeps vmlinux beside it too.
cp "$kdir/vmlinux" "$work/vmlinux.out"
mv "$work/vmlinux.out" "$out/vmlinux"
cp "$kdir/vmlinuz" "$out/vmlinuz"
mv "$work/initramfs.cpio" "$out/initramfs.cpio"
# The container image ships it compressed; the image build makes that (scripts/compress-root.sh).
rm -f "$out/rootfs.img.zst" "$out/rootfs.img.zst.source"
mv "$work/rootfs.img" "$out/rootfs.img"
cat > "$out/manifest.json" <<JSON
{
  "recipe": "$recipe",
  "suite": "$suite",
  "dockerVersion": "$docker_version",
  "versions": ${versions%\}}, "kernel": "$release"},
  "rootFs": "$root_fs",
  "kernelPackage": "$kpkg",
  "kernelRelease": "$release",
  "rootImageBytes": $(stat -c %s "$out/rootfs.img"),
  "builtAt": "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
}
JSON
echo "guest: built in $(( $(date +%s) - started ))s (recipe $recipe, kernel $release, $root_fs root image $(( $(stat -c %s "$out/rootfs.img") / 1000000 )) MB)"
