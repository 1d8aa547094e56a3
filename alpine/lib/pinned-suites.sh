#!/usr/bin/env bash
# A package list on a base suite with named packages pinned to another suite (the guest's and the
# image's Docker stack comes from forky on a trixie base). Source it:
#   . pinned-suites.sh PACKAGES_FILE BASE_SUITE
# A list line is `NAME` (from the base suite) or `NAME SUITE` (from SUITE, pinned). Then:
#   PINNED_INCLUDE        the names, comma-separated (mmdebstrap --include)
#   PINNED_SOURCES        one apt sources line a suite: the base, then each pinned suite
#   pinned_preferences    prints the apt preferences: a pinned suite gives only its named packages
#                         (and what only it has); everything else keeps the base suite's version
#   pinned_packages SUITE prints the names pinned to SUITE, one a line
pinned_mirror=http://deb.debian.org/debian
pinned_keyring=/usr/share/keyrings/debian-archive-keyring.gpg

pinned_init() {
  PINNED_FILE=$1 PINNED_BASE=$2
  PINNED_INCLUDE=$(awk '!/^[[:space:]]*(#|$)/ {print $1}' "$PINNED_FILE" | paste -sd, -)
  local suites
  suites=$(awk '!/^[[:space:]]*(#|$)/ && NF > 1 {print $2}' "$PINNED_FILE" | sort -u)
  PINNED_SOURCES=("deb [signed-by=$pinned_keyring] $pinned_mirror $PINNED_BASE main")
  PINNED_SUITES=()
  for s in $suites; do
    # A pinned suite is testing or unstable: the mirror's Release file of it may be past its
    # Valid-Until (the signature is still checked), which apt would refuse.
    PINNED_SOURCES+=("deb [signed-by=$pinned_keyring check-valid-until=no] $pinned_mirror $s main")
    PINNED_SUITES+=("$s")
  done
}

pinned_packages() {
  awk -v s="$1" '!/^[[:space:]]*(#|$)/ && $2 == s {print $1}' "$PINNED_FILE"
}

pinned_preferences() {
  local s
  for s in "${PINNED_SUITES[@]}"; do
    # Priority 1: a package only that suite has may still come from it (a new dependency), nothing else.
    printf 'Package: *\nPin: release n=%s\nPin-Priority: 1\n\n' "$s"
    printf 'Package: %s\nPin: release n=%s\nPin-Priority: 990\n\n' "$(pinned_packages "$s" | paste -sd' ' -)" "$s"
  done
}

if [ $# -ge 2 ]; then pinned_init "$1" "$2"; fi
