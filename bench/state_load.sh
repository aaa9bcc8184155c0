#!/usr/bin/env bash
# Decisions with the state in Redis (`serve --state`) against the state in process, on 1
# and 2 replicas: builds the release binary and the load generator
# (server/examples/load.rs), starts its own `redis-server` on a free loopback port (no
# persistence), then for each setup starts `agentpolicy serve --policy examples/law_firm`
# (no audit log, so the figures are the state's cost alone), runs the load generator at
# each client count (clients spread over the replicas), stops the replicas with SIGTERM
# and prints a markdown table. docs/performance.md ("Shared state on Redis") has the
# figures and how they were taken.
#
#   bench/state_load.sh                          # 10 s per run, 1 and 8 clients
#   SECONDS_PER_RUN=5 CLIENTS="1 8 32" bench/state_load.sh
#
# Not part of `cargo test`: it takes minutes and its numbers depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${SECONDS_PER_RUN:-10}
clients_list=${CLIENTS:-"1 8"}
setups=${SETUPS:-"in-process:1 redis:1 redis:2"}
target=${CARGO_TARGET_DIR:-target}

echo "building the release binary and the load generator" >&2
cargo build --release -q -p agentpolicy-cli --bin agentpolicy
cargo build --release -q -p agentpolicy-server --example load
ap="$target/release/agentpolicy"
load="$target/release/examples/load"

work=$(mktemp -d)
pids=()
redis_pid=
cleanup() {
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -n "$redis_pid" ]; then
    kill -TERM "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

redis_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/redis"
redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$work/redis" --save "" \
  --appendonly no >"$work/redis.log" 2>&1 &
redis_pid=$!
for _ in $(seq 1 100); do
  redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
  sleep 0.05
done

token=$(head -c 32 /dev/urandom | base64 | tr -d '=+/')
hash=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
cat >"$work/tokens.json" <<EOF
{"tokens": [{"name": "load", "sha256": "$hash", "role": "agent", "agents": ["research"]}]}
EOF

start_replica() { # $1: index, rest: extra args; prints the URL
  local out="$work/serve-$1.out"
  shift
  "$ap" serve --policy examples/law_firm --listen 127.0.0.1:0 --tokens "$work/tokens.json" \
    "$@" >"$out" 2>"$out.err" &
  pids+=($!)
  for _ in $(seq 1 200); do
    line=$(head -n1 "$out" 2>/dev/null || true)
    if [[ "$line" == "listening on http://"* ]]; then
      echo "${line#listening on }"
      return
    fi
    sleep 0.05
  done
  echo "serve did not start:" >&2
  cat "$out.err" >&2
  exit 1
}

rows=()
for setup in $setups; do
  state=${setup%%:*}
  replicas=${setup##*:}
  state_args=()
  [ "$state" = redis ] && state_args=(--state "redis://127.0.0.1:$redis_port/0")
  urls=()
  for i in $(seq 1 "$replicas"); do
    id_args=()
    [ "$state" = redis ] && id_args=(--replica-id "replica-$i")
    urls+=(--url "$(start_replica "$i" "${state_args[@]}" "${id_args[@]}")")
  done
  for clients in $clients_list; do
    echo "$state, $replicas replica(s), $clients clients, ${seconds} s" >&2
    result=$("$load" "${urls[@]}" --token "$token" --clients "$clients" --seconds "$seconds")
    declare -A r=()
    for kv in $result; do r[${kv%%=*}]=${kv#*=}; done
    rows+=("| $state | $replicas | $clients | ${r[rps]} | ${r[p50_us]} µs | ${r[p99_us]} µs | ${r[max_us]} µs | ${r[decisions]} |")
    unset r
  done
  for pid in "${pids[@]}"; do
    kill -TERM "$pid"
    wait "$pid"
  done
  pids=()
done

echo "| state | replicas | clients | decisions/s | p50 | p99 | max | decisions |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
