#!/usr/bin/env bash
# Boots one guest (from build-guest.sh) with QEMU's direct kernel boot and waits for it to power off.
#
#   scripts/vm/run-guest.sh <guest-dir> <work-dir> <timeout-seconds>
#
# The checkout is shared read-only as 9p tag "repo", <work-dir> read-write as "work" (results out), and
# <work-dir>/images.img, when present, is the guest's second disk (the images). The disk is opened with snapshot=on: the cached image is never modified. Bounded: QEMU is killed
# at the timeout, and then (or on any other failure) the end of the console log is printed. Whether the
# suite passed is decided by the caller from the results in <work-dir>, never from QEMU's exit status.
#
# Acceleration: KVM only if it can really boot this guest (on some machines /dev/kvm is a PVM device on
# which a stock kernel hangs or stops with an emulation failure), found out by one short trial boot per
# machine, kernel and QEMU, remembered in the cache; otherwise software emulation (TCG). LXCFS_VM_ACCEL
# (kvm|tcg) overrides.
set -euo pipefail
guest=${1:?usage: run-guest.sh <guest-dir> <work-dir> <timeout-seconds>}
work=${2:?usage: run-guest.sh <guest-dir> <work-dir> <timeout-seconds>}
limit=${3:?usage: run-guest.sh <guest-dir> <work-dir> <timeout-seconds>}
repo=$(cd "$(dirname "$0")/../.." && pwd)
cache=${LXCFS_VM_CACHE:-/var/cache/lxcfs-webhook-vm}
command -v qemu-system-x86_64 >/dev/null || { echo "run-guest: qemu-system-x86_64 is missing: run scripts/setup-system.sh (installs qemu-system-x86)" >&2; exit 2; }
[ -f "$guest/ready" ] || { echo "run-guest: $guest is not a built guest: run scripts/vm/build-guest.sh first" >&2; exit 2; }

# Runs QEMU with the given acceleration flags, console to $1, within $2 seconds, extra kernel args $3.
boot() {
  local console=$1 seconds=$2 extra=$3; shift 3
  nice -n 19 ionice -c3 timeout --kill-after=10 "$seconds" qemu-system-x86_64 "$@" \
    -machine q35 -smp 2 -m 2048 -nodefaults -no-user-config -display none -no-reboot -nic none \
    -serial "file:$console" \
    -kernel "$guest/vmlinuz" -initrd "$guest/initrd.img" \
    -append "console=ttyS0 root=/dev/vda rw panic=-1 systemd.show_status=false loglevel=4 $extra" \
    -drive "file=$guest/rootfs.img,format=raw,if=virtio,snapshot=on" \
    -virtfs "local,path=$repo,mount_tag=repo,security_model=none,readonly=on" \
    -virtfs "local,path=$work,mount_tag=work,security_model=none" \
    "${images_disk[@]}"
}
# The image store build-images.sh made (second disk, /dev/vdb in the guest), also as a snapshot.
images_disk=()
[ -f "$work/images.img" ] && images_disk=(-drive "file=$work/images.img,format=raw,if=virtio,snapshot=on")

tcg=(-accel tcg,thread=multi -cpu max)
kvm=(-accel kvm -cpu host)
accel=${LXCFS_VM_ACCEL:-}
if [ -z "$accel" ]; then
  accel=tcg
  if [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
    key=$( { qemu-system-x86_64 --version; uname -r; sha256sum < "$guest/vmlinuz"; cat /proc/cpuinfo | grep -m1 "^flags"; } | sha256sum | cut -c1-16)
    memo="$cache/accel-$key"
    if [ -f "$memo" ]; then
      accel=$(cat "$memo")
    else
      # The guest's entry script sees lxcfs_vm_probe, prints its marker and powers off: a KVM that gets
      # there (a few seconds on real hardware) boots these guests; one that hangs, asserts or hits an
      # emulation failure within 30 s does not.
      probe_dir=$(mktemp -d)
      boot "$probe_dir/console.log" 30 lxcfs_vm_probe=1 "${kvm[@]}" >"$probe_dir/qemu.log" 2>&1 || true
      if grep -q 'lxcfs-vm: booted' "$probe_dir/console.log" 2>/dev/null; then accel=kvm; fi
      echo "run-guest: KVM trial boot $([ $accel = kvm ] && echo worked || echo failed): using $accel$([ $accel = tcg ] && echo " ($(tail -c 300 "$probe_dir/qemu.log" | tr '\n' ' '))")" >&2
      rm -rf "$probe_dir"
      echo "$accel" > "$memo"
    fi
  fi
fi
case "$accel" in kvm) flags=("${kvm[@]}") ;; tcg) flags=("${tcg[@]}") ;; *) echo "run-guest: LXCFS_VM_ACCEL=$accel: use kvm or tcg" >&2; exit 2 ;; esac

echo "$accel" > "$work/accel"
start=$(date +%s%N)
set +e
boot "$work/console.log" "$limit" "" "${flags[@]}" >"$work/qemu.log" 2>&1
rc=$?
set -e
echo "$(( ($(date +%s%N) - start) / 1000000 ))" > "$work/qemu-ms"
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "run-guest: the guest did not power off within $limit s: killed. Last console lines:" >&2
  tail -n 40 "$work/console.log" >&2 || true
  exit 1
fi
if [ "$rc" -ne 0 ]; then
  echo "run-guest: qemu exited with $rc: $(cat "$work/qemu.log")" >&2
  tail -n 40 "$work/console.log" >&2 || true
  exit 1
fi
