# Carrel container image.
#
#   docker build -t carrel .
#   docker run --rm -p 127.0.0.1:8080:8080 -v carrel-data:/data carrel
#
# Deliberately no `# syntax=` line and no `RUN --mount=type=cache`: both need
# BuildKit, and this file must also build with the classic builder. Dependency
# caching comes from the layer split below instead.

ARG RUST_VERSION=1.95

# ---------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------
# Same Debian release (bookworm) as the runtime stage, so the binary's glibc
# requirement matches. The image ships gcc, which bundled SQLite needs.
FROM rust:${RUST_VERSION}-slim-bookworm AS builder
WORKDIR /src

# 1. Manifests only, so the dependency layer is reused until they change.
COPY Cargo.toml Cargo.lock ./
COPY crates/carrel-core/Cargo.toml crates/carrel-core/
COPY crates/carrel-crypto/Cargo.toml crates/carrel-crypto/
COPY crates/carrel-mail/Cargo.toml crates/carrel-mail/
COPY crates/carrel-marc/Cargo.toml crates/carrel-marc/
COPY crates/carrel-media/Cargo.toml crates/carrel-media/
COPY crates/carrel-ratelimit/Cargo.toml crates/carrel-ratelimit/
COPY crates/carrel-server/Cargo.toml crates/carrel-server/
COPY crates/carrel-sip2/Cargo.toml crates/carrel-sip2/
COPY crates/carrel-store/Cargo.toml crates/carrel-store/build.rs crates/carrel-store/
# carrel-store's build.rs reads these at compile time, so they must exist even
# for the stub build (they are small and rarely change).
COPY crates/carrel-store/migrations crates/carrel-store/migrations
# Declared bench targets must exist when cargo loads the manifests (small files).
COPY crates/carrel-ratelimit/benches crates/carrel-ratelimit/benches
COPY crates/carrel-server/benches crates/carrel-server/benches

# 2. Stub targets: compiles every third-party dependency into its own layer.
RUN mkdir -p crates/carrel-core/src crates/carrel-crypto/src crates/carrel-mail/src crates/carrel-marc/src crates/carrel-media/src \
          crates/carrel-ratelimit/src crates/carrel-sip2/src crates/carrel-store/src crates/carrel-server/src \
 && touch crates/carrel-core/src/lib.rs crates/carrel-crypto/src/lib.rs crates/carrel-mail/src/lib.rs crates/carrel-marc/src/lib.rs \
          crates/carrel-media/src/lib.rs crates/carrel-ratelimit/src/lib.rs crates/carrel-sip2/src/lib.rs \
          crates/carrel-store/src/lib.rs crates/carrel-server/src/lib.rs \
 && echo 'fn main() {}' > crates/carrel-server/src/main.rs \
 && cargo build --release --locked --bin carrel

# 3. Real sources. COPY keeps the files' original mtimes, which can be older
# than the stub artifacts; touching them makes cargo rebuild the workspace
# crates instead of shipping the stubs.
COPY crates crates
RUN find crates -path '*/src/*' -name '*.rs' -exec touch {} + \
 && cargo build --release --locked --bin carrel \
 && install -D -m 0755 target/release/carrel /out/carrel \
 && /out/carrel --version

# ---------------------------------------------------------------------------
# Runtime
# ---------------------------------------------------------------------------
# bookworm-slim rather than distroless so the HEALTHCHECK can use curl.
# TLS is rustls, so no OpenSSL; ca-certificates supplies the trust roots for
# outgoing TLS (SMTP, managed PostgreSQL/Redis).
FROM debian:bookworm-slim AS runtime

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="carrel" \
      org.opencontainers.image.description="Carrel library-management HTTP server" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/carrel" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim"

RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

# Fixed uid/gid so volume ownership is predictable across rebuilds and hosts
# (and matches a Kubernetes runAsUser/fsGroup of 10001).
RUN groupadd --system --gid 10001 carrel \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin carrel \
 && mkdir -p /data /app \
 && chown 10001:10001 /data

COPY --from=builder /out/carrel /usr/local/bin/carrel

# The default bind (127.0.0.1) is unreachable from outside a container.
ENV CARREL_BIND=0.0.0.0:8080 \
    CARREL_DATA_DIR=/data \
    CARREL_LOG_FORMAT=json

# carrel reads ./carrel.toml and ./.env from its working directory. Use an
# empty, root-owned directory rather than the writable /data, so nothing the
# process itself writes can change its configuration. Mount a carrel.toml
# here (or set CARREL_CONFIG) to use a file.
WORKDIR /app

# Declared after the chown: a fresh named volume copies this directory's
# ownership, so the non-root user can write to it.
VOLUME ["/data"]

# Numeric, so runtimes can verify "non-root" without reading /etc/passwd.
USER 10001:10001

EXPOSE 8080

# /health is liveness only; it does not touch the database (that is /readiness,
# which would mark the container unhealthy during a database outage and get it
# restarted for no benefit). `|| exit 1` because Docker reserves other codes.
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:8080/health || exit 1

ENTRYPOINT ["/usr/local/bin/carrel"]
CMD ["serve"]
