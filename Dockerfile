# A container image for `agentpolicy serve` (docs/serve.md, "A container image").
# Not built by this repository's CI, which reaches no container registry;
# `cli/tests/cli_docs.rs` checks that the ENTRYPOINT names only options `serve --help` lists.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libz3-dev
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p agentpolicy-cli --bin agentpolicy

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libz3-4 ca-certificates \
 && rm -rf /var/lib/apt/lists/* && useradd --system --home /var/lib/agentpolicy agentpolicy
COPY --from=build /src/target/release/agentpolicy /usr/local/bin/agentpolicy
USER agentpolicy
VOLUME /var/lib/agentpolicy
EXPOSE 8181
STOPSIGNAL SIGTERM
ENTRYPOINT ["agentpolicy", "serve", "--listen", "0.0.0.0:8181", "--table", "/etc/agentpolicy/policy.table", "--tokens", "/etc/agentpolicy/tokens.json", "--audit", "/var/lib/agentpolicy/audit.jsonl"]
