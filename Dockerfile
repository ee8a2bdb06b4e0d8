# syntax=docker/dockerfile:1.7
# KeyVa images from one Dockerfile, one target per process:
#   docker build --target node     -t keyva-node .       # a storage node:  node node/src/main.ts
#   docker build --target operator -t keyva-operator .   # the operator:    node operator/src/main.ts
# Node 24 runs the TypeScript sources directly (type stripping): there is no build step.
# Checked by e2e/src/kube/images.test.ts (every COPY source exists, every workspace is installed).
ARG NODE_IMAGE=node:24-slim

# 1. Production dependencies of every workspace (npm ci needs each workspace's package.json).
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY proto/package.json proto/
COPY client/package.json client/
COPY node/package.json node/
COPY cli/package.json cli/
COPY bench/package.json bench/
COPY operator/package.json operator/
COPY e2e/package.json e2e/
RUN npm ci --omit=dev --no-audit --no-fund --loglevel=error && npm cache clean --force

# 2. The sources the two processes run (no tests: .dockerignore drops *.test.ts).
FROM deps AS build
COPY proto/ proto/
COPY client/ client/
COPY node/ node/
COPY operator/ operator/

# 3. KeyVa's build of the RocksDB binding for the node image (SST-file snapshots, ADR 0013):
#    RocksDB compiled from the package's source with KeyVa's patches by the same script as
#    `npm test` runs (~25 min on 2 cores; the layer is reused until the lock file, the patches or
#    the script change). Without it a node runs on the published binding and streams snapshots
#    as rows (its log says which).
FROM deps AS native
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      g++ make python3 patch libzstd-dev && rm -rf /var/lib/apt/lists/*
# The development dependencies too: node-gyp builds the addon.
RUN npm ci --no-audit --no-fund --loglevel=error
COPY scripts/rocksdb-native.sh scripts/
COPY node/native/ node/native/
RUN bash scripts/rocksdb-native.sh && rm -rf /root/.cache/keyva

# 4. Runtime base: root-owned, read-only code; runs as the unprivileged "node" user (uid 1000).
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app /app
USER 1000:1000

FROM runtime AS operator
EXPOSE 8080
ENTRYPOINT ["node", "operator/src/main.ts"]

FROM runtime AS node
COPY --from=native /app/node_modules/@nxtedition/rocksdb/build/Release/leveldown.node /app/node_modules/@nxtedition/rocksdb/build/Release/leveldown.node
USER 0:0
# The addon links libzstd (the slim image has it as apt's dependency; made explicit).
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libzstd1 \
      && rm -rf /var/lib/apt/lists/* && mkdir -p /var/lib/keyva && chown 1000:1000 /var/lib/keyva
USER 1000:1000
VOLUME ["/var/lib/keyva"]
EXPOSE 7379 7380
ENTRYPOINT ["node", "node/src/main.ts"]
CMD ["--data-dir", "/var/lib/keyva", "--grpc-host", "0.0.0.0", "--http-host", "0.0.0.0"]
