#!/usr/bin/env bash
# Lets this machine run arm64 binaries and arm64 images under QEMU user emulation: registers Debian's
# qemu-aarch64-static with the kernel's binfmt_misc (update-binfmts mounts binfmt_misc at its usual
# place, /proc/sys/fs/binfmt_misc, when no init system did). The registration carries the F flag, so the
# interpreter is found inside containers and chroots too. Idempotent; needs root for a new registration.
set -euo pipefail
entry=/proc/sys/fs/binfmt_misc/qemu-aarch64
if [ -r "$entry" ] && grep -q '^enabled' "$entry" && grep -q '^flags: .*F' "$entry"; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "binfmt-arm64: qemu-aarch64 is not registered with binfmt_misc; run this script as root" >&2
  exit 1
fi
if ! grep -qw binfmt_misc /proc/filesystems; then
  echo "binfmt-arm64: this kernel has no binfmt_misc (CONFIG_BINFMT_MISC): arm64 binaries cannot run here" >&2
  exit 1
fi
update-binfmts --enable qemu-aarch64
grep -q '^enabled' "$entry" || { echo "binfmt-arm64: registering qemu-aarch64 failed" >&2; exit 1; }
