#!/usr/bin/env bash
# Builds (or finds in the cache) the Debian sid chroot the admission harness (test/admission-harness)
# is compiled in: Go 1.27 and the API server's admission code, k8s.io/apiserver 0.36 with client-go, api
# and apimachinery of the same release, as Debian packages their sources (only sid has a set that builds
# together). The harness is compiled in GOPATH mode from those sources alone; nothing is downloaded but
# Debian packages.
#
#   scripts/admission-harness/build-chroot.sh     → prints the chroot's directory
#
# The cache lives outside the checkout (LXCFS_HARNESS_CACHE, default
# /var/cache/lxcfs-webhook-admission-harness) so a fresh clone on the same machine reuses it; the chroot
# sits under a hash of what shapes it (this script, the package list, the apt sources), so changing any
# of them builds a new one. Needs root (mmdebstrap --mode=root) and mmdebstrap (scripts/setup-system.sh).
set -euo pipefail
cache=${LXCFS_HARNESS_CACHE:-/var/cache/lxcfs-webhook-admission-harness}
sources=${LXCFS_HARNESS_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
[ -r "$sources" ] || { echo "build-chroot: $sources is missing: point LXCFS_HARNESS_APT_SOURCES at a deb822 sources file for Debian" >&2; exit 2; }
command -v mmdebstrap >/dev/null || { echo "build-chroot: mmdebstrap is missing: run scripts/setup-system.sh" >&2; exit 2; }

# The host's own main archive (whatever mirror or proxy the machine is configured with), re-pointed at
# sid; sid has no -updates or -security suite, so only that one stanza is kept.
host_suite=$(sed -n 's/^Suites:[[:space:]]*\([a-z]*\).*/\1/p' "$sources" | head -n1)
sid_sources=$(awk -v s="$host_suite" 'BEGIN { RS=""; ORS="\n\n" } $0 ~ "Suites:[^\n]*(^|[ \t])" s "([ \t]|$)" { print; exit }' "$sources" \
  | sed -e "s/^Suites:.*/Suites: sid/")
[ -n "$sid_sources" ] || { echo "build-chroot: no stanza for $host_suite in $sources" >&2; exit 2; }

# golang-k8s-apiserver-dev brings client-go, api, apimachinery and their dependencies' sources.
packages=(golang-go golang-k8s-apiserver-dev golang-k8s-client-go-dev ca-certificates)

key=$( { cat "$0"; printf '%s\n' "$sid_sources" "${packages[*]}"; } | sha256sum | cut -c1-16)
dir="$cache/chroot-$key"
if [ -f "$dir/.ready" ]; then echo "$dir"; exit 0; fi

mkdir -p "$cache"
# One builder at a time (CI and developers on the same machine share the cache).
exec 9>"$cache/chroot.lock"
flock -w 1800 9 || { echo "build-chroot: another build holds $cache/chroot.lock for 30 min" >&2; exit 1; }
if [ -f "$dir/.ready" ]; then echo "$dir"; exit 0; fi

start=$(date +%s)
tmp=$(mktemp -d "$cache/.build-chroot.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
printf '%s\n' "$sid_sources" > "$tmp/debian.sources"
echo "build-chroot: mmdebstrap sid (${packages[*]}) into $tmp/root" >&2
# sid's Release file is short-lived: a machine whose clock runs ahead would refuse it as expired.
nice -n 19 ionice -c3 mmdebstrap -q --variant=apt --mode=root --format=directory \
  --aptopt='Acquire::Check-Valid-Until "false"' \
  --include="$(IFS=,; echo "${packages[*]}")" \
  sid "$tmp/root" "$tmp/debian.sources" >&2
chroot "$tmp/root" dpkg-query -W -f '${Package} ${Version}\n' golang-go golang-k8s-apiserver-dev golang-k8s-client-go-dev \
  > "$tmp/root/.versions"
mv "$tmp/root" "$dir"
touch "$dir/.ready"
# Older chroots are stale inputs: keep the cache from growing without bound.
for old in "$cache"/chroot-*; do [ "$old" != "$dir" ] && [ -d "$old" ] && rm -rf "$old"; done
echo "build-chroot: built in $(( $(date +%s) - start )) s: $(tr '\n' ' ' < "$dir/.versions")" >&2
echo "$dir"
