#!/usr/bin/env bash
# Builds (or finds in the cache) the admission harness, test/admission-harness/main.go, in the Debian
# sid chroot of build-chroot.sh: GOPATH mode from Debian's packaged sources only (k8s.io/apiserver 0.36
# and its neighbours), offline, static (CGO_ENABLED=0) so that it runs on the host.
#
#   scripts/admission-harness/build-harness.sh     → prints the harness binary's path
#
# The binary sits in the same cache as the chroot, under a hash of its source, this script and the
# chroot it was built in; the chroot keeps Go's build cache, so after a change to main.go only main.go
# is compiled again (seconds; a cold build of the API server's packages takes minutes).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source_file=$(cd "$here/../.." && pwd)/test/admission-harness/main.go
cache=${LXCFS_HARNESS_CACHE:-/var/cache/lxcfs-webhook-admission-harness}
chroot_dir=$("$here/build-chroot.sh")

key=$( { cat "$0" "$source_file"; basename "$chroot_dir"; } | sha256sum | cut -c1-16)
binary="$cache/harness-$key"
if [ -x "$binary" ]; then echo "$binary"; exit 0; fi

exec 9>"$cache/harness.lock"
flock -w 1800 9 || { echo "build-harness: another build holds $cache/harness.lock for 30 min" >&2; exit 1; }
if [ -x "$binary" ]; then echo "$binary"; exit 0; fi

start=$(date +%s)
work=$(mktemp -d "$chroot_dir/tmp/harness.XXXXXX")
trap 'rm -rf "$work"' EXIT
cp "$source_file" "$work/main.go"
inside=${work#"$chroot_dir"}
echo "build-harness: go build in $chroot_dir ($(tr '\n' ' ' < "$chroot_dir/.versions"))" >&2
# No /proc in the chroot: GOROOT is given, and Go's telemetry (which wants /proc/self/exe) is off.
goroot=$(cd "$chroot_dir/usr/lib" && ls -d go-1.* | sort -V | tail -n1)
nice -n 10 chroot "$chroot_dir" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root GOROOT="/usr/lib/$goroot" GOTELEMETRY=off \
  GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOPROXY=off CGO_ENABLED=0 GOCACHE=/var/cache/go-build \
  "/usr/lib/$goroot/bin/go" build -trimpath -ldflags='-s -w' -o "$inside/harness" "$inside/main.go" >&2
mv "$work/harness" "$binary.tmp"
mv "$binary.tmp" "$binary"
for old in "$cache"/harness-*; do [ "$old" != "$binary" ] && [ -f "$old" ] && rm -f "$old"; done
echo "build-harness: built in $(( $(date +%s) - start )) s" >&2
echo "$binary"
