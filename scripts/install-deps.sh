#!/usr/bin/env bash
# Install the Debian packages dinv's build, launcher and tests need; a no-op when present.
# Usage: scripts/install-deps.sh  (as root)
set -euo pipefail
declare -A need=(
  [qemu-system-x86_64]=qemu-system-x86
  [qemu-img]=qemu-utils
  [mmdebstrap]=mmdebstrap
  [cpio]=cpio
  [depmod]=kmod
  [mkfs.ext4]=e2fsprogs
  [mkfs.erofs]=erofs-utils
  [xz]=xz-utils
  [zstd]=zstd
  # the guest agent's startup snapshot is written under TCG's CPU model (alpine/lib/agent-snapshot.sh)
  [qemu-x86_64]=qemu-user
  [busybox]=busybox-static
  [dockerd]=docker.io
  [iptables]=iptables
  [blkid]=util-linux
  # DOCKER_TLS_CERTDIR: certificates for the docker API
  [openssl]=openssl
  # DINV_NET=passt and its benchmark
  [passt]=passt
  # tests: a UDP echo server copied into a guest test image; the e2e engine's bridge
  [socat]=socat
  [ip]=iproute2
  # tests and benchmarks: a real registry for docker pull/push, on loopback
  [docker-registry]=docker-registry
  # the guest's one C helper (alpine/tools/renew.c)
  [cc]=gcc
)
missing=()
for tool in "${!need[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${need[$tool]}")
done
# mmdebstrap verifies the archive with the keyring of the running Debian.
[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || missing+=(debian-archive-keyring)
[ -f /usr/include/linux/random.h ] || missing+=(linux-libc-dev)
[ -f /usr/include/stdio.h ] || missing+=(libc6-dev)
[ -d /etc/ssl/certs ] && [ -n "$(ls -A /etc/ssl/certs 2>/dev/null)" ] || missing+=(ca-certificates)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}; run as root (sudo $0)" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
