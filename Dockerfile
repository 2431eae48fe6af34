# syntax=docker/dockerfile:1
# Herald's container image (docs/deploy.md). test/integration/container-recipe.test.ts runs
# these very steps outside a container (it reads this file), so the recipe cannot rot.

# Build: install with dev dependencies (`npm ci` builds through `prepare`), then pack the
# package exactly as npm publishes it.
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY . .
RUN npm ci
RUN npm pack --ignore-scripts --pack-destination /pkg

# Run: the packed package installed production-only; node is PID 1 (exec form, no npm or sh
# in between), so SIGTERM from `docker stop` reaches Herald and drains it.
FROM node:20-bookworm-slim
ENV NODE_ENV=production PORT=9800 HOST=0.0.0.0
WORKDIR /app
COPY --from=build /pkg /pkg
RUN --mount=type=cache,target=/root/.npm npm init -y > /dev/null && npm install --omit=dev --no-audit --no-fund /pkg/herald-*.tgz && rm -rf /pkg
USER node
EXPOSE 9800
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["node", "-e", "fetch('http://127.0.0.1:' + process.env.PORT + '/readyz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "node_modules/herald/dist/cli.js", "serve"]
