# The operator console's image: docker build -f deploy/docker/console.Dockerfile .
# Same shape as the services' recipe (deploy/docker/Dockerfile): stage one compiles with the dev toolchain; the final
# stage holds only the console's compiled dist/, its static files (public/), the workspace packages it uses and their
# production dependencies. No TypeScript, no sandbox fakes, no Chromium. Runs as the non-root `node` user.
# The console reads the services only through their admin APIs (and Kafka for topics, lag, dead letters, replay).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY . .
RUN npm ci --no-audit --no-fund && npx turbo run build --filter="@postsale/console..."
WORKDIR /image
RUN cp /src/package.json /src/package-lock.json . \
 && for manifest in /src/packages/*/package.json /src/services/*/package.json /src/bench/package.json; do \
      dir="${manifest#/src/}"; mkdir -p "$(dirname "$dir")"; cp "$manifest" "$dir"; done \
 && npm ci --omit=dev --no-audit --no-fund --workspace="@postsale/console" \
 && for link in node_modules/@postsale/*; do \
      pkg="$(readlink -f "$link")"; rel="${pkg#/image/}"; \
      cp -r "/src/$rel/dist" "$rel/dist"; \
      if [ -d "/src/$rel/schemas" ]; then cp -r "/src/$rel/schemas" "$rel/schemas"; fi; \
    done \
 && cp -r /src/packages/console/public packages/console/public \
 && find packages services bench -mindepth 1 -maxdepth 1 -type d ! -exec test -d '{}/dist' ';' -exec rm -rf '{}' +

FROM ${NODE_IMAGE}
ENV NODE_ENV=production PORT=3005 CONSOLE_AUDIT_FILE=/data/audit.jsonl
WORKDIR /app
COPY --from=build --chown=root:root /image /app
# the audit log is the only thing the console writes: a volume owned by the runtime user
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 3005
HEALTHCHECK --interval=10s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+process.env.PORT+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "--enable-source-maps", "packages/console/dist/main.js"]
