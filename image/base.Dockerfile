# The image's base for builders with registry access (the offline path is image/build-base.sh).
#   docker build -f image/base.Dockerfile -t dinv-base:trixie image/
FROM debian:trixie-slim
COPY base-packages.txt /tmp/
RUN apt-get update \
 && grep -v '^#' /tmp/base-packages.txt | xargs apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/base-packages.txt
