# meshca: the CA (`serve`) and the node agent (`agent`) in one image. Node 24 runs the TypeScript
# sources directly; the image runs the JavaScript scripts/build.js writes to dist/. Keys are never baked in: mount them at /var/run/meshca/keys.
FROM node:24-slim
ENV NODE_ENV=production \
    MESHCA_KEYS=/var/run/meshca/keys \
    MESHCA_DB=sqlite:/var/lib/meshca/meshca.db
WORKDIR /opt/meshca
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin ./bin
COPY src ./src
COPY protos ./protos
# JavaScript in dist/ (bin/meshca.js prefers it while current): no type stripper in every pod (~27 MB).
COPY scripts ./scripts
RUN node scripts/build.js
RUN mkdir -p /var/lib/meshca /var/run/meshca/keys && chown -R node:node /var/lib/meshca /var/run/meshca
USER node
EXPOSE 15012 15014
ENTRYPOINT ["node", "/opt/meshca/bin/meshca.js"]
CMD ["serve"]
