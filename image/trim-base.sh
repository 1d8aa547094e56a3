#!/bin/sh
# What the image never runs: other architectures' emulators and firmware, the microvm-only QEMU build, QEMU's network
# block and storage daemons, keymaps (no display), iconv modules (Node uses ICU), documentation.
# Usage: trim-base.sh ROOT
set -eu
root=${1:?usage: trim-base.sh ROOT}
rm -f "$root"/usr/bin/qemu-system-i386 "$root"/usr/bin/qemu-system-x86_64-microvm "$root"/usr/bin/qemu-nbd \
  "$root"/usr/bin/qemu-storage-daemon "$root"/usr/bin/qemu-io "$root"/usr/bin/qemu-pr-helper "$root"/usr/bin/qemu-vmsr-helper \
  "$root"/usr/bin/qemu-edid
# Node's package-manager shim and TypeScript declarations: the launcher is one bundle.
rm -rf "$root"/usr/share/nodejs/corepack "$root"/usr/share/nodejs/@types "$root"/usr/bin/corepack
# x86 firmware stays (microvm's qboot, PVH and linuxboot ROMs; q35's SeaBIOS and virtio option ROMs).
for f in "$root"/usr/share/qemu/*; do
  case ${f##*/} in
    bios*|qboot*|pvh*|linuxboot*|multiboot*|kvmvapic*|efi-*|pxe-*|vgabios*|firmware|trace-events-all) ;;
    *) rm -rf "$f" ;;
  esac
done
rm -rf "$root"/usr/lib/x86_64-linux-gnu/gconv
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/usr/share/info/*
# The docker CLI and its buildx and compose plugins (157 MB of Go, 56 MB gzip'd as files in a layer)
# ship as one zstd archive of 28 MB; /usr/lib/dinv/unpack-clients puts them back at start.
mkdir -p "$root"/usr/lib/dinv
tar -C "$root" -cf - usr/bin/docker usr/libexec/docker/cli-plugins | zstd -19 --long=27 -T0 -q > "$root"/usr/lib/dinv/docker-clients.tar.zst
rm -f "$root"/usr/bin/docker "$root"/usr/libexec/docker/cli-plugins/docker-buildx "$root"/usr/libexec/docker/cli-plugins/docker-compose
