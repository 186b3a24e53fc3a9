# syntax=docker/dockerfile:1
# The node agent: Debian's lxcfs and fuse3 run inside this image (never copied onto the host, so the
# node's glibc does not matter), the native remount helper is compiled from native/ in a build stage,
# and the CLI runs on Node.js 24. Build from the repository root, one architecture at a time:
#   docker build --platform linux/arm64 -f images/agent.Dockerfile -t lxcfs-webhook/agent .
# (scripts/build-images.sh builds and tags both architectures.) BASE is the public node:24-trixie-slim
# by default; the VM tests pass local stand-ins built from Debian packages (scripts/vm/build-images.sh).
# The build stages run on the builder's own architecture (BUILD_BASE; $BUILDPLATFORM): the helper is
# cross-compiled with Debian's gcc for the target and linked statically, so nothing is compiled under
# emulation and the helper does not depend on the image's C library.
ARG BASE=node:24-trixie-slim
ARG BUILD_BASE=node:24-trixie-slim

FROM --platform=$BUILDPLATFORM ${BUILD_BASE} AS native
ARG TARGETARCH
COPY images/cross-make.sh /src/cross-make.sh
COPY native /src/native
RUN sh /src/cross-make.sh /src/native build/lxcfs-remount LDFLAGS="-static -s"

FROM --platform=$BUILDPLATFORM ${BUILD_BASE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

# Debian 13 for lxcfs 6.0.x (the LTS line peers ship). Debian 12's lxcfs 5.0.3 was measured too on cgroup
# v2 guests (README, "Where it runs"). util-linux provides nsenter: lxcfs is started in the host's cgroup
# namespace when the runtime gives the agent a private one (src/agent/lxcfs/cgroup-namespace.ts).
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends lxcfs fuse3 util-linux \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# lxcfs-webhook on PATH, so `kubectl -n lxcfs exec <agent pod> -- lxcfs-webhook check node` works: the
# CLI's own `#!/usr/bin/env node` line runs it.
RUN chmod 755 /app/dist/src/cli/main.js && ln -s /app/dist/src/cli/main.js /usr/local/bin/lxcfs-webhook
# The agent finds its helper at native/build/ next to dist/ (see DEFAULT_REMOUNT_HELPER).
COPY --from=native /src/native/build/lxcfs-remount ./native/build/lxcfs-remount
EXPOSE 8081
ENTRYPOINT ["node", "/app/dist/src/cli/main.js"]
CMD ["agent"]
