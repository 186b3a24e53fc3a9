#!/usr/bin/env bash
# placeholder
echo "hello from $(uname -r)" > /mnt/work/hello
grep -o lxcfs_vm_probe /proc/cmdline && exit 0
cat /proc/self/cgroup; stat -f -c %T /sys/fs/cgroup; podman --version; ctr --version; lxcfs --version
