# syntax=docker/dockerfile:1
# The node agent: lxcfs (Debian's lxcfs 7.0.0 package, on Debian 13's libraries) and fuse3 run
# inside this image (never copied onto the host, so the node's glibc does not matter), the native
# remount helper is compiled from native/ in a build stage, and the CLI runs on Node.js 24. Build from
# the repository root, one architecture at a time:
#   docker build --platform linux/arm64 -f images/agent.Dockerfile -t lxcfs-webhook/agent .
# (scripts/build-images.sh builds and tags both architectures.) BASE is the public node:24-trixie-slim
# by default; the VM tests pass local stand-ins built from Debian packages (scripts/vm/build-images.sh).
# The build stages run on the builder's own architecture (BUILD_BASE; $BUILDPLATFORM): the helper is
# cross-compiled with Debian's gcc for the target and linked statically, and lxcfs is downloaded for the
# target, so nothing is compiled or fetched under emulation and the helper does not depend on the
# image's C library.
ARG BASE=node:24-trixie-slim
ARG BUILD_BASE=node:24-trixie-slim

# lxcfs 7.0.0: Debian's own package (lxcfs 7.0.0-1, Debian sid/forky) on BASE's Debian 13, whose
# libraries satisfy its dependencies (libc6 >= 2.38, libfuse3-4 >= 3.17.2, runit-helper, fuse3), so the
# image keeps Debian 13's libraries and takes only lxcfs itself from sid. Debian 13's own lxcfs 6.0.4,
# started in the node's cgroup namespace, clears the node's cgroup2 mount options nsdelegate and
# memory_recursiveprot (lxc/lxcfs#681, fixed in 6.0.6 and 7.0.0); 7.0.0 also lists as many CPUs in
# /proc/stat as in cpuinfo, takes CPU limits from parent cgroups and reads /proc/stat on many-core nodes
# without "Write to cache was truncated" (README, "Which lxcfs"). The stage runs on the builder's
# architecture and downloads the target's package (lxcfs:$TARGETARCH). Self-contained: it needs only
# BUILD_BASE's apt sources (the mirror they name first, re-pointed at sid here and for the target
# architecture only; LXCFS_MIRROR overrides). apt checks the package against the SHA-256 of sid's signed
# Packages index. Validity is not checked for that entry alone: a mirror snapshot serves a sid Release
# past its one-week Valid-Until, and the exact version is pinned. The sid entry stays in this stage; the
# image gets the .deb only. No file of the repository is used, so the layer cache keeps this stage until
# BUILD_BASE, the target or these lines change.
FROM --platform=$BUILDPLATFORM ${BUILD_BASE} AS lxcfs
ARG TARGETARCH
ARG LXCFS_VERSION=7.0.0-1
ARG LXCFS_SUITE=sid
ARG LXCFS_MIRROR=
RUN set -eu; \
    field() { cat /etc/apt/sources.list.d/*.sources 2>/dev/null | sed -n "s/^$1:[[:space:]]*//p" | head -n1; }; \
    mirror=${LXCFS_MIRROR:-$(field URIs)}; keyring=$(field Signed-By); \
    [ -n "$mirror" ] || { echo "BUILD_BASE has no deb822 apt sources: pass --build-arg LXCFS_MIRROR=<Debian mirror URL>" >&2; exit 1; }; \
    [ "$(dpkg --print-architecture)" = "$TARGETARCH" ] || dpkg --add-architecture "$TARGETARCH"; \
    rm -f /etc/apt/sources.list /etc/apt/sources.list.d/*; \
    printf 'Types: deb\nURIs: %s\nSuites: %s\nComponents: main\nArchitectures: %s\nSigned-By: %s\nCheck-Valid-Until: no\n' \
      "$mirror" "$LXCFS_SUITE" "$TARGETARCH" "${keyring:-/usr/share/keyrings/debian-archive-keyring.gpg}" > /etc/apt/sources.list.d/lxcfs.sources; \
    apt-get update; \
    mkdir /lxcfs && chown _apt /lxcfs && cd /lxcfs; \
    apt-get download "lxcfs:$TARGETARCH=$LXCFS_VERSION"; \
    ls -l /lxcfs/lxcfs_*_"$TARGETARCH".deb

FROM --platform=$BUILDPLATFORM ${BUILD_BASE} AS native
ARG TARGETARCH
COPY images/cross-make.sh /src/cross-make.sh
COPY native /src/native
RUN sh /src/cross-make.sh /src/native build/lxcfs-remount build/release-memory.node LDFLAGS="-static -s"

FROM --platform=$BUILDPLATFORM ${BUILD_BASE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

# lxcfs from the stage above, its dependencies (fuse3, libfuse3) from BASE's release. util-linux provides
# nsenter: lxcfs is started in the host's cgroup namespace when the runtime gives the agent a private
# one (src/agent/lxcfs/cgroup-namespace.ts).
FROM ${BASE}
COPY --from=lxcfs /lxcfs/lxcfs_*.deb /tmp/lxcfs/
RUN apt-get update \
 && apt-get install -y --no-install-recommends /tmp/lxcfs/lxcfs_*.deb fuse3 util-linux \
 && rm -rf /var/lib/apt/lists/* /tmp/lxcfs
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# lxcfs-webhook on PATH, so `kubectl -n lxcfs exec <agent pod> -- lxcfs-webhook check node` works: the
# CLI's own `#!/usr/bin/env node` line runs it.
RUN chmod 755 /app/dist/src/cli/main.js && ln -s /app/dist/src/cli/main.js /usr/local/bin/lxcfs-webhook
# The agent finds its helper and the release-memory addon (src/plumbing/release-memory.ts; a shared
# object, LDFLAGS do not apply to it) at native/build/ next to dist/ (see nativeFiles in defaults.ts).
COPY --from=native /src/native/build/lxcfs-remount /src/native/build/release-memory.node ./native/build/
EXPOSE 8081
# --max-semi-space-size=1 --lite-mode: AGENT_NODE_FLAGS in src/config/defaults.ts (a small young
# generation and no optimising compiler keep the agent's resident memory down). The DaemonSets give only
# args, so they keep them.
ENTRYPOINT ["node", "--max-semi-space-size=1", "--lite-mode", "/app/dist/src/cli/main.js"]
CMD ["agent"]
