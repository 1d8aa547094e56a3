#!/usr/bin/env bash
# Copy the named modules and everything they depend on from a module tree into a root.
# Usage: modules.sh TREE RELEASE LIST_FILE DEST_ROOT [ORDER_FILE]
#   TREE/RELEASE holds the package's modules; DEST_ROOT/lib/modules/RELEASE receives them.
#   ORDER_FILE (optional) receives the load order, dependencies first, one path a line.
# List lines are module names or directories under kernel/ ending in '/' (all modules below).
# Compressed modules (Debian 13 ships .ko.xz) are stored decompressed: busybox's insmod in the
# initramfs loads plain .ko files only, and under TCG decompressing at every boot costs CPU.
set -euo pipefail
tree=$1 release=$2 list=$3 dest=$4 order=${5:-}
src="$tree/$release"
names=()
while read -r line; do
  line=${line%%#*}; line=$(echo "$line" | xargs)
  [ -n "$line" ] || continue
  if [[ $line == */ ]]; then
    while read -r ko; do ko=$(basename "$ko"); names+=("${ko%%.ko*}"); done < <(find "$src/kernel/$line" -name '*.ko*')
  else
    names+=("$line")
  fi
done < "$list"

# modprobe -d wants ROOT/lib/modules/RELEASE; give it a view of the tree.
view=$(mktemp -d)
trap 'rm -rf "$view"' EXIT
mkdir -p "$view/lib/modules"
ln -s "$(cd "$src" && pwd)" "$view/lib/modules/$release"
depmod -b "$view" "$release"

mkdir -p "$dest/lib/modules/$release"
: > "${order:-/dev/null}"
declare -A seen=()
for name in "${names[@]}"; do
  # Built-in modules print "builtin NAME"; only insmod lines name files.
  while read -r verb path _; do
    [ "$verb" = insmod ] || continue
    rel=${path#"$view/lib/modules/$release/"}
    [ -n "${seen[$rel]:-}" ] && continue
    seen[$rel]=1
    plain=${rel%.xz}; plain=${plain%.zst}
    mkdir -p "$dest/lib/modules/$release/$(dirname "$rel")"
    case $rel in
      *.xz) xz -dc "$src/$rel" > "$dest/lib/modules/$release/$plain" ;;
      *.zst) zstd -dcq "$src/$rel" > "$dest/lib/modules/$release/$plain" ;;
      *) cp "$src/$rel" "$dest/lib/modules/$release/$rel" ;;
    esac
    [ -z "$order" ] || printf '/lib/modules/%s/%s\n' "$release" "$plain" >> "$order"
  done < <(modprobe -d "$view" -S "$release" --show-depends "$name" 2>/dev/null || echo "missing $name")
done
cp "$src"/modules.order "$src"/modules.builtin* "$dest/lib/modules/$release/" 2>/dev/null || true
depmod -b "$dest" "$release"
