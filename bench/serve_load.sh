#!/usr/bin/env bash
# The decision service under load: builds the release binary and the load generator
# (server/examples/load.rs), then for each audit mode (off, os-buffered, fsync) starts
# `agentpolicy serve --policy examples/law_firm` on a free loopback port, runs the load
# generator at 1, 8 and 64 clients, stops the service with SIGTERM (it must exit 0,
# having sealed its log), and prints a markdown table. docs/performance.md ("The
# decision service over HTTP") has the figures and how they were taken.
#
#   bench/serve_load.sh              # 10 s per run
#   SECONDS_PER_RUN=5 bench/serve_load.sh
#   CLIENTS="1 8" MODES="off os-buffered" bench/serve_load.sh
#
# Not part of `cargo test`: it takes minutes and its numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${SECONDS_PER_RUN:-10}
clients_list=${CLIENTS:-"1 8 64"}
modes=${MODES:-"off os-buffered fsync"}
target=${CARGO_TARGET_DIR:-target}

echo "building the release binary and the load generator" >&2
cargo build --release -q -p agentpolicy-cli --bin agentpolicy
cargo build --release -q -p agentpolicy-server --example load
ap="$target/release/agentpolicy"
load="$target/release/examples/load"

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

token=$(head -c 32 /dev/urandom | base64 | tr -d '=+/')
hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
cat >"$work/tokens.json" <<EOF
{"tokens": [{"name": "load", "sha256": "$hash", "role": "agent", "agents": ["research"]}]}
EOF

rows=()
for mode in $modes; do
  audit_args=()
  case "$mode" in
    off) ;;
    os-buffered | fsync) audit_args=(--audit "$work/audit-$mode.jsonl" --durability "$mode") ;;
    *) echo "unknown mode $mode (off, os-buffered, fsync)" >&2; exit 2 ;;
  esac
  "$ap" serve --policy examples/law_firm --listen 127.0.0.1:0 \
    --tokens "$work/tokens.json" "${audit_args[@]}" >"$work/serve.out" 2>"$work/serve.err" &
  server_pid=$!
  url=
  for _ in $(seq 1 200); do
    line=$(head -n1 "$work/serve.out" 2>/dev/null || true)
    if [[ "$line" == "listening on http://"* ]]; then
      url=${line#listening on }
      break
    fi
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$url" ]; then
    echo "serve ($mode) did not start:" >&2
    cat "$work/serve.err" >&2
    exit 1
  fi
  for clients in $clients_list; do
    echo "audit $mode, $clients clients, ${seconds} s ($url)" >&2
    result=$("$load" --url "$url" --token "$token" --clients "$clients" --seconds "$seconds")
    # clients=… seconds=… decisions=… sessions=… failures=… rps=… p50_us=… p99_us=… max_us=…
    declare -A r=()
    for kv in $result; do r[${kv%%=*}]=${kv#*=}; done
    rows+=("| $mode | $clients | ${r[rps]} | ${r[p50_us]} µs | ${r[p99_us]} µs | ${r[max_us]} µs | ${r[decisions]} |")
    unset r
  done
  kill -TERM "$server_pid"
  if ! wait "$server_pid"; then
    echo "serve ($mode) did not exit cleanly on SIGTERM:" >&2
    cat "$work/serve.err" >&2
    exit 1
  fi
  server_pid=
  if [ "$mode" != off ]; then
    "$ap" audit verify "$work/audit-$mode.jsonl" >/dev/null
  fi
done

echo "| audit | clients | decisions/s | p50 | p99 | max | decisions |"
echo "|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
