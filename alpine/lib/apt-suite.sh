#!/usr/bin/env bash
# apt for another Debian suite than the machine's own (the guest is built from trixie on a bookworm
# machine), with its own lists and cache under DIR: the machine's sources and status stay untouched.
# Source it: `. apt-suite.sh SUITE DIR`; then `apt_suite get|cache ARGS...` runs apt-get/apt-cache
# against SUITE. bookworm's archive keyring verifies trixie too.
apt_suite_init() {
  APT_SUITE=$1
  mkdir -p "$2/apt-$1/lists/partial" "$2/apt-$1/cache/archives/partial"
  # Absolute: apt reads relative Dir:: paths against its root, not the working directory.
  APT_SUITE_DIR=$(cd "$2/apt-$1" && pwd)
  # Testing and unstable: the mirror's Release file may be past its Valid-Until (still signature-checked).
  local valid=
  case $APT_SUITE in forky|sid|testing|unstable) valid=' check-valid-until=no' ;; esac
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg%s] http://deb.debian.org/debian %s main\n' "$valid" "$APT_SUITE" \
    > "$APT_SUITE_DIR/sources.list"
  APT_SUITE_OPTS=(
    -o "Dir::Etc::SourceList=$APT_SUITE_DIR/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$APT_SUITE_DIR/lists" -o "Dir::Cache=$APT_SUITE_DIR/cache" -o Dir::State::status=/dev/null
  )
  # Lists older than a day are fetched again (point releases move the kernel package's name).
  if [ -z "$(find "$APT_SUITE_DIR/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 2>/dev/null)" ]; then
    apt-get "${APT_SUITE_OPTS[@]}" update -qq
  fi
}
apt_suite() {
  local tool=$1; shift
  "apt-$tool" "${APT_SUITE_OPTS[@]}" "$@"
}
# Download PACKAGE... into the current directory (_apt cannot write a root-owned temp dir; the
# unsandboxed fallback only warns).
apt_suite_download() {
  apt_suite get download -q "$@" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true
}
if [ $# -ge 2 ]; then apt_suite_init "$1" "$2"; fi
