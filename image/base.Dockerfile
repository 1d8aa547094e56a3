# The image's base for builders with registry access (the offline path is image/build-base.sh).
# Context: the repository root (the package list and its pinning helper are shared with the guest).
#   docker build -f image/base.Dockerfile -t dinv-base:trixie .
FROM debian:trixie-slim
# bash: the pinning helper uses arrays.
SHELL ["/bin/bash", "-c"]
COPY image/base-packages.txt image/trim-base.sh alpine/lib/pinned-suites.sh alpine/lib/package-versions.sh /tmp/
RUN apt-get update && apt-get install -y --no-install-recommends debian-archive-keyring \
 && . /tmp/pinned-suites.sh /tmp/base-packages.txt trixie \
 && printf '%s\n' "${PINNED_SOURCES[@]}" > /etc/apt/sources.list.d/dinv-pinned.list \
 && pinned_preferences > /etc/apt/preferences.d/dinv-pins \
 && apt-get update && echo "$PINNED_INCLUDE" | tr , '\n' | xargs apt-get install -y --no-install-recommends \
 && mkdir -p /usr/lib/dinv \
 && bash /tmp/package-versions.sh / dockerCli=docker-cli buildx=docker-buildx compose=docker-compose qemu=qemu-system-x86 virtiofsd=virtiofsd passt=passt node=nodejs > /usr/lib/dinv/image-versions.json \
 && rm -rf /var/lib/apt/lists/* \
 && sh /tmp/trim-base.sh / && rm /tmp/base-packages.txt /tmp/trim-base.sh /tmp/pinned-suites.sh /tmp/package-versions.sh
