#!/bin/sh
# What the image's QEMU never runs: other architectures' emulators and firmware, QEMU's network
# block and storage daemons, documentation. Usage: trim-base.sh ROOT
set -eu
root=${1:?usage: trim-base.sh ROOT}
rm -f "$root"/usr/bin/qemu-system-i386 "$root"/usr/bin/qemu-nbd "$root"/usr/bin/qemu-storage-daemon \
  "$root"/usr/bin/qemu-pr-helper "$root"/usr/bin/qemu-edid
# x86 firmware stays (microvm's qboot, PVH and linuxboot ROMs; q35's SeaBIOS and virtio option ROMs).
for f in "$root"/usr/share/qemu/*; do
  case ${f##*/} in
    bios*|qboot*|pvh*|linuxboot*|multiboot*|kvmvapic*|efi-*|pxe-*|vgabios*|keymaps|firmware|trace-events-all) ;;
    *) rm -rf "$f" ;;
  esac
done
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/usr/share/info/*
