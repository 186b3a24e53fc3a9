#!/bin/sh
# Builds native/ targets for the image's architecture (TARGETARCH) in a build stage that runs on the
# builder's own one: Debian's gcc for that target, so nothing is compiled under emulation. Both images'
# Dockerfiles run it:  cross-make.sh <native dir> <make arguments...>
set -eu
dir=$1
shift
case "$TARGETARCH" in
  amd64) triplet=x86_64-linux-gnu packages="gcc-x86-64-linux-gnu libc6-dev-amd64-cross" ;;
  arm64) triplet=aarch64-linux-gnu packages="gcc-aarch64-linux-gnu libc6-dev-arm64-cross" ;;
  *) echo "no Debian cross compiler chosen for $TARGETARCH" >&2; exit 1 ;;
esac
if [ "$(dpkg --print-architecture)" = "$TARGETARCH" ]; then packages="gcc libc6-dev"; fi
apt-get update
# shellcheck disable=SC2086 # a list of packages
apt-get install -y --no-install-recommends make $packages
rm -rf /var/lib/apt/lists/*
make -C "$dir" CC="$triplet-gcc" "$@"
