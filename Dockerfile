# syntax=docker/dockerfile:1
# sandgraph: REST + MCP server running untrusted Python/JavaScript in wasmtime sandboxes.
#
#   docker build -t sandgraph .
#   docker run --rm -p 8000:8000 -e SANDGRAPH_ADMIN_TOKEN=... -v sandgraph-data:/data sandgraph
#
# or `docker compose up` with docker-compose.yml (sandgraph + Neo4j).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------------------
# Builder: the guest artefacts (componentize-py, pinned with hashes, from pip's default
# index) and the release binary.
# ---------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder

RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip python3-venv \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Guests first: they depend only on sandbox/, so code changes keep this layer cached.
COPY sandbox/ sandbox/
RUN sandbox/build.sh build/guest

COPY . .
# The cache mounts keep the crate registry and incremental artefacts between builds;
# the binary is copied out of the cached target dir.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin sandgraph \
 && install -D -m 0755 target/release/sandgraph /out/sandgraph

# ---------------------------------------------------------------------------------------
# Runtime: the binary, the guests, a non-root user, /data as a volume.
# ---------------------------------------------------------------------------------------
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# ca-certificates: TLS to Neo4j (neo4j+s://) uses the system roots.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 sandgraph \
 && useradd --system --uid 10001 --gid sandgraph --home-dir /data --shell /usr/sbin/nologin sandgraph \
 && mkdir -p /data \
 && chown sandgraph:sandgraph /data

COPY --from=builder /out/sandgraph /usr/local/bin/sandgraph
COPY --from=builder /src/build/guest/ /opt/sandgraph/guest/

# `sandgraph` is the compose service name: MCP clients in the compose network reach
# http://sandgraph:8000/mcp, whose Host header must be allowed (any port; loopback
# names are always allowed). Add public names, comma-separated, when exposing /mcp.
ENV SANDGRAPH_BIND=0.0.0.0:8000 \
    SANDGRAPH_DATA_DIR=/data \
    SANDGRAPH_GUEST_DIR=/opt/sandgraph/guest \
    SANDGRAPH_ALLOWED_HOSTS=sandgraph \
    SANDGRAPH_LOG_FORMAT=json

USER sandgraph
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000

# GET /health over bash's /dev/tcp (no curl in the image); healthy on HTTP 200.
# The first start compiles the guests into /data/compiled, hence the start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=90s --retries=3 \
    CMD ["bash", "-c", "port=${SANDGRAPH_BIND##*:}; exec 3<>/dev/tcp/127.0.0.1/${port:-8000} && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && read -r -t 4 status <&3 && [[ $status == *' 200 '* ]]"]

ENTRYPOINT ["sandgraph"]
CMD ["serve"]
