#!/usr/bin/env bash
# Installs what the tests need from the machine's own package manager: real lxcfs and fuse3 for the
# node-agent tests, QEMU, mmdebstrap and podman for the VM suite. Idempotent: installs only what is missing. Needs root (CI runs as root).
set -euo pipefail
need=()
command -v lxcfs >/dev/null 2>&1 || need+=(lxcfs)
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
command -v make >/dev/null 2>&1 || need+=(make)
command -v cc >/dev/null 2>&1 || need+=(gcc libc6-dev)
# the agent's test containers run free(1) and are built with unshare/nsenter/mount
command -v free >/dev/null 2>&1 || need+=(procps)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
command -v mount >/dev/null 2>&1 || need+=(mount)
# the serve test runs the curl | jq command the embedded default prints
command -v curl >/dev/null 2>&1 || need+=(curl ca-certificates)
command -v jq >/dev/null 2>&1 || need+=(jq)
# the Helm chart tests build their renderer (test/chart/renderer) from Go and Debian's packaged Go
# sources: text/template + sprig (Helm's function library), ghodss/yaml (sigs.k8s.io/yaml's origin) and
# gojsonschema (Helm's values.schema.json validator). No helm binary is packaged.
command -v go >/dev/null 2>&1 || need+=(golang-go)
gocode=/usr/share/gocode/src/github.com
[ -d "$gocode/Masterminds/sprig" ] || need+=(golang-github-masterminds-sprig-dev)
[ -d "$gocode/Masterminds/semver" ] || need+=(golang-github-masterminds-semver-dev)
[ -d "$gocode/ghodss/yaml" ] || need+=(golang-github-ghodss-yaml-dev)
[ -d "$gocode/xeipuuv/gojsonschema" ] || need+=(golang-github-xeipuuv-gojsonschema-dev)
# the VM suite (scripts/vm/): guests built with mmdebstrap into ext4 images, booted with QEMU; images
# built with podman, which on a cgroup v1 hybrid host needs runc (crun refuses hybrid mode)
command -v qemu-system-x86_64 >/dev/null 2>&1 || need+=(qemu-system-x86)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v prlimit >/dev/null 2>&1 || need+=(util-linux)
# the npm package carries the agent's helper prebuilt for arm64 (scripts/build-prebuilt.sh, Debian's cross
# compiler); arm64 binaries and images run under QEMU user emulation, registered with binfmt_misc
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
[ -x /usr/bin/qemu-aarch64-static ] || need+=(qemu-user-static)
command -v update-binfmts >/dev/null 2>&1 || need+=(binfmt-support)
# mmdebstrap makes the arm64 stand-in bases (scripts/vm/build-images.sh) only where arch-test says arm64 runs
command -v arch-test >/dev/null 2>&1 || need+=(arch-test)
if [ ${#need[@]} -eq 0 ]; then
  exec bash "$(dirname "$0")/binfmt-arm64.sh"
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup: missing ${need[*]}; install them (apt-get install -y ${need[*]}) or run as root" >&2
  exit 1
fi
echo "setup: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}"
exec bash "$(dirname "$0")/binfmt-arm64.sh"
