#!/usr/bin/env bash
# mmdebstrap customize hook for a VM guest ($1 = the new root). Runs on the build host.
set -euo pipefail
root=$1
# Small initrd: only what mounts an ext4 root on virtio-blk (38 MB → ~8 MB, a faster boot under TCG).
cat "$root/etc/initramfs-tools/modules.lxcfs-vm" >> "$root/etc/initramfs-tools/modules"
rm "$root/etc/initramfs-tools/modules.lxcfs-vm"
chroot "$root" update-initramfs -u -k all >/dev/null
echo lxcfs-vm > "$root/etc/hostname"
printf '/dev/vda / ext4 defaults 0 1\n' > "$root/etc/fstab"
# Debian's lxcfs package starts its own lxcfs on /var/lib/lxcfs at boot. The Debian 12 guest keeps it, as
# a node with the package installed would: the suite starts by checking what `check node` says about it
# (and about the cgroup2 options lxcfs 5.0.3 cleared), then does what it says. In the Debian 13 guest the
# agent under test is the only lxcfs from the start.
[ "$(sed -n 's/^VERSION_CODENAME=//p' "$root/etc/os-release")" = bookworm ] || chroot "$root" systemctl mask lxcfs.service
# Timers and housekeeping only slow an emulated boot down.
chroot "$root" systemctl mask apt-daily.timer apt-daily-upgrade.timer man-db.timer \
  e2scrub_all.timer e2scrub_reap.service fstrim.timer systemd-timesyncd.service dpkg-db-backup.timer \
  podman-auto-update.timer podman-clean-transient.service podman-restart.service 2>/dev/null || true
install -m 0755 "$(dirname "$0")/lxcfs-vm-entry" "$root/usr/local/sbin/lxcfs-vm-entry"
install -m 0644 "$(dirname "$0")/lxcfs-vm-suite.service" "$root/etc/systemd/system/lxcfs-vm-suite.service"
chroot "$root" systemctl enable lxcfs-vm-suite.service >/dev/null
# Root login on the console only helps someone debugging by hand (no network, snapshot disk).
chroot "$root" passwd -d root >/dev/null
