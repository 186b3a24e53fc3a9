#!/usr/bin/env bash
# Runs inside a guest (started by the guest image's lxcfs-vm-suite.service): puts the Node.js binary the
# host shared on the guest's PATH and runs the compiled suite from the checkout. Its results file is
# /mnt/work/results.json; the host judges it. Powers the guest off whatever happened.
set -u
install -m 0755 /mnt/work/node/bin/node /usr/local/bin/node
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# The image disk: a podman image store made on the host, and the workload rootfs for containerd.
mkdir -p /mnt/images /var/lib/containers/storage
mount /dev/vdb /mnt/images && mount --bind /mnt/images/storage /var/lib/containers/storage
cd /tmp
node --enable-source-maps /mnt/repo/dist/test/vm/guest-suite.js 2>&1
echo "lxcfs-vm: suite exited with $?"
# Power off now, not through systemd: an orderly shutdown can wait on leftovers of the drills (containers
# with dead FUSE mounts) until the host's timeout. The results are written to 9p already (no cache).
sync
echo o > /proc/sysrq-trigger
