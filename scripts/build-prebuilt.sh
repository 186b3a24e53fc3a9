#!/usr/bin/env bash
# The native parts for the npm package: native/prebuilt/linux-x64 and linux-arm64, each built with Debian's
# compiler for that architecture (gcc's x86_64-linux-gnu-gcc, gcc-aarch64-linux-gnu): the agent's helper
# linked statically, so it runs whatever C library the machine has, and the release-memory addon of
# serve and the agent (glibc only; both work without it). `npm pack` runs it (prepack); scripts/setup-system.sh installs the cross
# compiler.
set -euo pipefail
cd "$(dirname "$0")/../native"
for target in x64:x86_64-linux-gnu arm64:aarch64-linux-gnu; do
  arch=${target%%:*} triplet=${target#*:}
  if ! command -v "$triplet-gcc" >/dev/null; then
    echo "build-prebuilt: $triplet-gcc is missing (bash scripts/setup-system.sh installs it)" >&2
    exit 1
  fi
  make -s BUILD="prebuilt/linux-$arch" CC="$triplet-gcc" LDFLAGS="-static -s"
done
