#!/usr/bin/env bash
# `npm run images`: builds and tags the two images of a release, for amd64 and arm64, from
# images/*.Dockerfile, with podman or docker (whichever works here), tagged with package.json's version:
#
#   <registry>/agent:<version>-amd64   <registry>/agent:<version>-arm64   and the list <registry>/agent:<version>
#   <registry>/webhook:<version>-amd64 <registry>/webhook:<version>-arm64 and the list <registry>/webhook:<version>
#
# The build stages (TypeScript, the native helper, cross-compiled with Debian's gcc-<triplet>) run on
# this machine's own architecture; only the final stages of the other architecture run its package
# manager under QEMU user emulation (scripts/binfmt-arm64.sh registers it). Push with
#   podman manifest push --all <registry>/agent:<version> docker://<registry>/agent:<version>
# (docker: push the per-architecture tags, then `docker manifest create` the list from them).
#
#   scripts/build-images.sh [--arch amd64,arm64] [--registry ghcr.io/lxcfs-webhook] [--tag TAG]
#                           [--base IMAGE] [--build-base IMAGE] [--webhook-base IMAGE] [--label K=V]
#
# --base (the agent's and the build stages' Debian with Node.js, default node:24-trixie-slim),
# --build-base (the build stages' image; default --base) and --webhook-base (default
# gcr.io/distroless/nodejs24-debian12:nonroot) may contain {arch}, replaced by each architecture: the
# VM suite passes local stand-ins that way. IMAGE_TOOL overrides the tool (a command, e.g. a wrapper).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
arches=amd64,arm64
registry=ghcr.io/lxcfs-webhook
tag=$(node -p "require('$repo/package.json').version")
base='' build_base='' webhook_base='' labels=()
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arches=$2; shift 2 ;;
    --registry) registry=$2; shift 2 ;;
    --tag) tag=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --build-base) build_base=$2; shift 2 ;;
    --webhook-base) webhook_base=$2; shift 2 ;;
    --label) labels+=(--label "$2"); shift 2 ;;
    *) echo "build-images: unknown argument $1 (see the header of $0)" >&2; exit 2 ;;
  esac
done

# The tool: podman, or docker when its daemon answers (a docker client alone cannot build).
if [ -n "${IMAGE_TOOL:-}" ]; then
  read -r -a tool <<< "$IMAGE_TOOL"
elif command -v podman >/dev/null && podman info >/dev/null 2>&1; then
  tool=(podman)
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  tool=(docker)
else
  echo "build-images: neither podman nor docker can build here (install podman, or start docker's daemon)" >&2
  exit 1
fi
T() { "${tool[@]}" "$@"; }
kind=podman
[ "$(basename "${tool[0]}")" = docker ] && kind=docker

host_arch=$(case "$(uname -m)" in x86_64) echo amd64 ;; aarch64) echo arm64 ;; *) uname -m ;; esac)
IFS=, read -r -a arch_list <<< "$arches"
for arch in "${arch_list[@]}"; do
  case "$arch" in amd64|arm64) ;; *) echo "build-images: --arch $arch: only amd64 and arm64 are built" >&2; exit 2 ;; esac
  if [ "$arch" != "$host_arch" ] && ! bash "$repo/scripts/binfmt-arm64.sh" >/dev/null 2>&1 && [ "$arch" = arm64 ]; then
    echo "build-images: this machine cannot run arm64 binaries: run scripts/setup-system.sh (qemu-user-static, binfmt) as root" >&2
    exit 1
  fi
done

# An image named for one architecture ({arch} replaced). podman 4's build looks a local image of another
# architecture than its own up by ID only (by name it tries to pull it), so a local image of the right
# architecture is given by its ID.
image_for() { # <name with {arch}> <arch>
  local name=${1//\{arch\}/$2}
  if [ "$kind" = podman ] && [ "$(T image inspect --format '{{.Architecture}}' "$name" 2>/dev/null)" = "$2" ]; then
    T image inspect --format '{{.Id}}' "$name"
  else
    printf '%s' "$name"
  fi
}
build_args() { # <arch> <dockerfile>: the --build-arg flags of that image and architecture
  local arch=$1 file=$2
  # docker's BuildKit sets BUILDPLATFORM itself; podman 4 does not.
  [ "$kind" = podman ] && printf -- '--build-arg\nBUILDPLATFORM=linux/%s\n' "$host_arch"
  if [ "$file" = agent ] && [ -n "$base" ]; then printf -- '--build-arg\nBASE=%s\n' "$(image_for "$base" "$arch")"; fi
  if [ -n "$build_base$base" ]; then printf -- '--build-arg\nBUILD_BASE=%s\n' "$(image_for "${build_base:-$base}" "$host_arch")"; fi
  if [ "$file" = webhook ] && [ -n "$webhook_base" ]; then printf -- '--build-arg\nBASE=%s\n' "$(image_for "$webhook_base" "$arch")"; fi
  return 0
}

for image in agent webhook; do
  for arch in "${arch_list[@]}"; do
    t0=$SECONDS
    mapfile -t args < <(build_args "$arch" "$image")
    T build -q --platform "linux/$arch" "${args[@]}" "${labels[@]}" \
      -f "$repo/images/$image.Dockerfile" -t "$registry/$image:$tag-$arch" "$repo" >/dev/null
    echo "build-images: $registry/$image:$tag-$arch built in $((SECONDS - t0)) s" >&2
  done
  if [ "$kind" = podman ]; then
    T manifest rm "$registry/$image:$tag" >/dev/null 2>&1 || true
    T rmi "$registry/$image:$tag" >/dev/null 2>&1 || true
    T manifest create "$registry/$image:$tag" >/dev/null
    for arch in "${arch_list[@]}"; do T manifest add "$registry/$image:$tag" "containers-storage:$registry/$image:$tag-$arch" >/dev/null; done
    echo "build-images: $registry/$image:$tag lists ${arch_list[*]}" >&2
  fi
done
