# syntax=docker/dockerfile:1
# The zonegate image: one static binary (`zonegate operator`, `serve`, `check`, `render`, `crd`)
# on distroless/static, running as its `nonroot` user 65532 (the uid the chart's operator pod and
# the operator's nameserver pods run as).
#
# Published as: ghcr.io/zonegate/zonegate:<version>
#
# where <version> is Cargo.toml's package.version, which is also charts/zonegate's appVersion and
# so the chart's default image (tests/packaging.rs checks that they agree). Build and push:
#
#   docker build --build-arg VERSION=0.1.0 -t ghcr.io/zonegate/zonegate:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 --build-arg VERSION=0.1.0 \
#     -t ghcr.io/zonegate/zonegate:0.1.0 --push .
#
# e2e/static-build.sh builds the binary with the same cargo command and flags and checks that
# it is static and runs as uid 65532 in an empty root directory.

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY examples ./examples
COPY e2e/bench ./e2e/bench
# crt-static links glibc statically: the binary needs no shared library at all. (No musl: the
# kube/rustls/ring stack builds on glibc as is.) The host triple keeps buildx's multi-platform
# builds native per platform.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    triple="$(rustc -vV | sed -n 's/^host: //p')" && \
    RUSTFLAGS="-C target-feature=+crt-static" \
      cargo build --release --locked --target "$triple" --bin zonegate && \
    cp "target/$triple/release/zonegate" /zonegate

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="zonegate" \
      org.opencontainers.image.description="Per-tenant authoritative DNS zones for Kubernetes: an operator and an embedded DNS server" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /zonegate /usr/local/bin/zonegate
USER 65532:65532
# DNS (the nameserver pods listen on 5353, their Services map 53 to it) and /metrics, /healthz,
# /readyz (operator and nameservers).
EXPOSE 5353/udp 5353/tcp 8080/tcp
ENTRYPOINT ["/usr/local/bin/zonegate"]
