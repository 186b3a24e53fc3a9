#!/usr/bin/env bash
# Builds (or finds in the cache) one VM guest for the node-habitat suite: a Debian root filesystem made
# by mmdebstrap from Debian packages only, an ext4 disk image of it (mkfs.ext4 -d: no loop mounts), and
# the kernel + a small initrd for QEMU's direct kernel boot.
#
#   scripts/vm/build-guest.sh bookworm|trixie     → prints the guest's cache directory
#
# The cache lives outside the checkout (LXCFS_VM_CACHE, default /var/cache/lxcfs-webhook-vm) so a fresh
# clone on the same machine reuses it; each guest sits under a hash of everything that shapes it (this
# script, the guest files it copies in, the host's apt sources), so changing any input builds a new one.
# The suite itself is NOT baked in: the guest runs it from the checkout shared over virtio-9p, so editing
# tests never rebuilds a guest.
set -euo pipefail
suite=${1:?usage: build-guest.sh bookworm|trixie}
case "$suite" in bookworm|trixie) ;; *) echo "build-guest: unknown suite $suite (bookworm or trixie)" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
cache=${LXCFS_VM_CACHE:-/var/cache/lxcfs-webhook-vm}
sources=${LXCFS_VM_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
[ -r "$sources" ] || { echo "build-guest: $sources is missing: point LXCFS_VM_APT_SOURCES at a deb822 sources file for Debian" >&2; exit 2; }
for tool in mmdebstrap mkfs.ext4; do
  command -v "$tool" >/dev/null || { echo "build-guest: $tool is missing: run scripts/setup-system.sh (installs mmdebstrap, e2fsprogs)" >&2; exit 2; }
done

# The host's own sources, re-pointed at the wanted release: the mirror address is never written here,
# whatever the machine is configured with (a snapshot, a proxy) is what the guest is built from.
host_suite=$(sed -n 's/^Suites:[[:space:]]*\([a-z]*\).*/\1/p' "$sources" | head -n1)
guest_sources=$(sed -e "/^Suites:/s/\b$host_suite\b/$suite/g" "$sources")

packages=(systemd systemd-sysv udev dbus kmod linux-image-amd64 initramfs-tools
  lxcfs fuse3 podman crun containerd runc conmon procps util-linux mount iproute2 ca-certificates)

key=$( { cat "$0" "$here"/guest/*; printf '%s\n' "$guest_sources" "${packages[*]}"; } | sha256sum | cut -c1-16)
dir="$cache/$suite-$key"
if [ -f "$dir/ready" ]; then echo "$dir"; exit 0; fi

mkdir -p "$cache"
# One builder per guest at a time (CI and a developer on the same machine share the cache).
exec 9>"$cache/$suite.lock"
flock -w 1800 9 || { echo "build-guest: another build of $suite holds $cache/$suite.lock for 30 min" >&2; exit 1; }
if [ -f "$dir/ready" ]; then echo "$dir"; exit 0; fi

start=$(date +%s)
tmp=$(mktemp -d "$cache/.build-$suite.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
printf '%s\n' "$guest_sources" > "$tmp/debian.sources"
mkdir -p "$tmp/root"
echo "build-guest: mmdebstrap $suite (${#packages[@]} packages) into $tmp/root" >&2
nice -n 19 ionice -c3 mmdebstrap -q --variant=minbase --mode=root --format=directory \
  --include="$(IFS=,; echo "${packages[*]}")" \
  --setup-hook='mkdir -p "$1/etc/initramfs-tools/conf.d"' \
  --setup-hook='printf "MODULES=list\n" > "$1/etc/initramfs-tools/conf.d/lxcfs-vm.conf"' \
  --setup-hook="mkdir -p \"\$1/etc/initramfs-tools\" && printf 'virtio_pci\nvirtio_blk\next4\n' > \"\$1/etc/initramfs-tools/modules.lxcfs-vm\"" \
  --customize-hook="$here/guest/customize.sh \"\$1\"" \
  "$suite" "$tmp/root" "$tmp/debian.sources" >&2

cp -L "$tmp/root/vmlinuz" "$tmp/vmlinuz"
cp -L "$tmp/root/initrd.img" "$tmp/initrd.img"
# Room for the images the suite loads into podman and containerd (writes go to a QEMU snapshot, the
# image itself never changes).
used_mb=$(du -sm "$tmp/root" | cut -f1)
truncate -s "$((used_mb + 3072))M" "$tmp/rootfs.img"
nice -n 19 ionice -c3 mkfs.ext4 -q -L lxcfs-vm -d "$tmp/root" "$tmp/rootfs.img"
{ echo "suite=$suite"; echo "kernel=$(ls "$tmp/root/lib/modules")";
  echo "lxcfs=$(chroot "$tmp/root" dpkg-query -W -f '${Version}' lxcfs)";
  echo "built_seconds=$(( $(date +%s) - start ))"; } > "$tmp/info"
rm -rf "$tmp/root"
mkdir -p "$dir"
mv "$tmp/vmlinuz" "$tmp/initrd.img" "$tmp/rootfs.img" "$tmp/info" "$dir/"
touch "$dir/ready"
# Older guests of this suite are stale inputs: keep the cache from growing without bound.
for old in "$cache/$suite"-*; do [ "$old" != "$dir" ] && [ -d "$old" ] && rm -rf "$old"; done
echo "build-guest: $suite built in $(( $(date +%s) - start )) s: $(tr '\n' ' ' < "$dir/info")" >&2
echo "$dir"
