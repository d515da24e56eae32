# syntax=docker/dockerfile:1

# ---- build ------------------------------------------------------------------------------------
FROM rust:1-bookworm AS build
# diesel links PostgreSQL's client library; SQLite is compiled in (bundled).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The cache mounts keep downloaded crates and compiled dependencies between builds; the binary is
# copied out in the same step because the target directory does not outlive it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -m 0755 target/release/eap-referrals /usr/local/bin/eap-referrals

# ---- run --------------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 eap \
 && useradd --system --uid 10001 --gid eap --home-dir /var/lib/eap --shell /usr/sbin/nologin eap \
 && install -d -m 0700 -o eap -g eap /var/lib/eap
COPY --from=build /usr/local/bin/eap-referrals /usr/local/bin/eap-referrals

ENV EAP_LISTEN=0.0.0.0:8080 \
    EAP_DATA_DIR=/var/lib/eap
WORKDIR /var/lib/eap
USER 10001:10001
EXPOSE 8080
# Liveness only; orchestrators should use /readyz for readiness (see docker-compose.yml).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/eap-referrals"]
CMD ["serve"]
