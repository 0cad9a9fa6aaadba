# The podbgp DaemonSet image: the binary and nft (the SNAT writer runs it).
#   docker build -t podbgp:0.1.0 .
#   kind load docker-image podbgp:0.1.0 --name podbgp-a
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY bgp bgp
COPY agent agent
COPY interop-tests interop-tests
RUN cargo build --release --locked -p agent \
    && strip target/release/podbgp

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends nftables \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/podbgp /usr/local/bin/podbgp
ENTRYPOINT ["/usr/local/bin/podbgp"]
CMD ["run", "--config", "/etc/podbgp/podbgp.toml"]
