#!/usr/bin/env bash
# podman on the build host with the settings it needs there and storage of its own, so test images never
# mix with anyone's images and a run can be cleaned up (or reused) as a whole:
#  - runtime runc and cgroup manager cgroupfs: crun refuses cgroup v1 hybrid hosts, and CI hosts may
#    have no systemd session;
#  - default ulimits within this host's hard limits (podman asks for more nofile than many hosts allow).
set -euo pipefail
cache=${LXCFS_VM_CACHE:-/var/cache/lxcfs-webhook-vm}
conf="$cache/containers.conf"
nofile=$(prlimit -n -o HARD --noheadings | tr -d ' ')
[ "$nofile" = unlimited ] && nofile=1048576
nproc=$(prlimit -u -o HARD --noheadings | tr -d ' ')
{ [ "$nproc" = unlimited ] || [ "$nproc" -gt 4096 ]; } && nproc=4096
export LXCFS_VM_ULIMITS="nofile=$nofile:$nofile nproc=$nproc:$nproc"
mkdir -p "$cache"
want=$(printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' "$nofile" "$nofile" "$nproc" "$nproc")
[ "$(cat "$conf" 2>/dev/null)" = "$want" ] || printf '%s\n' "$want" > "$conf"
export CONTAINERS_CONF="$conf"
if [ "${1:-}" = build ]; then shift; set -- build --ulimit "nofile=$nofile:$nofile" --ulimit "nproc=$nproc:$nproc" "$@"; fi
exec nice -n 19 ionice -c3 podman --root "$cache/podman/storage" --runroot /run/lxcfs-webhook-vm/podman "$@"
