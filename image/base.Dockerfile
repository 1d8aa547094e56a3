# The image's base for builders with registry access (the offline path is image/build-base.sh).
#   docker build -f image/base.Dockerfile -t dinv-base:trixie image/
FROM debian:trixie-slim
COPY base-packages.txt trim-base.sh /tmp/
RUN apt-get update \
 && grep -v '^#' /tmp/base-packages.txt | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* \
 && sh /tmp/trim-base.sh / && rm /tmp/base-packages.txt /tmp/trim-base.sh
