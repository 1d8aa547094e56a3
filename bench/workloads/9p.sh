#!/bin/sh
# Bind-mount workload, run in a privileged container inside the guest (privileged only to drop
# the page cache between phases).
#   sh 9p.sh setup      builds /src.tar in the container (not timed)
#   sh 9p.sh pass DIR   one timed pass on DIR; prints "phase milliseconds" lines
set -e
now() { read -r up _ < /proc/uptime; echo "$up"; }
report() { echo "$1 $(echo "$2 $3" | awk '{printf "%d", ($2 - $1) * 1000}')"; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }

case $1 in
setup)
  # 1000 files of 4 KiB in 10 directories: the shape of a source tree or a build context.
  mkdir -p /src
  for d in 0 1 2 3 4 5 6 7 8 9; do
    mkdir -p /src/d$d
    for f in 0 1 2 3 4 5 6 7 8 9; do
      for g in 0 1 2 3 4 5 6 7 8 9; do head -c 4096 /dev/urandom > /src/d$d/f$f$g; done
    done
  done
  tar -C /src -cf /src.tar .
  ;;
pass)
  dir=$2
  rm -rf "$dir/work" "$dir/big"
  mkdir -p "$dir/work"
  drop; a=$(now); tar -C "$dir/work" -xf /src.tar; sync; b=$(now); report small_files_write "$a" "$b"
  drop; a=$(now); ls -lR "$dir/work" > /dev/null; b=$(now); report stat_tree "$a" "$b"
  drop; a=$(now); tar -C "$dir/work" -cf - . | cat > /dev/null; b=$(now); report small_files_read "$a" "$b"
  drop; a=$(now); dd if=/dev/zero of="$dir/big" bs=1M count=64 2>/dev/null; sync; b=$(now); report seq_write_64m "$a" "$b"
  drop; a=$(now); dd if="$dir/big" of=/dev/null bs=1M 2>/dev/null; b=$(now); report seq_read_64m "$a" "$b"
  rm -rf "$dir/work" "$dir/big"
  ;;
*) echo "usage: 9p.sh setup | pass DIR" >&2; exit 2 ;;
esac
