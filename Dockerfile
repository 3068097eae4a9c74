# meshca: the CA (`serve`), the node agent (`agent`) and the injector (`inject`) in one image. Node 24
# runs the JavaScript that scripts/build.js strips from src/ into dist/ (no type stripper per pod). Keys are never baked in: mount them
# (or use --keys k8s-secret:…). Runs as a numeric non-root user and with a read-only root
# filesystem: it writes only under mounted volumes (/var/run/meshca/keys, /var/lib/meshca, /tmp).
#   podman build -t meshca .            (BASE: any image with Node 24 and npm; .ci/image.sh makes one)
ARG BASE=node:24-slim
FROM ${BASE}
# --offline when the build has no registry but a mounted npm cache (.ci/image.sh).
ARG NPM_FLAGS=""
ENV NODE_ENV=production \
    MESHCA_KEYS=/var/run/meshca/keys \
    MESHCA_DB=sqlite:/var/lib/meshca/meshca.db
WORKDIR /opt/meshca
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund ${NPM_FLAGS} && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY protos ./protos
# dist/: bin/meshca.js runs it while it is newer than src/ (~27 MB less RSS in every agent).
COPY scripts ./scripts
RUN node scripts/build.js
RUN mkdir -p /var/lib/meshca /var/run/meshca/keys && chown -R 10001:10001 /var/lib/meshca /var/run/meshca
USER 10001:10001
EXPOSE 15012 15014 15017 15020
ENTRYPOINT ["node", "/opt/meshca/bin/meshca.js"]
CMD ["serve"]
