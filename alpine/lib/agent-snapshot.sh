#!/usr/bin/env bash
# The agent's V8 startup snapshot: run the agent bundle under the guest's own node with
# --build-snapshot. The guest init starts the agent from it: Debian's Node 18 spends ~2.5 s of
# CPU under TCG bootstrapping itself and ~2 s more loading the bundle; from the snapshot ~1 s.
# V8 loads a snapshot only on a CPU with the same features as the one that wrote it, so the
# guest's node runs under QEMU's user-mode emulator with the CPU model TCG guests get
# (`-cpu max`, host/qemu/args.ts). Under KVM the guest sees the host's CPU, the snapshot is
# refused and the init starts the agent from its bundle (fast enough there).
# Usage: alpine/lib/agent-snapshot.sh ROOT   (ROOT/usr/lib/dinv/dinv-agent.js must exist)
set -euo pipefail
root=${1:?usage: agent-snapshot.sh ROOT}
command -v qemu-x86_64 >/dev/null || { echo "agent-snapshot.sh: missing qemu-x86_64: apt-get install qemu-user" >&2; exit 1; }
# A clean environment: nothing of the build machine's ends up in the snapshot.
env -i PATH=/usr/bin:/bin qemu-x86_64 -cpu max -L "$root" "$root/usr/bin/node" \
  --snapshot-blob "$root/usr/lib/dinv/dinv-agent.blob" --build-snapshot "$root/usr/lib/dinv/dinv-agent.js"
[ -s "$root/usr/lib/dinv/dinv-agent.blob" ] || { echo "agent-snapshot.sh: no snapshot written" >&2; exit 1; }
