#!/usr/bin/env bash
# The root image as the container image ships it: GUEST_DIR/rootfs.img at zstd's level 19 with a
# 128 MiB window (the whole image is one match window, the largest zstd unpacks without being told;
# ~0.5 s natively). Only the image needs it (a local `dinv run` boots rootfs.img), so only the image
# build makes it (~2 min on two cores), and again only when rootfs.img changed.
# Usage: scripts/compress-root.sh GUEST_DIR
set -euo pipefail
dir=${1:?usage: compress-root.sh GUEST_DIR}
src=$dir/rootfs.img
[ -f "$src" ] || { echo "compress-root.sh: $src not found (run: npm run build)" >&2; exit 1; }
stamp="$(stat -c '%s %Y' "$src")"
if [ -f "$dir/rootfs.img.zst" ] && [ "$(cat "$dir/rootfs.img.zst.source" 2>/dev/null)" = "$stamp" ]; then exit 0; fi
zstd -19 --long=27 -T0 -q -f "$src" -o "$dir/rootfs.img.zst.tmp"
mv "$dir/rootfs.img.zst.tmp" "$dir/rootfs.img.zst"
printf '%s\n' "$stamp" > "$dir/rootfs.img.zst.source"
echo "root image compressed for the container image: $(( $(stat -c %s "$dir/rootfs.img.zst") / 1000000 )) MB"
