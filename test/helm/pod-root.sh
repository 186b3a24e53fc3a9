#!/bin/sh
# Runs "$@" as a pod's container would see the node's filesystem: run in a private mount namespace
# (unshare --mount --propagation private) by test/helm/pods.ts. Builds a root under a tmpfs from the
# host's top-level directories (bind mounts: nothing of the host is written), puts the pod's volumes at
# their mount paths (MODEL_MOUNTS="src:path ..."), the service-account directory at its path when the pod
# has a token (MODEL_SA_DIR, MODEL_AUTOMOUNT=1), node where the pod's user can reach it (MODEL_NODE ->
# /run/node), makes it read-only when the container asks (MODEL_READ_ONLY=1), then runs as MODEL_UID
# with the pod's environment (the runner starts this script with nothing else but these MODEL_* settings).
set -eu
new=/run/model-pod-root
mount -t tmpfs -o mode=755 tmpfs /run 2>/dev/null || true
mkdir -p "$new"
mount -t tmpfs -o mode=755 tmpfs "$new"
for entry in /*; do
  name=${entry#/}
  case "$name" in run|proc|sys|dev) continue ;; esac
  if [ -L "$entry" ]; then ln -s "$(readlink "$entry")" "$new/$name"; continue; fi
  [ -d "$entry" ] || continue
  mkdir "$new/$name"
  mount --bind "$entry" "$new/$name"
  [ "${MODEL_READ_ONLY:-0}" = 1 ] && mount -o remount,bind,ro "$new/$name"
done
for name in proc sys dev; do mkdir "$new/$name"; mount --rbind "/$name" "$new/$name"; done
mkdir -p "$new/run/secrets/kubernetes.io/serviceaccount" "$new/tmp-pod"
if [ "${MODEL_AUTOMOUNT:-0}" = 1 ]; then mount --bind "$MODEL_SA_DIR" "$new/run/secrets/kubernetes.io/serviceaccount"; fi
touch "$new/run/node" && mount --bind "$MODEL_NODE" "$new/run/node"
for m in ${MODEL_MOUNTS:-}; do
  src=${m%%:*} dst=${m#*:}
  # A mount path under a bound host directory would be created on the host: the runner only mounts at new top-level paths or under /run.
  case "$dst" in /run/*) ;; /*/*) echo "pod-root: mount path $dst is not at the top level or under /run" >&2; exit 1 ;; esac
  mkdir -p "$new$dst"
  mount --bind "$src" "$new$dst"
done
[ "${MODEL_READ_ONLY:-0}" = 1 ] && mount -o remount,ro "$new"
exec chroot "$new" setpriv --reuid="$MODEL_UID" --regid="$MODEL_UID" --clear-groups --inh-caps=-all -- \
  /usr/bin/env -u MODEL_MOUNTS -u MODEL_NODE -u MODEL_SA_DIR -u MODEL_AUTOMOUNT -u MODEL_READ_ONLY -u MODEL_UID "$@"
