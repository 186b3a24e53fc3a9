# syntax=docker/dockerfile:1
# The admission webhook: the compiled CLI and its production dependencies on distroless Node.js 24,
# non-root, no shell. Build from the repository root (scripts/build-images.sh builds both architectures):
#   docker build --platform linux/arm64 -f images/webhook.Dockerfile -t lxcfs-webhook/webhook .
# BUILD_BASE and BASE default to the public images; the VM tests pass local stand-ins built from Debian
# packages (scripts/vm/build-images.sh).
ARG BUILD_BASE=node:24-bookworm-slim
ARG BASE=gcr.io/distroless/nodejs24-debian12:nonroot

# The build stage runs on the builder's own architecture: its output is JavaScript.
FROM --platform=$BUILDPLATFORM ${BUILD_BASE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json && npm prune --omit=dev

# The release-memory addon (src/plumbing/release-memory.ts), cross-compiled like the agent's helper; a
# shared object, loaded into the base image's Node.js (distroless' glibc: it needs malloc_trim from it).
FROM --platform=$BUILDPLATFORM ${BUILD_BASE} AS native
ARG TARGETARCH
COPY images/cross-make.sh /src/cross-make.sh
COPY native /src/native
RUN sh /src/cross-make.sh /src/native build/release-memory.node

FROM ${BASE}
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
COPY --from=native /src/native/build/release-memory.node ./native/build/release-memory.node
# lxcfs-webhook on PATH for `kubectl exec … -- lxcfs-webhook …`: no shell here, so a node script.
COPY --chmod=755 images/lxcfs-webhook.cjs /usr/local/bin/lxcfs-webhook
# 65532 is distroless' "nonroot"; the Deployment also sets runAsNonRoot and a read-only root filesystem.
USER 65532:65532
EXPOSE 8443 8080
# --max-semi-space-size=4: WEBHOOK_NODE_FLAGS in src/config/defaults.ts (small young generation: RSS near 100 MB).
ENTRYPOINT ["/nodejs/bin/node", "--max-semi-space-size=4", "/app/dist/src/cli/main.js"]
CMD ["serve"]
