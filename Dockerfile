# Hoichan hub image: Debian bookworm, Node 20, mediasoup-worker built from the
# installed mediasoup package against Debian's libraries (scripts/build-worker.sh),
# exactly as on a developer machine.

FROM node:20-bookworm AS build
ENV DEBIAN_FRONTEND=noninteractive HOICHAN_CACHE_DIR=/opt/hoichan-cache
RUN apt-get update -q && apt-get install -y -q --no-install-recommends \
      meson ninja-build pkg-config g++ python3 libuv1-dev libssl-dev libsrtp2-dev \
      libabsl-dev libusrsctp-dev flatbuffers-compiler libflatbuffers-dev liburing-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# mediasoup's postinstall would download a prebuilt worker; we build our own below.
RUN MEDIASOUP_WORKER_BIN=/opt/hoichan-cache/pending npm ci --no-audit --no-fund
COPY . .
RUN bash scripts/build-worker.sh \
    && npm run build \
    && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
# Shared libraries the worker links against (Debian's builds).
RUN apt-get update -q && apt-get install -y -q --no-install-recommends \
      libuv1 libssl3 libsrtp2-1 libusrsctp2 libabsl20220623 liburing2 libnss3 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --uid 10001 hoichan
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/config ./config
COPY --from=build /opt/hoichan-cache/mediasoup-worker /opt/mediasoup-worker
RUN ln -s /opt/mediasoup-worker/*/mediasoup-worker /usr/local/bin/mediasoup-worker
ENV NODE_ENV=production MEDIASOUP_WORKER_BIN=/usr/local/bin/mediasoup-worker
USER hoichan
# Several hubs sharing conferences (docs/SCALING.md): set REDIS_URL, HOICHAN_HUB_ID,
# HOICHAN_PUBLIC_URL and `hub --region R` per container (config/cluster.example.json),
# and open media.rtcMinPort..rtcMaxPort (UDP) between hubs for the pipe transports.
# SIGTERM (docker stop) drains first: give it --stop-timeout >= cluster.drainTimeoutMs / 1000.
# HTTP + socket.io, then one WebRtcServer port (UDP and TCP) per worker: 40000, 40001, ...
EXPOSE 3000 40000/udp 40000/tcp 40001/udp 40001/tcp 40002/udp 40002/tcp 40003/udp 40003/tcp
HEALTHCHECK --interval=15s --timeout=3s CMD node -e "fetch('http://127.0.0.1:'+(process.env.HOICHAN_PORT||3000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["node", "bin/hoichan.js"]
CMD ["hub"]
